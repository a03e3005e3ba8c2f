"""The record every check produces: which requirement, which file, where in it, what is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from conformance.contract.requirements import BY_ID, SHOULD, Level
from conformance.text import MESSAGE_LIMIT, bounded

#: How long a finding's file label and JSON pointer may be (a pointer can hold a candidate's key names).
WHERE_LIMIT = 300


@dataclass(frozen=True)
class Finding:
    """One failed check. ``pointer`` is an RFC 6901 JSON pointer ("" is the whole document).

    Every finding is bounded where it is made, whatever a check quoted from the candidate: a message longer than
    :data:`~conformance.text.MESSAGE_LIMIT` characters, or a file or pointer longer than :data:`WHERE_LIMIT`, keeps
    its head and tail around its full size (:func:`~conformance.text.bounded`), so that the console, the reports
    and the kit's memory stay bounded (checks quote values with :func:`~conformance.text.quote` first)."""

    requirement: str
    file: str
    pointer: str
    message: str
    #: The requirement's level unless given ("" is filled in from the requirement).
    level: Level | Literal[""] = field(default="")

    def __post_init__(self) -> None:
        if self.requirement not in BY_ID:
            raise ValueError(f"unknown requirement ID {self.requirement!r}")
        if not self.level:
            object.__setattr__(self, "level", BY_ID[self.requirement].level)
        for name, limit in (("file", WHERE_LIMIT), ("pointer", WHERE_LIMIT), ("message", MESSAGE_LIMIT)):
            value = getattr(self, name)
            if len(value) > limit:
                object.__setattr__(self, name, bounded(value, limit))

    def line(self) -> str:
        """The one-line form: ``FILE: ID [LEVEL] POINTER: message``."""
        where = f" {self.pointer}" if self.pointer else ""
        level = " (SHOULD)" if self.level == SHOULD else ""
        return f"{self.file}: {self.requirement}{level}{where}: {self.message}"


def pointer(*parts: object) -> str:
    """Build an RFC 6901 JSON pointer from path parts, escaping ``~`` and ``/``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def join(base: str, *parts: object) -> str:
    """Extend pointer ``base`` by ``parts``."""
    return base + pointer(*parts)
