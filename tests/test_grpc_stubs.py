"""The committed gRPC stubs: they are the published interface (the same fields and numbers as the .proto beside
them), they load beside another copy of the ``inference`` package, and the kit imports nothing of gRPC unless a
gRPC target is given, saying in one line what to install when the extra is missing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.transport import grpc_v2

pytest.importorskip("grpc", reason="the grpc extra is not installed (pip install -e '.[dev]')")

HERE = Path(grpc_v2.__file__).parent


def _fields_of(descriptor, prefix: str = "") -> set[tuple[str, str, int]]:
    """``(message, field, number)`` of every field of ``descriptor`` and its nested messages (map entries aside)."""
    found = set()
    for field in descriptor.fields:
        found.add((descriptor.name, field.name, field.number))
    for nested in descriptor.nested_types:
        if not nested.GetOptions().map_entry:
            found |= _fields_of(nested)
    return found


def test_the_stubs_hold_exactly_the_protos_fields_and_rpcs():
    """A .proto edited without regenerating (or the other way round) fails here: every ``type name = number;`` of
    the .proto is a field of the generated descriptor, and the service has the protocol's six RPCs."""
    from conformance.transport.grpc_v2 import open_inference_pb2 as pb

    text = (HERE / "open_inference.proto").read_text()
    declared = {(name, int(number)) for name, number in re.findall(r"^\s*(?:repeated\s+)?(?:map<[^>]+>|\w+)\s+(\w+)\s*=\s*(\d+);",
                                                                  text, re.MULTILINE)}
    generated = set()
    for message in pb.DESCRIPTOR.message_types_by_name.values():
        generated |= {(name, number) for _, name, number in _fields_of(message)}
    assert generated == declared
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == "inference.GRPCInferenceService"
    assert [m.name for m in service.methods] == ["ServerLive", "ServerReady", "ModelReady", "ServerMetadata",
                                                 "ModelMetadata", "ModelInfer"]
    contents = pb.InferTensorContents.DESCRIPTOR.fields_by_name
    assert {name: contents[name].number for name in contents} == {
        "bool_contents": 1, "int_contents": 2, "int64_contents": 3, "uint_contents": 4, "uint64_contents": 5,
        "fp32_contents": 6, "fp64_contents": 7, "bytes_contents": 8}


def test_the_stubs_load_beside_another_copy_of_the_inference_package(tmp_path):
    """tritonclient's, MLServer's and KServe's own stubs declare the same ``inference.*`` names in protobuf's default
    pool; the kit's live in a pool of their own, so that both load in one process and read each other's bytes."""
    script = f"""
import sys
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from conformance.transport.grpc_v2 import open_inference_pb2 as kit
other = descriptor_pb2.FileDescriptorProto()
kit.DESCRIPTOR.CopyToProto(other)
other.name = "dataplane.proto"  # MLServer's file name, the same package and messages
descriptor_pool.Default().Add(other)
theirs = message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName("inference.ModelInferRequest"))
sent = kit.ModelInferRequest(model_name="m", raw_input_contents=[b"ab"])
assert theirs.FromString(sent.SerializeToString()).model_name == "m"
print("ok")
"""
    done = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_plugin_and_cli_import_nothing_of_grpc():
    """Loading the plugin and the CLI (every pytest run where the kit is installed) imports neither grpc nor
    protobuf: they are loaded for a gRPC target only."""
    script = ("import sys, conformance.plugin, conformance.cli, conformance.run.online, conformance.judge\n"
              "print(sorted(m for m in sys.modules if m == 'grpc' or m.startswith(('grpc.', 'google.protobuf', "
              "'conformance.transport.grpc_v2.'))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr[-2000:]


def test_without_the_extra_a_grpc_target_is_one_line_saying_what_to_install():
    script = ("import sys; sys.modules['grpc'] = None\n"
              "from conformance.transport import grpc_v2\n"
              "try:\n    grpc_v2.require()\nexcept grpc_v2.GrpcUnavailable as problem:\n    print(problem)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == ("a gRPC target needs grpcio and protobuf (grpc cannot be imported): pip install "
                                   "'odahu-conformance[grpc]' (grpcio>=1.51.3, protobuf>=4.21.12)"), done.stderr
    grpc_v2.require()  # here the extra is installed: nothing raised
