"""Start a real V2 peer serving the multiplier on loopback, talk to it over REST, stop it.

``start`` lays out the peer's models in ``workdir``: "multiplier" (multiplier.txt from the checkout's ``model/``)
and "echo" (answers its inputs undecoded; see the model files),
starts the server in its own process group bound to 127.0.0.1 on free ports, and waits for
``GET /v2/health/ready`` to answer 200 (polled every 0.1 s, at most ``timeout`` seconds); ``stop`` ends the
whole process group. ``call`` is one HTTP exchange with the standard library.
"""

from __future__ import annotations

import dataclasses
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MULTIPLIER = HERE.parent.parent / "model" / "multiplier.txt"
HOST = "127.0.0.1"
MODEL_NAME = "multiplier"
#: The version MLServer's model is given (model-settings.json); KServe's Python models have none.
MLSERVER_MODEL_VERSION = "1"


class ServerFailed(Exception):
    """The server exited or was not ready in time; the message is one line and quotes its last output."""


@dataclasses.dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log: Path
    start_seconds: float


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


def start(peer: str, python: Path, workdir: Path, timeout: float = 60.0, never_ready: bool = False) -> Server:
    """A ready ``peer`` ("mlserver" or "kserve") run by the venv of ``python``; ServerFailed otherwise.

    With ``never_ready`` the model never becomes ready (ODAHU_PEER_NEVER_READY=1, see the model files) and the
    server is awaited on ``/v2/health/live`` instead."""
    port = free_port()
    command, cwd = (_mlserver if peer == "mlserver" else _kserve)(python, workdir, port)
    log = workdir / "server.log"
    began = time.monotonic()
    with open(log, "wb") as sink:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "MLSERVER_"))}
        env["ODAHU_PEER_NEVER_READY"] = "1" if never_ready else "0"
        process = subprocess.Popen(command, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(peer, port, process, log, 0.0)
    try:
        _wait_for(server, "/v2/health/live" if never_ready else "/v2/health/ready", began + timeout)
    except BaseException:
        stop(server)
        raise
    server.start_seconds = time.monotonic() - began
    return server


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


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _mlserver(python: Path, workdir: Path, port: int) -> tuple[list[str], Path]:
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
        "host": HOST, "http_port": port, "grpc_port": free_port(), "metrics_endpoint": None,
        "parallel_workers": 0, "debug": False}))
    return [str(python.parent / "mlserver"), "start", str(repository)], repository


def _kserve(python: Path, workdir: Path, port: int) -> tuple[list[str], Path]:
    model = workdir / "model"
    model.mkdir(parents=True)
    shutil.copy(MULTIPLIER, model / "multiplier.txt")
    return [str(python), str(HERE / "kserve_model.py"), "--model_dir", str(model), "--http_port", str(port),
            "--model_name", MODEL_NAME], workdir


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
