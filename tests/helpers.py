"""Small builders shared by the kit's own tests."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import time


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


def ensure_docker_socket() -> None:
    """Make ``docker`` talk to podman's socket when no daemon answers (podman system service, left running)."""
    if shutil.which("docker") is None or shutil.which("podman") is None:
        return
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0:
        return
    subprocess.Popen(
        ["podman", "system", "service", "--time=0", "unix:///run/docker.sock"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    end = time.monotonic() + 15
    while time.monotonic() < end:
        if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0:
            return
        time.sleep(0.2)
