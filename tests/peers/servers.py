"""Start a real V2 peer serving the multiplier or the iris example on loopback, talk to it over REST, stop it.

``start`` lays out the peer's models in ``workdir``: with ``model="multiplier"`` (the default), "multiplier"
(multiplier.txt from the checkout's ``model/``) and "echo" (answers its inputs undecoded; see the model files);
with ``model="iris"``, the iris example alone (examples/iris/mlserver_runtime.py or kserve_model.py reading
examples/iris/model, served under the name and version of its odahuflow.project.yaml: ``IRIS_NAME``,
``IRIS_VERSION``). It starts the server in its own process group bound to 127.0.0.1 on free ports, and waits for
``GET /v2/health/ready`` to answer 200 (polled every 0.1 s, at most ``timeout`` seconds), and, when it serves
gRPC, for its gRPC port to accept a connection; ``stop`` ends the
whole process group. ``call`` is one HTTP exchange with the standard library. ``serving`` is ``start`` and
``stop`` as a context manager for tests, which skips the test (with the reason) when the peer's venv cannot be
made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import importlib.util
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent.parent
MULTIPLIER = CHECKOUT / "model" / "multiplier.txt"
IRIS = CHECKOUT / "examples" / "iris"
IRIS_MODEL = IRIS / "model"
MODELS = ("multiplier", "iris")
HOST = "127.0.0.1"
MODEL_NAME = "multiplier"
#: The version MLServer's model is given (model-settings.json); KServe's Python models have none.
MLSERVER_MODEL_VERSION = "1"


def _iris_project() -> tuple[str, str]:
    """(name, version) of the iris example, read by examples/iris/predictor.py's own code."""
    spec = importlib.util.spec_from_file_location("odahu_iris_predictor_for_tests", IRIS / "predictor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_project(str(IRIS_MODEL))


IRIS_NAME, IRIS_VERSION = _iris_project()


class ServerFailed(Exception):
    """The server exited or was not ready in time; the message is one line and quotes its last output."""


@dataclasses.dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log: Path
    start_seconds: float
    #: The port of its V2 gRPC endpoint on HOST: MLServer's always, KServe's when started with ``grpc``.
    grpc_port: int | None = None


@dataclasses.dataclass
class Reply:
    status: int
    content_type: str | None
    body: bytes

    @property
    def document(self):
        """The body parsed as JSON (None when it is empty or not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def call(port: int, method: str, path: str, body: bytes | dict | None = None,
         content_type: str = "application/json", timeout: float = 10.0) -> Reply:
    """One request on a new connection; a dict body is sent as JSON."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": content_type} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Reply(response.status, response.getheader("Content-Type"), response.read())
    finally:
        connection.close()


def start(peer: str, python: Path, workdir: Path, timeout: float = 60.0, never_ready: bool = False,
          model: str = "multiplier", grpc: bool = False) -> Server:
    """A ready ``peer`` ("mlserver" or "kserve") serving ``model`` ("multiplier" or "iris"), run by the venv of
    ``python``; ServerFailed otherwise.

    With ``never_ready`` the multiplier never becomes ready (ODAHU_PEER_NEVER_READY=1, see the model files) and
    the server is awaited on ``/v2/health/live`` instead. MLServer serves gRPC always; KServe with ``grpc``
    (off by default, as KServe's own tests here were measured)."""
    if peer not in ("mlserver", "kserve") or model not in MODELS:
        raise ValueError(f"no such peer or model: {peer!r}, {model!r}")
    if never_ready and model != "multiplier":
        raise ValueError("only the multiplier can be made never ready")
    port = free_port()
    grpc_port = free_port() if grpc or peer == "mlserver" else None
    layout = {("mlserver", "multiplier"): _mlserver, ("kserve", "multiplier"): _kserve,
              ("mlserver", "iris"): _mlserver_iris, ("kserve", "iris"): _kserve_iris}[peer, model]
    command, cwd = layout(python, workdir, port, grpc_port)
    log = workdir / "server.log"
    began = time.monotonic()
    with open(log, "wb") as sink:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "MLSERVER_"))}
        env["ODAHU_PEER_NEVER_READY"] = "1" if never_ready else "0"
        process = subprocess.Popen(command, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(peer, port, process, log, 0.0, grpc_port)
    try:
        _wait_for(server, "/v2/health/live" if never_ready else "/v2/health/ready", began + timeout)
        if grpc_port is not None:
            _wait_for_port(server, grpc_port, began + timeout)
    except BaseException:
        stop(server)
        raise
    server.start_seconds = time.monotonic() - began
    return server


@contextlib.contextmanager
def serving(peer: str, model: str = "multiplier", timeout: float = 60.0, grpc: bool = False) -> Iterator[Server]:
    """A ready ``peer`` serving ``model`` for the ``with`` block, in a temporary folder; stopped (its whole
    process group) and the folder removed afterwards. When the peer's venv cannot be made, the calling test is
    skipped with the one-line reason (pytest.skip); a server that does not become ready is ServerFailed."""
    import pytest

    from peers import venvs

    try:
        python = venvs.ensure(venvs.PEERS[peer])
    except venvs.PeerUnavailable as error:
        pytest.skip(str(error))
    with tempfile.TemporaryDirectory(prefix=f"odahu-peer-{peer}-{model}-") as workdir:
        server = start(peer, python, Path(workdir), timeout=timeout, model=model, grpc=grpc)
        try:
            yield server
        finally:
            stop(server)


def stop(server: Server, grace: float = 10.0) -> None:
    """End the server's whole process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(server.process.pid, sig)
        except ProcessLookupError:
            break
        try:
            server.process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # workers that outlived the leader are in the group still
        os.killpg(server.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5  # SIGKILL is delivered asynchronously: wait until the group is gone
    while time.monotonic() < deadline:
        try:
            os.killpg(server.process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _wait_for(server: Server, path: str, deadline: float) -> None:
    while True:
        if server.process.poll() is not None:
            raise ServerFailed(f"{server.name} exited with status {server.process.returncode} before it was "
                               f"ready: {_last_line(server.log)}")
        try:
            if call(server.port, "GET", path, timeout=2).status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServerFailed(f"{server.name} not answering 200 on {path} (port {server.port}) in time: "
                               f"{_last_line(server.log)}")
        time.sleep(0.1)


def _wait_for_port(server: Server, port: int, deadline: float) -> None:
    """Until a TCP connection to ``port`` on HOST is accepted (KServe starts its REST and gRPC servers side by
    side: REST may be ready first)."""
    while True:
        if server.process.poll() is not None:
            raise ServerFailed(f"{server.name} exited with status {server.process.returncode}: "
                               f"{_last_line(server.log)}")
        try:
            socket.create_connection((HOST, port), timeout=2).close()
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServerFailed(f"{server.name} not accepting connections on its gRPC port {port} in time: "
                               f"{_last_line(server.log)}")
        time.sleep(0.1)


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _mlserver(python: Path, workdir: Path, port: int, grpc_port: int | None) -> tuple[list[str], Path]:
    repository = workdir / "repository"
    model = repository / MODEL_NAME
    model.mkdir(parents=True)
    shutil.copy(MULTIPLIER, model / "multiplier.txt")
    shutil.copy(HERE / "mlserver_runtime.py", model / "mlserver_runtime.py")
    (model / "model-settings.json").write_text(json.dumps({
        "name": MODEL_NAME, "implementation": "mlserver_runtime.Multiplier",
        "parameters": {"uri": "./multiplier.txt", "version": MLSERVER_MODEL_VERSION}}))
    echo = repository / "echo"
    echo.mkdir()
    shutil.copy(HERE / "mlserver_runtime.py", echo / "mlserver_runtime.py")
    (echo / "model-settings.json").write_text(json.dumps({"name": "echo", "implementation": "mlserver_runtime.Echo"}))
    (repository / "settings.json").write_text(json.dumps({
        "host": HOST, "http_port": port, "grpc_port": grpc_port, "metrics_endpoint": None,
        "parallel_workers": 0, "debug": False}))
    return [str(python.parent / "mlserver"), "start", str(repository)], repository


def _kserve(python: Path, workdir: Path, port: int, grpc_port: int | None) -> tuple[list[str], Path]:
    model = workdir / "model"
    model.mkdir(parents=True)
    shutil.copy(MULTIPLIER, model / "multiplier.txt")
    return [str(python), str(HERE / "kserve_model.py"), "--model_dir", str(model), "--http_port", str(port),
            "--model_name", MODEL_NAME, *_kserve_grpc(grpc_port)], workdir


def _mlserver_iris(python: Path, workdir: Path, port: int, grpc_port: int | None) -> tuple[list[str], Path]:
    """A model repository with the iris runtime (and predictor.py next to it) reading examples/iris/model in
    place; the signature declared in examples/iris/model/model-settings.json is declared to MLServer too."""
    repository = workdir / "repository"
    model = repository / IRIS_NAME
    model.mkdir(parents=True)
    shutil.copy(IRIS / "mlserver_runtime.py", model / "mlserver_runtime.py")
    shutil.copy(IRIS / "predictor.py", model / "predictor.py")
    signature = json.loads((IRIS_MODEL / "model-settings.json").read_text())
    (model / "model-settings.json").write_text(json.dumps({
        "name": IRIS_NAME, "implementation": "mlserver_runtime.Iris",
        "parameters": {"uri": str(IRIS_MODEL), "version": IRIS_VERSION},
        "inputs": signature["inputs"], "outputs": signature["outputs"]}))
    (repository / "settings.json").write_text(json.dumps({
        "host": HOST, "http_port": port, "grpc_port": grpc_port, "metrics_endpoint": None,
        "parallel_workers": 0, "debug": False}))
    return [str(python.parent / "mlserver"), "start", str(repository)], repository


def _kserve_iris(python: Path, workdir: Path, port: int, grpc_port: int | None) -> tuple[list[str], Path]:
    return [str(python), str(HERE / "kserve_model.py"), "--iris", "--model_dir", str(IRIS_MODEL),
            "--http_port", str(port), *_kserve_grpc(grpc_port)], workdir


def _kserve_grpc(grpc_port: int | None) -> list[str]:
    return [] if grpc_port is None else ["--with_grpc", "--grpc_port", str(grpc_port)]


def listening_addresses(server: Server) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The local IP addresses on which the processes of ``server``'s process group listen for TCP (Linux /proc;
    an IPv4-mapped IPv6 address is given as its IPv4 address)."""
    inodes = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != server.process.pid:  # fields after the name: state, ppid, pgrp
                continue
            for fd in (stat.parent / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:  # the process ended meanwhile
            continue
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addresses.add(_address(fields[1].split(":")[0]))
    return addresses


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net/tcp's address (32-bit words in host byte order, little-endian here)."""
    raw = b"".join(bytes.fromhex(hex_address[i:i + 8])[::-1] for i in range(0, len(hex_address), 8))
    address = ipaddress.ip_address(raw)
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address
