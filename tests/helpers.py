"""Small builders shared by the kit's own tests."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping


def tensor(name="a", datatype="INT32", shape=(2,), data=(1, 2), **extra) -> dict:
    return {"name": name, "shape": list(shape), "datatype": datatype, "data": list(data), **extra}


def request(*tensors, **extra) -> dict:
    return {**extra, "inputs": list(tensors) or [tensor()]}


def response(*tensors, model_name="multiplier", model_version="1", **extra) -> dict:
    body = {"model_name": model_name, "model_version": model_version, **extra}
    body["outputs"] = list(tensors) or [tensor(data=(2, 4))]
    return body


def edited(document: dict, path: tuple, value) -> dict:
    """A deep copy of ``document`` with the item at ``path`` replaced (or deleted when value is DELETE)."""
    result = copy.deepcopy(document)
    target = result
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return result


DELETE = object()


def as_bytes(document) -> bytes:
    """Strict JSON bytes (the stdlib writes integers of any size; NaN is refused)."""
    return json.dumps(document, allow_nan=False).encode("utf-8")


#: podman socket services these tests started (stopped when the session ends: tests/conftest.py).
STARTED_SERVICES: list[subprocess.Popen] = []


def stop_started_services() -> None:
    """Stop the podman socket services ``ensure_docker_socket`` started, so no process outlives the tests."""
    while STARTED_SERVICES:
        service = STARTED_SERVICES.pop()
        service.terminate()
        try:
            service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.kill()


def ensure_docker_socket() -> None:
    """Make ``docker`` talk to podman's socket when no daemon answers (podman system service, left running)."""
    if shutil.which("docker") is None or shutil.which("podman") is None:
        return
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0:
        return
    STARTED_SERVICES.append(subprocess.Popen(
        ["podman", "system", "service", "--time=0", "unix:///run/docker.sock"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    ))
    end = time.monotonic() + 15
    while time.monotonic() < end:
        if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0:
            return
        time.sleep(0.2)


@contextlib.contextmanager
def shallow_stack(frames: int = 150):
    """Allow only ``frames`` more Python frames than the caller has: code that recurses once per folder level
    fails on a few hundred levels, which stay small enough for pytest to delete afterwards."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def usable_engine(name: str, images: tuple[str, ...]) -> str:
    """``name`` when that engine can run containers here and has ``images``; otherwise skip the test, printing
    why (docker is pointed at podman's socket first when no daemon answers)."""
    import pytest

    from conformance.run.container import engine_available

    if name == "docker":
        ensure_docker_socket()
    ok, reason = engine_available(name)
    for image in images if ok else ():
        if subprocess.run([name, "image", "inspect", image], capture_output=True, timeout=60).returncode:
            ok, reason = False, f"image {image} is not built (predictor/build-image.sh builds it)"
            break
    if not ok:
        print(f"skipping the {name} tests: {reason}")
        pytest.skip(f"{name}: {reason}")
    return name


def under_xdist() -> bool:
    """Whether this process is a pytest-xdist worker (``pytest -n N``): other workers run other tests meanwhile."""
    return "PYTEST_XDIST_WORKER" in os.environ


class Runs(Mapping):
    """The results of named jobs (suite runs on mutants, variants...), for a module's parametrized tests.

    Run alone, every job runs at the first look-up, two at a time (the machine's cores kept busy). Under
    pytest-xdist the workers already keep the cores busy and share a module's tests between them: each job runs
    when a test of this worker first asks for it, so no worker makes the runs of another's tests."""

    def __init__(self, jobs: dict[str, Callable[[], object]], at_once: int = 2):
        self._jobs = jobs
        self._at_once = at_once
        self._done: dict[str, object] = {}

    def __getitem__(self, key: str) -> object:
        if key not in self._jobs:
            raise KeyError(key)
        if key not in self._done:
            if under_xdist():
                self._done[key] = self._jobs[key]()
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(max_workers=self._at_once) as pool:
                    left = [name for name in self._jobs if name not in self._done]
                    self._done.update(zip(left, pool.map(lambda name: self._jobs[name](), left)))
        return self._done[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._jobs)

    def __len__(self) -> int:
        return len(self._jobs)
