"""The README is what a newcomer runs: CI (``.ci/run``) runs its two Quick start lines verbatim, and every shell
block marked runnable runs, verbatim, in a copy of the checkout and prints what the README says it prints.

Markers in README.md:

* Quick start: the first two ```` ```sh ```` blocks under ``## Quick start``, one command line each (the main job,
  then the tests); ``.ci/run`` runs exactly these lines, in this order (its ``<<'README'`` here-document).
* ``<!-- runs-in-tests -->`` on the line before a ```` ```sh ```` block: the block runs here with
  ``bash -euo pipefail`` and must exit 0 (so: no podman, no network, a few seconds). Its ``#> TEXT`` comment lines
  are sample output: each TEXT must be a line of what the block printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
RUNNABLE = "<!-- runs-in-tests -->"
VENV_FIRST = "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' && "


def sh_blocks(text: str) -> list[tuple[int, str, bool]]:
    """``(line number, body, marked runnable)`` of every ```` ```sh ```` block in ``text``."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            start = i
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            marked = start > 0 and lines[start - 1].strip() == RUNNABLE
            blocks.append((start + 1, "\n".join(lines[start + 1:end]) + "\n", marked))
            i = end
        i += 1
    return blocks


def section(text: str, title: str) -> str:
    """The text of the ``## title`` section, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def quick_start_lines() -> list[str]:
    blocks = sh_blocks(section(README.read_text(encoding="utf-8"), "Quick start"))
    assert len(blocks) >= 2, "Quick start needs its two ```sh blocks: the main job, then the tests"
    lines = []
    for _, body, _ in blocks[:2]:
        commands = [line for line in body.splitlines() if line.strip()]
        assert len(commands) == 1, f"a Quick start block holds one command line, not {commands}"
        lines.append(commands[0])
    return lines


def ci_readme_lines() -> list[str]:
    """The lines ``.ci/run`` runs from its ``<<'README'`` here-document."""
    text = CI_RUN.read_text(encoding="utf-8")
    match = re.search(r"<<'README'\n(.*?)^README$", text, re.S | re.M)
    assert match, ".ci/run has no <<'README' here-document"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_ci_runs_exactly_the_readme_quick_start_lines():
    readme = quick_start_lines()
    assert ci_readme_lines() == readme
    main_job, tests = readme
    for line in readme:
        assert line.startswith(VENV_FIRST), f"venv first: {line}"
    assert "odahu-conformance run" in main_job and "--report" in main_job
    assert tests == VENV_FIRST + "pytest -n auto"  # pytest-xdist: every core (issue 19)


def test_ci_installs_and_tests_nothing_else():
    """Outside the here-document, .ci/run neither installs the kit nor runs pytest: CI is the README's lines."""
    text = CI_RUN.read_text(encoding="utf-8")
    outside = re.sub(r"<<'README'\n.*?^README$", "", text, flags=re.S | re.M)
    code = [line for line in outside.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert not [line for line in code if "pip install" in line or re.search(r"\bpytest\b", line)], code
    assert "set -euo pipefail" in text


def test_ci_resolves_dependencies_as_a_newcomer_does():
    """Before the README lines, .ci/run turns off this machine's pip configuration and local indexes, so that its
    venv gets what a fresh install gets (and says why in its header)."""
    text = CI_RUN.read_text(encoding="utf-8")
    before = text[:text.index("<<'README'")]
    code = [line.split("#")[0].strip() for line in before.splitlines() if not line.lstrip().startswith("#")]
    assert "export PIP_CONFIG_FILE=/dev/null" in code
    unset = next(line for line in code if line.startswith("unset "))
    assert {"PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX", "PIP_CONSTRAINT"} <= set(unset.split())
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    assert "as a newcomer's does" in header and "PIP_CONFIG_FILE=/dev/null" in header


def runnable_blocks() -> list[tuple[int, str]]:
    return [(number, body) for number, body, marked in sh_blocks(README.read_text(encoding="utf-8")) if marked]


def test_the_readme_marks_its_runnable_blocks():
    blocks = runnable_blocks()
    assert len(blocks) >= 4, "the job, validate, fixtures and model pack walkthroughs are marked runnable"
    text = "".join(body for _, body in blocks)
    for command in ("odahu-conformance job ", "odahu-conformance validate ", "odahu-conformance fixtures ",
                    "odahu-conformance model pack "):
        assert command in text


def _copy_checkout(target: Path) -> Path:
    skip = {"__pycache__", "build", "dist", "reports", "buckets"}

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == ROOT
        return {n for n in names if n in skip or n.endswith(".egg-info") or (top and n.startswith(".") and n != ".ci")}

    shutil.copytree(ROOT, target, symlinks=True, ignore=ignore)
    return target


@pytest.mark.parametrize("line,body", runnable_blocks(), ids=[f"README.md:{n}" for n, _ in runnable_blocks()])
def test_runnable_readme_block(line, body, tmp_path):
    checkout = _copy_checkout(tmp_path / "checkout")
    env = dict(os.environ)
    # The README assumes the activated venv: its programs (odahu-conformance, python3) first on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["TMPDIR"] = str(tmp_path)  # workspaces of `job` and friends stay inside this test's folder
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=checkout, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, f"README.md:{line} exited {done.returncode}:\n{body}\n{printed[-3000:]}"
    got = {out.strip() for out in printed.splitlines()}
    for expected in re.findall(r"^#> (.*)$", body, re.M):
        assert expected.strip() in got, f"README.md:{line} says it prints {expected!r}; it printed:\n{printed[-3000:]}"


def test_pytest_q_in_the_checkout_ends_with_pytests_totals():
    """`pytest -q` in the checkout keeps pytest's totals line last (no addopts -q making it -qq, under which pytest
    prints no totals and the suite's verdict would read as the whole session's)."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_spec.py"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    last = [line for line in done.stdout.splitlines() if line.strip()][-1]
    # (test_spec.py skips its contract test in a checkout without the design folder beside it: a worktree)
    assert re.fullmatch(r"\d+ passed(, \d+ skipped)? in [\d.]+s", last), done.stdout[-1000:]
