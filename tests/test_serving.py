"""``--serve``: the kit starting a candidate as a V2 REST server (conformance/run/serving.py), waiting until it is
ready and stopping it with everything it started.

Local commands run the reference server (predictor/server.py) and small stand-in servers (:data:`STAND_IN`);
every test checks afterwards, by a unique token in the command line, that no process of the server is left.
The image tests run a tiny image of the reference server under podman, and skip saying why when podman cannot
run containers here."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conformance.run.process import containment
from conformance.run.serving import NETWORK, ServeProblem, Served, ensure_network, serve_command, serve_image

REPO = Path(__file__).resolve().parents[1]
SERVER = REPO / "predictor" / "server.py"
PROJECT_YAML = 'model:\n  name: multiplier\n  version: "1"\n'
GIB2 = 2 << 30

#: A stand-in V2 server, ``python -c STAND_IN MODE TOKEN [FOLDER]`` (TOKEN only marks its processes): it listens on
#: 127.0.0.1:$PORT. ``ready``: /v2/health/ready is 200 and /facts tells what it sees (its argv, ODAHU_* and PORT
#: variables, memory limits, whether FOLDER is writable). ``never``: 503 forever. ``fork``: ready, after forking a
#: child of its group and a daemon in a session of its own, both ignoring SIGTERM. ``stubborn``: ready, and
#: ignores SIGTERM itself. ``chatty``: writes 5 lines on stdout and stderr, then is ready.
STAND_IN = r"""
import json, os, resource, signal, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
mode = sys.argv[1]

def cgroup_memory():
    for line in open("/proc/self/cgroup"):
        number, controllers, path = line.rstrip("\n").split(":", 2)
        for name in ("memory/" + path.lstrip("/") + "/memory.limit_in_bytes", path.lstrip("/") + "/memory.max"):
            if (controllers == "memory" and name.startswith("memory/")) or (number == "0" and name.endswith(".max")):
                try:
                    return int(open("/sys/fs/cgroup/" + name).read())
                except (OSError, ValueError):
                    pass
    return None

def writable(folder):
    try:
        open(os.path.join(folder, "written-by-server"), "w").close()
        return True
    except OSError:
        return False

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/v2/health/ready":
            code, body = (503, {}) if mode == "never" else (200, {"ready": True})
        elif self.path == "/facts":
            code, body = 200, {"argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items()
                                                              if k.startswith("ODAHU_") or k == "PORT"},
                               "rlimit_data": resource.getrlimit(resource.RLIMIT_DATA)[0],
                               "cgroup_memory": cgroup_memory(),
                               "writable": writable(sys.argv[3]) if len(sys.argv) > 3 else None}
        else:
            code, body = 404, {"error": "no"}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass

if mode == "fork":
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(1)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                time.sleep(1)
        os._exit(0)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "chatty":
    for i in range(5):
        print(f"out {i}", flush=True)
        print(f"err {i}", file=sys.stderr, flush=True)
server = HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)) if mode != "stubborn" else None
server.serve_forever()
"""


def make_model(folder: Path) -> Path:
    folder.mkdir()
    (folder / "multiplier.txt").write_text("2\n")
    (folder / "odahuflow.project.yaml").write_text(PROJECT_YAML)
    return folder


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "model")


@pytest.fixture
def token() -> str:
    return "odahu-serve-test-" + secrets.token_hex(6)


def processes_with(token: str) -> list[str]:
    """``pid: command line`` of every process whose command line holds ``token`` (zombies left out)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if token in cmdline and state not in (b"Z", b"X"):
            found.append(f"{name}: {cmdline}")
    return found


def get(url: str, path: str) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def post(url: str, path: str, body: dict) -> tuple[int, dict]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def stand_in(mode: str, token: str, *extra: str) -> list[str]:
    return [sys.executable, "-c", STAND_IN, mode, token, *extra]


INFER_BODY = {"id": "r1", "inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [1, 2]}]}


# --------------------------------------------------------------------------------------------------------------
# A local command


def test_the_reference_server_is_served_with_port_and_model_filled_in_and_stopped(model, token, tmp_path, monkeypatch):
    argv = [sys.executable, "-X", token, str(SERVER), "--port", "{port}", "--model", "{model}", "--host", "127.0.0.1"]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its own: other tests (xdist workers) serve meanwhile
    before = logs_folders()
    served = serve_command(argv, model, ready_timeout=20)
    try:
        port = int(served.url.rsplit(":", 1)[1])
        assert served.url == f"http://127.0.0.1:{port}"
        assert served.command == [sys.executable, "-X", token, str(SERVER), "--port", str(port),
                                  "--model", str(model.resolve()), "--host", "127.0.0.1"]
        assert 0 < served.start_seconds < 20
        assert served.alive() and served.exit_status() is None
        assert get(served.url, "/v2/health/ready") == (200, b'{"ready":true}')
        status, answer = post(served.url, "/v2/models/multiplier/infer", INFER_BODY)
        assert status == 200 and answer["outputs"][0]["data"] == [2, 4]
        assert served.output() == f"server: model multiplier version 1 ready on http://127.0.0.1:{port}"
    finally:
        served.stop()
    assert not served.alive()
    assert served.exit_status() == 0  # SIGTERM: the reference server's clean stop
    assert served.output().endswith(f"ready on http://127.0.0.1:{port}")  # still readable once stopped
    served.stop()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert processes_with(token) == []
    assert logs_folders() <= before  # its log folder removed


def test_the_server_sees_port_and_model_variables_and_the_containment_of_a_batch_run(model, token, tmp_path):
    os.environ["ODAHU_INPUT_PATH"] = "/leaked"  # the kit's own ODAHU_* variables are not passed on
    try:
        served = serve_command(stand_in("ready", token, str(tmp_path)), model, ready_timeout=20)
    finally:
        del os.environ["ODAHU_INPUT_PATH"]
    try:
        port = served.url.rsplit(":", 1)[1]
        status, body = get(served.url, "/facts")
        facts = json.loads(body)
    finally:
        served.stop()
    assert status == 200
    assert facts["argv"] == ["ready", token, str(tmp_path)]
    assert facts["env"] == {"ODAHU_MODEL_PATH": str(model.resolve()), "PORT": port}
    assert GIB2 in (facts["cgroup_memory"], facts["rlimit_data"])  # the image's memory limit, 2g
    assert facts["writable"] is not None
    if containment("auto")[0] == "namespace":  # as a batch local run: what it writes does not reach the host
        assert not (tmp_path / "written-by-server").exists()  # (in /tmp it may write, in a private layer)
    assert processes_with(token) == []


def test_a_given_port_is_used(model, token):
    port = serving_free_port()
    served = serve_command(stand_in("ready", token), model, port=port, ready_timeout=20)
    try:
        assert served.url == f"http://127.0.0.1:{port}"
        assert json.loads(get(served.url, "/facts")[1])["env"]["PORT"] == str(port)
    finally:
        served.stop()


def serving_free_port() -> int:
    from conformance.run.serving import free_port

    return free_port()


def test_a_port_in_use_is_one_line_and_nothing_is_started(model, tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        marker = tmp_path / "started"
        with pytest.raises(ServeProblem) as caught:
            serve_command(["touch", str(marker)], model, port=port, ready_timeout=5)
    assert str(caught.value) == f"port {port} is in use on 127.0.0.1"
    time.sleep(0.2)
    assert not marker.exists()


def test_a_server_that_exits_at_once_says_its_status_and_last_output(model, token):
    script = f"echo {token} starting; echo loading the model; echo 'no multiplier.txt in the model' >&2; exit 3"
    began = time.monotonic()
    with pytest.raises(ServeProblem) as caught:
        serve_command(["sh", "-c", script], model, ready_timeout=20)
    assert str(caught.value) == ("the server exited with status 3 before it was ready: "
                                 f"{token} starting | loading the model | no multiplier.txt in the model")
    assert time.monotonic() - began < 5  # not the whole ready timeout
    assert processes_with(token) == []


def test_a_server_killed_by_a_signal_says_which(model):
    with pytest.raises(ServeProblem) as caught:
        serve_command(["sh", "-c", "kill -9 $$"], model, ready_timeout=20)
    assert str(caught.value) == "the server exited with status -9 (killed by SIGKILL) before it was ready: (nothing)"


@pytest.mark.parametrize("mode, seen", [
    ("never", "status 503"),  # it answers, but not ready
    ("silent", "connection refused at 127.0.0.1:{port}"),  # nothing listens (where the kit looked is said)
])
def test_a_server_never_ready_is_stopped_and_one_line(model, token, mode, seen):
    port = serving_free_port()
    argv = stand_in("never", token) if mode == "never" else ["sh", "-c", f"echo {token} waiting; sleep 60; : {token}"]
    began = time.monotonic()
    with pytest.raises(ServeProblem) as caught:
        serve_command(argv, model, port=port, ready_timeout=1.0)
    took = time.monotonic() - began
    last = f"{token} waiting" if mode == "silent" else "(nothing)"
    assert str(caught.value) == (f"the server was not ready within 1 s (GET /v2/health/ready: {seen.format(port=port)}): "
                                 f"{last}")
    assert 1.0 <= took < 4.0
    assert processes_with(token) == []


def server_processes(token: str) -> list[int]:
    """The pids of the stand-in server's own processes (not unshare's nor the kit's supervisor's)."""
    return [int(line.split(":")[0]) for line in processes_with(token) if " -I -S -c " not in line]


@pytest.mark.parametrize("isolation", ["namespace", "sweep"])
def test_stop_leaves_nothing_of_children_that_ignore_sigterm(model, token, isolation):
    if containment(isolation)[0] is None:
        pytest.skip(f"no {isolation} here: {containment(isolation)[2]}")
    served = serve_command(stand_in("fork", token), model, ready_timeout=20, isolation=isolation)
    try:
        end = time.monotonic() + 5
        while len(server_processes(token)) < 3 and time.monotonic() < end:  # the server, its child, the daemon
            time.sleep(0.02)
        pids = server_processes(token)
        assert len(pids) == 3, processes_with(token)
        groups = {os.getpgid(pid) for pid in pids}
        assert len(groups) == 2  # the daemon is in a session (and group) of its own
    finally:
        began = time.monotonic()
        served.stop()
    assert time.monotonic() - began < 3  # the main process ended on SIGTERM: the rest is killed at once
    assert processes_with(token) == []
    if isolation == "namespace":  # (under a sweep a killed orphan may stay a zombie until the host's init reaps it)
        for group in groups:
            with pytest.raises(ProcessLookupError):
                os.killpg(group, 0)
    assert served.exit_status() == 0


#: A kit that starts a server (``python -c KIT ISOLATION MODEL ARGV...``), says "up" and waits to be killed.
KIT = r"""
import sys, time
from pathlib import Path
from conformance.run.serving import serve_command
served = serve_command(sys.argv[3:], Path(sys.argv[2]), ready_timeout=20, isolation=sys.argv[1])
print("up", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("isolation", ["namespace", "sweep"])
def test_a_kit_killed_outright_leaves_nothing_of_its_server(model, token, isolation):
    """The kit SIGKILLed (no chance to stop its server): the supervisor sees it gone and ends the run, the
    server's child and its daemon in a session of its own included."""
    if containment(isolation)[0] is None:
        pytest.skip(f"no {isolation} here: {containment(isolation)[2]}")
    kit = subprocess.Popen([sys.executable, "-c", KIT, isolation, str(model), *stand_in("fork", token)],
                           stdout=subprocess.PIPE, cwd=REPO)
    try:
        assert kit.stdout is not None and kit.stdout.readline() == b"up\n"
        end = time.monotonic() + 5
        while len(set(server_processes(token)) - {kit.pid}) < 3 and time.monotonic() < end:
            time.sleep(0.02)  # the server, its child, the daemon
        assert len(set(server_processes(token)) - {kit.pid}) == 3, processes_with(token)
    finally:
        kit.kill()
        kit.wait()
    end = time.monotonic() + 5
    while processes_with(token) and time.monotonic() < end:
        time.sleep(0.05)
    assert processes_with(token) == []


def test_a_server_ignoring_sigterm_is_killed_after_the_grace(model, token):
    served = serve_command(stand_in("stubborn", token), model, ready_timeout=20)
    served.stop_grace = 0.5
    began = time.monotonic()
    served.stop()
    assert 0.5 <= time.monotonic() - began < 3
    assert processes_with(token) == []
    assert served.exit_status() == -9


def test_output_is_the_last_lines_of_stdout_and_stderr(model, token):
    served = serve_command(stand_in("chatty", token), model, ready_timeout=20)
    try:
        assert served.output() == "err 3 | out 4 | err 4"
        assert served.output(1) == "err 4"
    finally:
        served.stop()


def test_a_server_that_dies_while_serving_is_seen(model, token):
    served = serve_command(stand_in("ready", token), model, ready_timeout=20)
    try:
        pid = int(processes_with(token)[0].split(":")[0])
        os.kill(pid, 9)
        end = time.monotonic() + 5
        while served.alive() and time.monotonic() < end:
            time.sleep(0.02)
        assert not served.alive() and served.exit_status() == -9
    finally:
        served.stop()


def test_an_interrupted_wait_stops_the_server(model, token, monkeypatch):
    import conformance.run.serving as serving

    def interrupted(*args):
        raise KeyboardInterrupt  # Ctrl-C, or a SIGTERM the kit turned into one, while waiting
    monkeypatch.setattr(serving, "_look", interrupted)
    with pytest.raises(KeyboardInterrupt):
        serve_command(stand_in("ready", token), model, ready_timeout=20)
    assert processes_with(token) == []


def logs_folders() -> set[str]:
    return {path.name for path in Path(tempfile.gettempdir()).glob("odahu-conformance-serve-*")}


@pytest.fixture
def own_names(monkeypatch) -> str:
    """The served containers of this test alone get names with the prefix returned: other tests (other xdist
    workers) start and remove served containers meanwhile."""
    import conformance.run.serving as serving

    prefix = f"{serving.CONTAINER_PREFIX}t{secrets.token_hex(4)}-"
    monkeypatch.setattr(serving, "CONTAINER_PREFIX", prefix)
    return prefix + "serve-"


def test_a_command_that_cannot_start_is_one_line(model):
    with pytest.raises(ServeProblem) as caught:
        serve_command(["no-such-server-program"], model, ready_timeout=5)
    assert str(caught.value) == "cannot start 'no-such-server-program': command not found"


# --------------------------------------------------------------------------------------------------------------
# An image (podman here; skipped, saying why, where it cannot run containers)

BASE_IMAGE = "localhost/odahu/multiplier-predictor:dev"  # python3, numpy and PyYAML, a uid-1000 user
TEST_IMAGE = "localhost/odahu-conformance/serve-test:dev"
CONTAINERFILE = f"""FROM {BASE_IMAGE}
COPY server.py reference.py /opt/server/
ENTRYPOINT ["python3", "/opt/server/server.py", "--host", "0.0.0.0"]
"""


@pytest.fixture(scope="module")
def podman(tmp_path_factory) -> str:
    """podman with an image of the reference server (built here offline from the predictor image)."""
    from helpers import usable_engine

    engine = usable_engine("podman", (BASE_IMAGE,))
    context = tmp_path_factory.mktemp("serve-image")
    for name in ("server.py", "reference.py"):
        (context / name).write_bytes((REPO / "predictor" / name).read_bytes())
    (context / "Containerfile").write_text(CONTAINERFILE)
    done = subprocess.run([engine, "build", "-q", "--network", "none", "-t", TEST_IMAGE, "-f",
                           str(context / "Containerfile"), str(context)], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    return engine


def container_name(served: Served) -> str:
    return served.command[served.command.index("--name") + 1]


def exists(engine: str, name: str) -> bool:
    return subprocess.run([engine, "container", "exists", name], capture_output=True, timeout=60).returncode == 0


#: Run in the served container: what it can reach. The host's loopback-bound port through the network's
#: gateway and through the host's own address, 1.1.1.1, and whether it has a default route.
PROBE = r"""
import json, socket, sys
def reach(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return "connected"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
routes = [line.split() for line in open("/proc/net/route").read().splitlines()[1:]]
gateway, port, host_address = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print(json.dumps({"default_route": any(fields[1] == "00000000" for fields in routes),
                  "gateway": reach(gateway, port), "host": reach(host_address, port),
                  "loopback": reach("127.0.0.1", port), "outside": reach("1.1.1.1", 80)}))
"""


def host_address() -> str:
    """An address of this host other than loopback and the serve network's bridge."""
    for line in subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout.splitlines():
        address = line.split()[3].split("/")[0]
        if not address.startswith("127.") and not address.startswith("10.89."):
            return address
    return "192.0.2.1"


def test_an_image_is_served_on_an_internal_network_and_removed(podman, model):
    with socket.socket() as listener:  # a host service bound to loopback: the container must not reach it
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        host_port = listener.getsockname()[1]
        served = serve_image(podman, TEST_IMAGE, model, args=["--port", "{port}", "--model", "{model}"],
                             ready_timeout=60)
        name = container_name(served)
        try:
            assert served.url.startswith("http://") and served.url.endswith(":8080")
            assert get(served.url, "/v2/health/ready") == (200, b'{"ready":true}')  # the kit reaches it
            status, answer = post(served.url, "/v2/models/multiplier/infer", INFER_BODY)
            assert status == 200 and answer["outputs"][0]["data"] == [2, 4]
            end = time.monotonic() + 5
            while served.output() == "(nothing)" and time.monotonic() < end:  # the engine's log may lag a little
                time.sleep(0.05)
            assert served.output() == "server: model multiplier version 1 ready on http://0.0.0.0:8080"
            assert served.alive() and served.exit_status() is None
            for flag in ("--memory 2g", "--cpus 2", "--pids-limit 4096", "--user 1000:1000", f"--network {NETWORK}",
                         f"-v {model.resolve()}:/mnt/models:ro", "-e ODAHU_MODEL_PATH=/mnt/models", "-e PORT=8080"):
                assert f" {flag} " in " ".join(served.command)
            assert served.command[-5:] == [TEST_IMAGE, "--port", "8080", "--model", "/mnt/models"]
            inspect = json.loads(subprocess.run([podman, "network", "inspect", NETWORK], capture_output=True,
                                                timeout=60).stdout)[0]
            assert inspect["internal"] is True
            gateway = inspect["subnets"][0]["gateway"]
            probe = subprocess.run([podman, "exec", name, "python3", "-c", PROBE, gateway, str(host_port),
                                    host_address()], capture_output=True, text=True, timeout=60)
            seen = json.loads(probe.stdout)
            assert seen == {"default_route": False, "gateway": "Connection refused", "host": "Network is unreachable",
                            "loopback": "Connection refused", "outside": "Network is unreachable"}, seen
        finally:
            served.stop()
    assert not exists(podman, name)
    assert not served.alive() and served.exit_status() == 0
    assert served.output().endswith("ready on http://0.0.0.0:8080")


def test_an_image_is_served_through_the_docker_cli_alike(podman, model):
    from helpers import usable_engine

    docker = usable_engine("docker", (TEST_IMAGE,))  # here: the docker CLI on podman's socket
    served = serve_image(docker, TEST_IMAGE, model, port=8081, args=["--port", "{port}"], ready_timeout=60)
    try:
        assert served.url.endswith(":8081") and served.command[:3] == [docker, "run", "--detach"]
        assert get(served.url, "/v2/health/ready") == (200, b'{"ready":true}')
    finally:
        served.stop()
    assert not exists(podman, container_name(served))
    assert served.exit_status() == 0


def test_a_missing_image_is_one_line(podman, model):
    with pytest.raises(ServeProblem) as caught:
        serve_image(podman, "localhost/odahu-conformance/no-such-image:dev", model, ready_timeout=5)
    assert str(caught.value).startswith("image localhost/odahu-conformance/no-such-image:dev is not available to "
                                        "podman: ")
    assert "\n" not in str(caught.value)


def test_an_image_that_exits_at_once_is_one_line_and_removed(podman, model, own_names):
    before = serve_containers(podman, own_names)
    with pytest.raises(ServeProblem) as caught:
        serve_image(podman, TEST_IMAGE, model, command=["sh", "-c", "echo no model here >&2; exit 4"],
                    ready_timeout=30)
    assert str(caught.value) == "the server exited with status 4 before it was ready: no model here"
    assert serve_containers(podman, own_names) - before == set()


def test_an_image_never_ready_is_stopped_and_removed(podman, model, own_names):
    before = serve_containers(podman, own_names)
    began = time.monotonic()
    with pytest.raises(ServeProblem) as caught:
        serve_image(podman, TEST_IMAGE, model, command=["sh", "-c", "echo waiting; exec sleep 60"], ready_timeout=1.5)
    assert re.fullmatch(r"the server was not ready within 1\.5 s \(GET /v2/health/ready: connection refused at "
                        r"\d+(\.\d+){3}:8080\): waiting", str(caught.value)), str(caught.value)
    assert time.monotonic() - began < 6  # sleep (pid 1) ignores SIGTERM: killed after the short grace
    assert serve_containers(podman, own_names) - before == set()


def serve_containers(engine: str, prefix: str = "odahu-conformance-serve-") -> set[str]:
    """The served containers there are now whose names start with ``prefix`` (the kit's runs elsewhere may have
    some too)."""
    done = subprocess.run([engine, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, timeout=60)
    return {name for name in done.stdout.split() if name.startswith(prefix)}


def test_the_network_is_made_internal_once_and_a_network_with_a_route_out_is_refused(podman):
    name = "odahu-conformance-serve-test-" + secrets.token_hex(4)

    def inspect() -> dict:
        done = subprocess.run([podman, "network", "inspect", name], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)[0]

    try:
        ensure_network(podman, name)
        made = inspect()
        assert made["internal"] is True
        ensure_network(podman, name)  # there already: reused
        assert inspect()["id"] == made["id"]
        subprocess.run([podman, "network", "rm", name], capture_output=True, timeout=60, check=True)
        subprocess.run([podman, "network", "create", name], capture_output=True, timeout=60, check=True)
        with pytest.raises(ServeProblem) as caught:
            ensure_network(podman, name)
        assert str(caught.value) == (f"the podman network {name} exists but is not internal (it would give the "
                                     f"server a route out): remove it ('podman network rm {name}') and the kit "
                                     "makes it again")
    finally:
        subprocess.run([podman, "network", "rm", "--force", name], capture_output=True, timeout=60)


def test_an_image_whose_last_line_came_in_pieces_shows_it(podman, model):
    # podman 4.3's `logs --tail` answers an empty line when the log ends with a line logged in pieces
    script = ("import sys, time\nsys.stderr.write('first line\\nthe model '); sys.stderr.flush(); time.sleep(0.3)\n"
              "sys.stderr.write('is missing\\n'); sys.stderr.flush(); time.sleep(60)")
    with pytest.raises(ServeProblem) as caught:
        serve_image(podman, TEST_IMAGE, model, command=["python3", "-c", script], ready_timeout=1.5)
    assert str(caught.value).endswith("): first line | the model is missing")
