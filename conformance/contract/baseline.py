"""A baseline of known failures, for adopting the gate gradually (as conformance suites keep expected-failure
lists): a run passes while only baselined failures occur, fails on any new one, and names the baselined failures
that no longer occur, so the baseline only shrinks.

The file is JSON: ``{"known_failures": [{"id": "M-VALUE", "files": ["a.json"]}, {"id": "P-ENV"}]}``. An entry
without ``files`` covers the requirement's findings in any file; with ``files``, only findings about those files
(a request file's name, or ``(run)`` for the run as a whole).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from conformance import _fs
from conformance.contract.findings import Finding
from conformance.contract.problems import ConformanceProblem
from conformance.contract.requirements import BY_ID


class BaselineProblem(ConformanceProblem):
    """The baseline file cannot be used; one line naming it and what is wrong."""


@dataclass
class Baseline:
    """Known failures: requirement ID -> the files they are known in (None: any file)."""

    entries: dict[str, set[str] | None] = field(default_factory=dict)
    source: str = ""

    def covers(self, finding: Finding) -> bool:
        """Whether ``finding`` is a known failure."""
        if finding.requirement not in self.entries:
            return False
        files = self.entries[finding.requirement]
        return files is None or finding.file in files

    def no_longer_failing(self, findings: list[Finding]) -> list[str]:
        """The entries (``ID`` or ``ID FILE``) that none of ``findings`` matches any more."""
        stale = []
        for requirement, files in sorted(self.entries.items()):
            mine = {f.file for f in findings if f.requirement == requirement}
            if files is None:
                if not mine:
                    stale.append(requirement)
            else:
                stale += [f"{requirement} {name}" for name in sorted(files - mine)]
        return stale


def load(path: Path) -> Baseline:
    """Read a baseline file; :class:`BaselineProblem` (one line) when it is unusable."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineProblem(f"{path}: cannot read the baseline: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise BaselineProblem(f"{path}: not JSON: {exc}") from None
    entries = document.get("known_failures") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise BaselineProblem(f"{path}: /known_failures must be a list of {{\"id\": ..., \"files\": [...]}}")
    baseline = Baseline(source=str(path))
    for index, entry in enumerate(entries):
        where = f"{path}: /known_failures/{index}"
        if not isinstance(entry, dict) or entry.get("id") not in BY_ID:
            raise BaselineProblem(f"{where}: needs an \"id\" that is a requirement ID of the contract")
        files = entry.get("files")
        if files is not None and not (isinstance(files, list) and all(isinstance(f, str) for f in files)):
            raise BaselineProblem(f"{where}/files: must be a list of file names")
        known = baseline.entries.get(entry["id"], set())
        baseline.entries[entry["id"]] = None if files is None or known is None else known | set(files)
    return baseline


def write(path: Path, findings: list[Finding], per_file: bool = True) -> int:
    """Write the baseline of ``findings`` (their IDs, with the files they are about when ``per_file``) to
    ``path``, atomically; return how many entries it holds."""
    files: dict[str, set[str]] = {}
    for finding in findings:
        files.setdefault(finding.requirement, set()).add(finding.file)
    entries = [{"id": requirement, **({"files": sorted(names)} if per_file else {})}
               for requirement, names in sorted(files.items())]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _fs.write_atomically(path, (json.dumps({"known_failures": entries}, indent=2) + "\n").encode("utf-8"))
    return len(entries)
