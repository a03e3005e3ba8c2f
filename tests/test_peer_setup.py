"""The peers' setup: the venv cache (tests/peers/venvs.py) is reused when complete and made again when not, a
failed or slow install is one line that the peer tests skip with; a server that exits or is not ready in time is
one line and nothing of it is left running (tests/peers/servers.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from peers import servers, venvs


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ODAHU_CONFORMANCE_PEERS_CACHE", str(tmp_path / "peers"))
    monkeypatch.setattr(venvs, "_failures", {})
    return tmp_path / "peers"


def peer(*requirements: str) -> venvs.Peer:
    return venvs.Peer("fake", "0", requirements, "json")


def test_the_cache_folder_follows_the_environment_variable(cache):
    assert venvs.venv_dir(peer()) == cache / "fake-0"


def test_a_complete_venv_is_reused_without_installing(cache, monkeypatch):
    (cache / "fake-0").mkdir(parents=True)
    (cache / "fake-0" / venvs.MARKER).write_text("")
    monkeypatch.setattr(venvs, "_build", lambda *args: pytest.fail("installed again"))
    assert venvs.ensure(peer()) == cache / "fake-0" / "bin" / "python"


@pytest.mark.slow  # makes a real venv (ensurepip): about 10-20 s on 2 busy cores
def test_a_venv_without_its_marker_is_made_again(cache):
    (cache / "fake-0").mkdir(parents=True)
    (cache / "fake-0" / "leftover").write_text("an interrupted install")
    python = venvs.ensure(peer("--no-index", "--no-deps", "--help"))  # pip runs and installs nothing: no network
    assert python.is_file() and (cache / "fake-0" / venvs.MARKER).is_file()
    assert not (cache / "fake-0" / "leftover").exists()


@pytest.mark.slow  # makes a real venv (ensurepip): about 10-20 s on 2 busy cores
def test_a_failed_install_is_one_line_and_remembered(cache, monkeypatch):
    with pytest.raises(venvs.PeerUnavailable) as failure:
        venvs.ensure(peer("no such requirement ==="))  # refused by pip before any network access
    message = str(failure.value)
    assert message.startswith("fake 0: pip install failed (exit 1): ERROR: ") and "\n" not in message
    assert not (cache / "fake-0").exists()
    monkeypatch.setattr(venvs, "_build", lambda *args: pytest.fail("tried again"))
    with pytest.raises(venvs.PeerUnavailable, match="^fake 0: pip install failed"):
        venvs.ensure(peer("no such requirement ==="))


def test_an_install_past_its_time_limit_is_stopped(cache):
    with pytest.raises(venvs.PeerUnavailable, match=r"^fake: making the venv: not finished after 0 s$"):
        venvs.ensure(peer(), timeout=0.01)
    assert not (cache / "fake-0").exists()


def test_a_server_that_exits_before_it_is_ready_is_one_line(tmp_path):
    with pytest.raises(servers.ServerFailed) as failure:  # this venv has no kserve
        servers.start("kserve", Path(sys.executable), tmp_path, timeout=30)
    assert str(failure.value).startswith("kserve exited with status 1 before it was ready: ModuleNotFoundError")


def test_a_server_never_ready_is_stopped_at_the_deadline(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "mlserver").write_text("#!/bin/sh\necho starting\nsleep 97.25 & sleep 97.25\n")  # a child too
    os.chmod(fake / "mlserver", 0o755)
    with pytest.raises(servers.ServerFailed, match=r"^mlserver not answering 200 on /v2/health/ready \(port \d+\) in "
                                                   r"time: starting$"):
        servers.start("mlserver", fake / "python", tmp_path / "work", timeout=1)
    leftovers = [stat for stat in Path("/proc").glob("[0-9]*/cmdline")
                 if _reads(stat) == b"sleep\x0097.25\x00"]
    assert not leftovers


def _reads(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
