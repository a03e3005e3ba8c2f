"""Regenerate open_inference_pb2.py and open_inference_pb2_grpc.py from open_inference.proto (beside this file).

    python -m venv /tmp/gen && /tmp/gen/bin/pip install grpcio-tools==1.62.3
    /tmp/gen/bin/python conformance/transport/grpc_v2/regenerate.py

The generator is pinned (:data:`TOOLS`): grpcio-tools 1.62.3 bundles protoc 25 and writes code for protobuf 4.25,
the last generation without a runtime version check. Its modules load under every protobuf from 4.21 (the
``builder`` API they use) through 6.x, and under any grpcio from 1.48, so the kit's ``grpc`` extra asks for no
newer protobuf or grpcio than a user's environment (MLServer's, KServe's, Triton's client's) already has. Code from
a newer generator refuses an older runtime (``ValidateProtobufRuntimeVersion``, ``GRPC_GENERATED_VERSION``).
Two edits after protoc: the ``_pb2_grpc`` module imports its messages as a top-level module, made relative here so
that the stubs live inside the package; and the messages go into a descriptor pool of their own instead of
protobuf's default one, where the same names (package ``inference``) from tritonclient's, MLServer's or KServe's
own stubs, loaded in the same process, would make the import fail with "duplicate symbol".
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

TOOLS = "1.62.3"
HERE = Path(__file__).resolve().parent
PROTO = "open_inference.proto"


def main() -> int:
    try:
        found = metadata.version("grpcio-tools")
    except metadata.PackageNotFoundError:
        found = None
    if found != TOOLS:
        print(f"regenerate.py: needs grpcio-tools=={TOOLS} (found {found or 'none'}); see the docstring",
              file=sys.stderr)
        return 2
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{HERE}", f"--python_out={HERE}",
                    f"--grpc_python_out={HERE}", str(HERE / PROTO)], check=True)
    stubs = HERE / "open_inference_pb2_grpc.py"
    text = stubs.read_text()
    text, count = re.subn(r"^import open_inference_pb2 as ", "from . import open_inference_pb2 as ", text,
                          flags=re.MULTILINE)
    if count != 1:
        print("regenerate.py: the generated stubs do not import open_inference_pb2 as expected", file=sys.stderr)
        return 1
    stubs.write_text(text)
    messages = HERE / "open_inference_pb2.py"
    text, count = re.subn(r"_descriptor_pool\.Default\(\)\.AddSerializedFile", "_descriptor_pool.DescriptorPool().AddSerializedFile",
                          messages.read_text())
    if count != 1:
        print("regenerate.py: the generated messages are not added to the default pool as expected", file=sys.stderr)
        return 1
    messages.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
