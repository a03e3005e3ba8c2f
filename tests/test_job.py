"""Tests of conformance.job: a whole InferenceJob run locally as the platform runs it.

The kit's manifests (remote, packed, embedded) run the reference predictor as a local command and, when an engine
can run containers here, as the reference images under podman and docker; the responses uploaded into the output
connection must reproduce the golden fixtures. Bad input must end with exit 2 and one error line, never a traceback;
a candidate that leaves stray files or bad responses must end with exit 1 and have them named.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest
from helpers import usable_engine

from conformance.job import parse_connection, parse_connections, run_job
from conformance.odahu import archives
from conformance.odahu.model import load_model
from conformance.oracle.compare import compare
from conformance.oracle.expect import expect
from conformance.v2 import documents

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = REPO / "manifests"
FIXTURES = REPO / "fixtures"
MODEL = REPO / "model"
PREDICTOR = REPO / "predictor" / "fast.py"
LOCAL_CMD = f"{shlex.quote(sys.executable)} {shlex.quote(str(PREDICTOR))}"
IMAGE = "localhost/odahu/multiplier-predictor:dev"
EMBEDDED_IMAGE = "localhost/odahu/multiplier-predictor-embedded:dev"

SERVICE = MANIFESTS / "inferenceservice.yaml"
JOB = MANIFESTS / "inferencejob.yaml"
PACKED_SERVICE = MANIFESTS / "inferenceservice-packed.yaml"
PACKED_JOB = MANIFESTS / "inferencejob-packed.yaml"
EMBEDDED_SERVICE = MANIFESTS / "inferenceservice-embedded.yaml"
EMBEDDED_JOB = MANIFESTS / "inferencejob-embedded.yaml"

REQUEST = {"id": "r", "inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}]}


# ---------------------------------------------------------------------------------------------------------------
# helpers


class Buckets:
    """Three connection folders laid out as the kit's manifests expect them."""

    def __init__(self, root: Path, requests: Path | dict | None = FIXTURES / "input"):
        self.input, self.models, self.output = root / "input-bucket", root / "models-bucket", root / "output-bucket"
        self.requests = self.input / "multiplier" / "requests"
        self.requests.parent.mkdir(parents=True)
        if isinstance(requests, Path):
            shutil.copytree(requests, self.requests)
        else:
            self.requests.mkdir()
            for name, body in (requests or {}).items():
                (self.requests / name).write_text(body if isinstance(body, str) else json.dumps(body))
        (self.models / "multiplier").mkdir(parents=True)
        shutil.copytree(MODEL, self.models / "multiplier" / "model")
        self.output.mkdir()

    def connections(self, *leave_out: str) -> dict[str, Path]:
        all_ = {"input-bucket": self.input, "models-bucket": self.models, "output-bucket": self.output}
        return {name: folder for name, folder in all_.items() if name not in leave_out}

    def responses(self, suffix: str = "") -> Path:
        return self.output / "multiplier" / f"responses{suffix}"


def job(service: Path, job_file: Path, connections: dict, **options) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = run_job(service, job_file, connections, out=lines.append, **options)
    text = "\n".join(lines)
    assert "Traceback" not in text, text
    return code, lines


def one_error(lines: list[str]) -> str:
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, lines
    assert "\n" not in errors[0]
    return errors[0]


def workspace_of(lines: list[str]) -> Path:
    (line,) = [line for line in lines if line.startswith("[3/6] stage:")]
    return Path(line.rsplit("workspace ", 1)[1])


def assert_reproduces_goldens(produced: Path) -> None:
    """Every golden response, and nothing else, is in ``produced``, each equal to what the oracle computes."""
    model = load_model(MODEL)
    golden = sorted(p.name for p in (FIXTURES / "output").iterdir())
    assert sorted(p.name for p in produced.iterdir()) == golden
    assert len(golden) == len(list((FIXTURES / "input").iterdir()))
    for name in golden:
        request = documents.load(FIXTURES / "input" / name, "request")
        expected = expect(request, model, name)
        for response in (produced / name, FIXTURES / "output" / name):
            findings = compare(documents.load(response, "response"), expected, request)
            assert not findings, [f.line() for f in findings]


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "candidate.py"
    path.write_text(textwrap.dedent(body))
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# ---------------------------------------------------------------------------------------------------------------
# connections


def test_parse_connection():
    assert parse_connection("input-bucket=/data/in") == ("input-bucket", Path("/data/in"))
    assert parse_connection("a=b=c") == ("a", Path("b=c"))
    for bad in ("input-bucket", "=/x", "name=", "name=  ", "two words=/x"):
        with pytest.raises(ValueError) as caught:
            parse_connection(bad)
        assert "\n" not in str(caught.value) and repr(bad) in str(caught.value)
    assert parse_connections(["a=/x", "b=/y", "a=/x"]) == {"a": Path("/x"), "b": Path("/y")}
    with pytest.raises(ValueError, match="given twice"):
        parse_connections(["a=/x", "a=/y"])


# ---------------------------------------------------------------------------------------------------------------
# whole jobs with the reference predictor as a local command


def test_remote_job_reproduces_the_goldens(tmp_path):
    buckets = Buckets(tmp_path)
    (buckets.requests / "readme.txt").write_text("not a request")
    (buckets.requests / "broken.json").write_text("{")
    (buckets.requests / "folder").mkdir()
    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=LOCAL_CMD)
    assert code == 0, lines
    assert [line[:5] for line in lines if line.startswith("[")] == [f"[{n}/6]" for n in range(1, 7)]
    assert lines[0] == "[1/6] manifests: service multiplier-batch (remote model), job multiplier-batch-job"
    skipped = [line for line in lines if line.startswith("  skipped ")]
    assert len(skipped) == 3 and all(any(n in s for s in skipped) for n in ("readme.txt", "broken.json", "folder"))
    # the golden invalid requests are passed on to the predictor, as the platform does, and said so
    assert sum("not strictly valid" in line and "[platform: kept]" in line for line in lines) == 5
    step = next(line for line in lines if line.startswith("[4/6]"))
    # --cmd was given: the line says so (not "no container engine", which would send the user looking for one)
    assert step.startswith(f"[4/6] run: local command {LOCAL_CMD!r} (--cmd) instead of the image ") and "engine" not in step
    assert_reproduces_goldens(buckets.responses())
    assert not workspace_of(lines).exists()  # removed after a successful job


def test_packed_job_reproduces_the_goldens(tmp_path):
    buckets = Buckets(tmp_path)
    archives.pack(MODEL, buckets.models / "multiplier" / "model.tar.gz")
    shutil.rmtree(buckets.models / "multiplier" / "model")  # only the archive is there, as on the platform
    code, lines = job(PACKED_SERVICE, PACKED_JOB, buckets.connections(), cmd=LOCAL_CMD, keep=True)
    assert code == 0, lines
    assert_reproduces_goldens(buckets.responses("-packed"))
    ws = workspace_of(lines)
    assert f"workspace kept: {ws}" in lines and (ws / "model" / "multiplier.txt").read_text() == "2\n"
    shutil.rmtree(ws)


def test_data_bindings_default_to_the_service(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST})
    bare = write_yaml(tmp_path / "job.yaml", """\
        kind: InferenceJob
        spec:
          inferenceServiceId: multiplier-batch
    """)
    code, lines = job(SERVICE, bare, buckets.connections(), cmd=LOCAL_CMD)
    assert code == 0, lines
    assert "(from the service)" in lines[1]
    assert json.loads((buckets.responses() / "a.json").read_text())["outputs"][0]["data"] == [2]


def test_embedded_job_with_a_local_command_says_the_model_is_missing_here(tmp_path):
    """A local command cannot see a model baked into an image: the job says so, and the predictor's refusal
    (P-CONFIG, exit non-zero) fails the job without an upload. The real embedded runs are the container tests."""
    buckets = Buckets(tmp_path, {"a.json": REQUEST})
    if Path("/opt/model").exists():
        pytest.skip("/opt/model exists on this machine")
    code, lines = job(EMBEDDED_SERVICE, EMBEDDED_JOB, buckets.connections("models-bucket"), cmd=LOCAL_CMD)
    assert code == 1, lines
    assert any("ODAHU_MODEL_PATH=/opt/model" in line and "does not exist on this machine" in line for line in lines)
    assert any(line.startswith("  (run): P-EXIT: exit status 2 after a batch") for line in lines)
    assert lines[-2].startswith("[6/6] upload: skipped")
    assert not buckets.responses("-embedded").exists()
    shutil.rmtree(workspace_of(lines))


# ---------------------------------------------------------------------------------------------------------------
# a candidate that fails


def test_stray_files_and_bad_responses_are_named_and_not_uploaded(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST, "b.json": REQUEST, "c.json": REQUEST})
    cmd = script(tmp_path, """\
        import json, os
        out = os.environ["ODAHU_OUTPUT_PATH"]
        os.makedirs(os.path.join(out, "sub"))
        good = {"model_name": "multiplier", "model_version": "1", "id": "r",
                "outputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [2]}]}
        bad = dict(good, outputs=[{"name": "x", "shape": [2], "datatype": "INT32", "data": [2]}])
        files = {"a.json": json.dumps(good), "b.json": json.dumps(bad), "c.json": '{"outputs": 5}',
                 "notes.txt": "done", "sub/d.json": json.dumps(good)}
        for name, text in files.items():
            with open(os.path.join(out, name), "w") as handle:
                handle.write(text)
    """)
    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=cmd)
    assert code == 1, lines
    text = "\n".join(lines)
    assert "  platform: b.json: kept" in lines  # the input step, entry by entry
    output = lines[next(i for i, line in enumerate(lines) if line.startswith("[5/6]")):]
    assert "F-COUNT" in next(line for line in output if "b.json" in line and line.startswith("  "))
    assert "[platform: kept]" in next(line for line in output if "b.json" in line and line.startswith("  "))
    assert "platform: dropped silently" in next(line for line in output if "c.json:" in line and line.startswith("  "))
    (dropped,) = [line for line in lines if "dropped silently by the platform" in line]
    assert "notes.txt" in dropped and "sub/" in dropped and "c.json" in dropped and "b.json" not in dropped
    # what the platform drops is the judge's P-NAME, one line per finding, the platform's decision beside it
    assert "  notes.txt: P-NAME: not a *.json file: the platform drops it [platform: dropped silently (not *.json: " \
           "the platform skips it unread)]" in lines
    assert any(line.startswith("  sub/: P-NAME: a subfolder in the output folder") for line in lines)
    assert "  sub/d.json: P-NAME: written in a subfolder: the platform drops it" in lines
    assert "P-EVERY" not in text  # three requests, three *.json answers
    assert sorted(p.name for p in buckets.responses().iterdir()) == ["a.json"]  # only the strictly valid one
    ws = workspace_of(lines)
    assert f"workspace kept: {ws}" in lines and (ws / "raw-output" / "notes.txt").exists()
    shutil.rmtree(ws)


def test_a_failing_predictor_is_reported_and_nothing_is_uploaded(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST, "b.json": REQUEST})
    cmd = script(tmp_path, """\
        import sys
        print("loading the model", file=sys.stderr)
        print("cannot load the model: boom", file=sys.stderr)
        sys.exit(3)
    """)
    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=cmd)
    assert code == 1, lines
    assert "  (run): P-EXIT: exit status 3 after a batch; output: loading the model | cannot load the model: boom" in lines
    assert "    | cannot load the model: boom" in lines
    assert any(line.startswith("[6/6] upload: skipped") for line in lines)
    assert not buckets.responses().exists()
    shutil.rmtree(workspace_of(lines))


def test_a_missing_response_fails_the_job(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST, "b.json": REQUEST})
    cmd = script(tmp_path, """\
        import os, shutil
        out = os.environ["ODAHU_OUTPUT_PATH"]
        os.makedirs(out)
        with open(os.path.join(out, "a.json"), "w") as handle:
            handle.write('{"model_name": "multiplier", "model_version": "1", "id": "r", '
                         '"outputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [2]}]}')
    """)
    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=cmd)
    assert code == 1, lines
    output = lines[next(i for i, line in enumerate(lines) if line.startswith("[5/6]")):]
    assert [line for line in output if "P-EVERY" in line] == ["  b.json: P-EVERY: no response written for this request"]
    assert sorted(p.name for p in buckets.responses().iterdir()) == ["a.json"]
    shutil.rmtree(workspace_of(lines))


def test_a_hung_predictor_is_killed(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST})
    cmd = script(tmp_path, "import time\ntime.sleep(60)\n")
    started = time.monotonic()
    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=cmd, timeout=1)
    assert time.monotonic() - started < 20
    assert code == 1, lines
    assert any(line.startswith("  (run): P-TIMELY: killed after ") and "(the run's timeout)" in line for line in lines)
    assert "  P-EVERY not checked: the run did not end by itself, so what it wrote is partial" in lines
    assert not buckets.responses().exists()
    shutil.rmtree(workspace_of(lines))


# ---------------------------------------------------------------------------------------------------------------
# bad input: exit 2, one line, no traceback


def test_unknown_connection(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST})
    code, lines = job(SERVICE, JOB, buckets.connections("models-bucket"), cmd=LOCAL_CMD)
    assert code == 2
    error = one_error(lines)
    assert "'models-bucket'" in error and "--connection models-bucket=DIR" in error
    assert not buckets.responses().exists()


def test_connection_folder_missing_or_path_leaving_it(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST})
    connections = buckets.connections()
    connections["output-bucket"] = tmp_path / "nowhere"
    code, lines = job(SERVICE, JOB, connections, cmd=LOCAL_CMD)
    assert code == 2 and "does not exist" in one_error(lines)
    escaping = write_yaml(tmp_path / "job.yaml", """\
        kind: InferenceJob
        spec:
          inferenceServiceId: multiplier-batch
          outputDestination: {connection: output-bucket, path: ../../elsewhere}
    """)
    code, lines = job(SERVICE, escaping, buckets.connections(), cmd=LOCAL_CMD)
    assert code == 2 and "leaves the connection's folder" in one_error(lines)
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("problem", ["missing", "yaml", "invalid", "kind"])
def test_unreadable_or_invalid_manifest(tmp_path, problem):
    buckets = Buckets(tmp_path, {"a.json": REQUEST})
    service = tmp_path / "service.yaml"
    if problem == "yaml":
        service.write_text("id: [unclosed\n")
    elif problem == "invalid":
        service.write_text(SERVICE.read_text().replace("image: registry", "imagex: registry"))
    elif problem == "kind":
        service = JOB  # a job where the service belongs
    code, lines = job(service, JOB, buckets.connections(), cmd=LOCAL_CMD)
    assert code == 2
    error = one_error(lines)
    assert str(service) in error
    if problem in ("invalid", "kind"):
        assert "K-SERVICE" in error
    assert not buckets.responses().exists()


def test_job_naming_another_service(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST})
    code, lines = job(SERVICE, EMBEDDED_JOB, buckets.connections(), cmd=LOCAL_CMD)
    assert code == 2
    error = one_error(lines)
    assert "K-JOB" in error and "/spec/inferenceServiceId" in error and "multiplier-batch-embedded" in error


def test_output_clash_refused_without_force(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST, "b.json": REQUEST})
    buckets.responses().mkdir(parents=True)
    (buckets.responses() / "b.json").write_text("keep me")
    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=LOCAL_CMD)
    assert code == 2
    error = one_error(lines)
    assert "b.json" in error and "a.json" not in error and "--force" in error
    assert sorted(p.name for p in buckets.responses().iterdir()) == ["b.json"]  # nothing written
    assert (buckets.responses() / "b.json").read_text() == "keep me"
    shutil.rmtree(workspace_of(lines))

    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=LOCAL_CMD, force=True)
    assert code == 0, lines
    assert "1 overwritten" in lines[-1]
    assert json.loads((buckets.responses() / "b.json").read_text())["outputs"][0]["data"] == [2]
    assert not [p for p in buckets.responses().iterdir() if not p.name.endswith(".json")]  # no temporary left


def test_unsafe_model_archive(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST})
    archive = buckets.models / "multiplier" / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("multiplier.txt", b"2\n"), ("../x", b"escaped")):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    before = sorted(os.listdir(tmp_path))
    code, lines = job(PACKED_SERVICE, PACKED_JOB, buckets.connections(), cmd=LOCAL_CMD)
    assert code == 2
    error = one_error(lines)
    assert "model.tar.gz" in error and "../x" in error
    assert sorted(os.listdir(tmp_path)) == before and not (buckets.models / "multiplier" / "x").exists()
    assert not buckets.responses("-packed").exists()


def test_engine_missing(tmp_path, monkeypatch):
    buckets = Buckets(tmp_path, {"a.json": REQUEST})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, lines = job(SERVICE, JOB, buckets.connections(), engine="docker", image=IMAGE)
    assert code == 2
    assert "docker is not installed" in one_error(lines)
    assert not any(line.startswith("workspace kept") for line in lines)


# ---------------------------------------------------------------------------------------------------------------
# real containers


@pytest.fixture(scope="module", params=["podman", "docker"])
def engine(request) -> str:
    return usable_engine(request.param, (IMAGE, EMBEDDED_IMAGE))


@pytest.mark.parametrize("variant", ["remote", "embedded"])
def test_container_job_reproduces_the_goldens(tmp_path, engine, variant):
    buckets = Buckets(tmp_path)
    if variant == "remote":
        code, lines = job(SERVICE, JOB, buckets.connections(), engine=engine, image=IMAGE)
        produced = buckets.responses()
    else:
        code, lines = job(EMBEDDED_SERVICE, EMBEDDED_JOB, buckets.connections("models-bucket"), engine=engine,
                          image=EMBEDDED_IMAGE)
        produced = buckets.responses("-embedded")
    assert code == 0, lines
    run_line = next(line for line in lines if line.startswith("[4/6]"))
    assert engine in run_line and "python3 /opt/predictor/predictor.py" in run_line
    assert_reproduces_goldens(produced)
    assert not workspace_of(lines).exists()


def test_container_image_missing(tmp_path, engine):
    buckets = Buckets(tmp_path, {"a.json": REQUEST})
    code, lines = job(SERVICE, JOB, buckets.connections(), engine=engine, image="localhost/odahu/no-such-image:none")
    assert code == 2
    assert "no-such-image" in one_error(lines)
    assert not buckets.responses().exists()


# ---------------------------------------------------------------------------------------------------------------
# entries that make the platform's whole validate step fail


def test_a_dangling_link_among_the_requests_fails_the_job_before_the_run(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST})
    (buckets.requests / "gone.json").symlink_to("missing.json")
    (buckets.requests / "link.json").symlink_to("a.json")
    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=LOCAL_CMD)
    assert code == 1, lines
    (step,) = [line for line in lines if line.startswith("[3/6]")]
    assert "the platform's step fails on gone.json" in step and "every file is lost" in step
    assert "  a.json: kept" in lines and "  link.json: kept (a symbolic link, judged by its target)" in lines
    assert any(line.startswith("  gone.json: fails the whole step (a dangling symbolic link") for line in lines)
    assert not any(line.startswith("[4/6]") for line in lines)  # the predictor never runs
    assert not buckets.responses().exists()


def test_a_dangling_link_in_the_output_fails_the_job_and_nothing_is_uploaded(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST})
    cmd = script(tmp_path, """\
        import json, os
        out = os.environ["ODAHU_OUTPUT_PATH"]
        os.makedirs(out, exist_ok=True)
        good = {"model_name": "multiplier", "model_version": "1", "id": "r",
                "outputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [2]}]}
        with open(os.path.join(out, "a.json"), "w") as handle:
            json.dump(good, handle)
        os.symlink("missing.json", os.path.join(out, "b.json"))
    """)
    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=cmd)
    assert code == 1, lines
    assert any("b.json" in line and "[platform: fails the whole step (a dangling" in line for line in lines)
    assert lines[-2].startswith("[6/6] upload: skipped: the platform's validate-output step fails on b.json")
    assert not buckets.responses().exists() or not any(buckets.responses().iterdir())
    shutil.rmtree(workspace_of(lines), ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# the run-level findings are the judge's (conformance.judge), printed as their one line

WRITE_RESPONSES = """\
    import json, os, sys
    out = os.environ["ODAHU_OUTPUT_PATH"]
    os.makedirs(out, exist_ok=True)
    good = {"model_name": "multiplier", "model_version": "1", "id": "r",
            "outputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [2]}]}
    for name in sys.argv[1:]:
        with open(os.path.join(out, name), "w") as handle:
            json.dump(good, handle)
"""


def test_a_non_json_file_is_the_judges_p_name_finding(tmp_path):
    """b.txt answers b.json where the platform drops it: the root cause is P-NAME, not a missing response."""
    buckets = Buckets(tmp_path, {"a.json": REQUEST, "b.json": REQUEST})
    cmd = script(tmp_path, WRITE_RESPONSES) + " a.json b.txt"
    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=cmd)
    assert code == 1, lines
    assert "  b.txt: P-NAME: not a *.json file: the platform drops it [platform: dropped silently (not *.json: " \
           "the platform skips it unread)]" in lines
    assert not [line for line in lines if "P-EVERY" in line]
    assert sorted(p.name for p in buckets.responses().iterdir()) == ["a.json"]
    shutil.rmtree(workspace_of(lines))


def test_an_unanswered_request_is_the_judges_p_every_finding(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST, "b.json": REQUEST, "c.json": REQUEST})
    cmd = script(tmp_path, WRITE_RESPONSES) + " a.json c.json"
    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=cmd)
    assert code == 1, lines
    assert [line for line in lines if "P-" in line] == ["  b.json: P-EVERY: no response written for this request"]
    assert sorted(p.name for p in buckets.responses().iterdir()) == ["a.json", "c.json"]
    shutil.rmtree(workspace_of(lines))


def test_a_changed_input_is_the_judges_p_readonly_finding(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST, "b.json": REQUEST})
    cmd = script(tmp_path, WRITE_RESPONSES + """\
    with open(os.path.join(os.environ["ODAHU_INPUT_PATH"], "a.json"), "a") as handle:
        handle.write(" ")
""") + " a.json b.json"
    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=cmd)
    assert code == 1, lines
    run = lines[next(i for i, line in enumerate(lines) if line.startswith("[4/6]")):]
    assert run[1].startswith("  exit status 0 after ") and run[2] == "  (input folder): P-READONLY: modified a.json"
    # the platform still uploads what the predictor wrote: only the kit's verdict fails
    assert sorted(p.name for p in buckets.responses().iterdir()) == ["a.json", "b.json"]
    shutil.rmtree(workspace_of(lines))


def test_a_renamed_response_is_the_judges_p_name_should_finding_and_passes(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST, "b.json": REQUEST})
    cmd = script(tmp_path, WRITE_RESPONSES) + " a.json response-b.json"
    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=cmd)
    assert code == 0, lines  # a SHOULD finding is shown, and does not fail the job
    assert [line for line in lines if "P-" in line] == ["  b.json: P-NAME (SHOULD): the response is written as response-b.json"]


def test_a_process_left_running_is_the_judges_p_exit_finding(tmp_path):
    buckets = Buckets(tmp_path, {"a.json": REQUEST})
    cmd = script(tmp_path, WRITE_RESPONSES + """\
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", "60"])
        os._exit(0)
    os.wait()
""") + " a.json"
    started = time.monotonic()
    code, lines = job(SERVICE, JOB, buckets.connections(), cmd=cmd)
    assert time.monotonic() - started < 30
    assert code == 0, lines  # a SHOULD finding: shown, and the job passes as the same image's would
    (leftover,) = [line for line in lines if "P-EXIT" in line]
    assert leftover.startswith("  (run): P-EXIT (SHOULD): left 1 process(es) running after it exited") and "sleep 60" in leftover
    assert sorted(p.name for p in buckets.responses().iterdir()) == ["a.json"]  # the platform uploads what was written
