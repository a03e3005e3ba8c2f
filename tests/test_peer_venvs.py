"""The peers' venv cache (tests/peers/venvs.py): reused when complete, made again when not, and a failed or slow
install is one line that the peer tests skip with."""

from __future__ import annotations

import pytest

from peers import venvs


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
