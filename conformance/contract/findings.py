"""The record every check produces: which requirement, which file, where in it, what is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from conformance.contract.requirements import BY_ID, SHOULD, Level


@dataclass(frozen=True)
class Finding:
    """One failed check. ``pointer`` is an RFC 6901 JSON pointer ("" is the whole document)."""

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
