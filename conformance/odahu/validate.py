"""The platform's validate step, done strictly: which files of a folder are conforming V2 documents.

Used by ``odahu-conformance validate`` and by the suite. For every entry of a folder (not recursive) it says
whether the file passes, what is wrong (requirement ID, JSON pointer), and what the platform's own validate step
would do with it (:mod:`conformance.odahu.platform_rules`): keep it, drop it silently, or fail the whole step (a
dangling link, a link to a folder, an unreadable file; a FIFO makes the step hang), so nothing is lost unnamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from conformance._fs import copy_atomically  # noqa: F401 - the CLI's validate --dest copies with it
from conformance.contract.findings import Finding
from conformance.odahu import platform_rules
from conformance.v2.documents import (
    DEFAULT_MAX_BYTES,
    REQUEST,
    RESPONSE,
    Document,
    DocumentKind,
    load,
)

KINDS: dict[str, DocumentKind] = {"input": REQUEST, "output": RESPONSE}


@dataclass
class Verdict:
    """The outcome for one folder entry: the kit's strict ``findings``, and what the platform's own validate step
    would do with it (``platform_outcome``: kept, dropped silently, fails the whole step, or not judged)."""

    path: Path
    findings: list[Finding] = field(default_factory=list)
    platform_keeps: bool = False
    platform_reason: str = ""
    platform_outcome: str = ""  # one of platform_rules.KEPT, DROPPED, FAILS_STEP, NOT_JUDGED; "" = by platform_keeps

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def outcome(self) -> str:
        return self.platform_outcome or (platform_rules.KEPT if self.platform_keeps else platform_rules.DROPPED)

    @property
    def fails_step(self) -> bool:
        """Whether the platform's whole validate step fails on this entry (the job fails: every file is lost)."""
        return self.outcome == platform_rules.FAILS_STEP

    def line(self) -> str:
        """One line naming the file: the first finding (or ``ok``), how many more, and the platform's decision."""
        if not self.findings:
            return f"{self.path}: ok [{self.fate()}]"
        first = self.findings[0].line()
        more = f" (+{len(self.findings) - 1} more)" if len(self.findings) > 1 else ""
        return f"{first}{more} [{self.fate()}]"

    def fate(self) -> str:
        """``platform: kept``, ``platform: dropped silently (why)``, ``platform: fails the whole step (why)``."""
        return "platform: " + platform_rules.Decision(self.path.name, self.outcome, self.platform_reason).describe()


def _platform(path: Path, kind: str, max_bytes: int) -> tuple[bool, str, str]:
    decision = platform_rules.decide_entry(path, kind, max_bytes)
    return decision.kept, decision.reason, decision.outcome


def check_entry(path: Path, kind: DocumentKind, max_bytes: int = DEFAULT_MAX_BYTES) -> Verdict:
    """Check one folder entry as a ``kind`` (request/response) document; never raises for bad content and never
    opens a FIFO. A strictly valid file that the platform's own validator would drop is a finding too (F-SCHEMA:
    the platform loses it)."""
    name = str(path)
    name_id = "P-NAME" if kind == RESPONSE else "F-JSON"
    if path.is_symlink():
        return Verdict(path, [Finding(name_id, name, "", "is a symbolic link")], *_platform(path, kind, max_bytes))
    if path.is_dir():
        return Verdict(path, [Finding(name_id, name, "", "is a folder; only files directly in the folder count")],
                       *_platform(path, kind, max_bytes))
    if not path.name.endswith(".json"):
        return Verdict(path, [Finding(name_id, name, "", "name does not end in .json")],
                       *_platform(path, kind, max_bytes))
    document: Document = load(path, kind, max_bytes)
    if document.ok:
        # Strictly valid: no repeated keys, data checked finite; only the envelope can still upset the platform.
        keeps, reason = platform_rules.accepts_value(document.body, kind, trust_data=True)
        if keeps:
            return Verdict(path, platform_keeps=True, platform_outcome=platform_rules.KEPT)
        finding = Finding("F-SCHEMA", name, "", f"the platform's validator drops this file: {reason}")
        return Verdict(path, [finding], False, reason, platform_rules.DROPPED)
    findings = document.findings
    del document  # its parsed body and tensors go before the platform's rules read the file again
    return Verdict(path, findings, *_platform(path, kind, max_bytes))


def step_failure(verdicts: list[Verdict]) -> Verdict | None:
    """The first entry on which the platform's whole validate step fails, or ``None``."""
    return next((verdict for verdict in verdicts if verdict.fails_step), None)


def entries(folder: Path) -> list[Path]:
    """The folder's entries in name order (what the platform would list)."""
    return sorted(folder.iterdir(), key=lambda p: p.name)


def validate_folder(source: Path, side: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Verdict]:
    """Yield a :class:`Verdict` for every entry of ``source``, checked as ``side`` ("input" or "output") files.

    One file at a time, so memory stays bounded by the largest file."""
    kind = KINDS[side]
    for path in entries(source):
        yield check_entry(path, kind, max_bytes)

