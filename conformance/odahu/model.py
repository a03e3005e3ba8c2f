"""The kit's model: a folder with ``multiplier.txt`` (a base-10 integer) and ``odahuflow.project.yaml``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import yaml

from conformance.contract.findings import Finding
from conformance.contract.problems import ConformanceProblem
from conformance.text import integer_from_text, one_line
from conformance.v2 import jsonschemas

MULTIPLIER_FILE = "multiplier.txt"
PROJECT_FILES = ("odahuflow.project.yaml", "odahuflow.project.yml")
_INTEGER = re.compile(r"[+-]?[0-9]+")


class ModelProblem(ConformanceProblem):
    """The model folder is unusable; ``str()`` is a one-line reason naming the file."""


@dataclass(frozen=True)
class Model:
    """What the multiplier model is: its multiplier, name and version."""

    multiplier: int
    name: str
    version: str

    def with_multiplier(self, multiplier: int) -> "Model":
        return Model(multiplier, self.name, self.version)


@dataclass(frozen=True)
class OtherModel:
    """A model that is not the multiplier: its name and version (from its project file or the manifest) and
    its folder (None when the model is inside the image)."""

    name: str
    version: str
    folder: Path | None = None


def parse_multiplier(text: str) -> int:
    """The integer in ``multiplier.txt`` content (surrounding whitespace allowed); ValueError otherwise."""
    stripped = text.strip()
    if not _INTEGER.fullmatch(stripped):
        shown = stripped if len(stripped) <= 30 else stripped[:27] + "..."
        raise ValueError(f"is not a base-10 integer: {shown!r}" if stripped else "is empty")
    return integer_from_text(stripped)


def project_findings(document: object, file: str) -> list[Finding]:
    """``K-META`` findings for a parsed ``odahuflow.project.yaml`` (a number version counts as its string)."""
    return [Finding("K-META", file, where, message) for where, message in jsonschemas.errors(jsonschemas.PROJECT, _stringify_version(document))]


def _stringify_version(document: object) -> object:
    if isinstance(document, dict) and isinstance(document.get("model"), dict):
        version = document["model"].get("version")
        if isinstance(version, (int, float)) and not isinstance(version, bool):
            return {**document, "model": {**document["model"], "version": str(version)}}
    return document


def read_project(folder: Path) -> tuple[str, str]:
    """``(name, version)`` from the model's project file; raise :class:`ModelProblem` when missing or invalid."""
    for candidate in PROJECT_FILES:
        path = folder / candidate
        if path.is_file():
            break
    else:
        raise ModelProblem(f"{folder / PROJECT_FILES[0]}: missing (K-META)")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelProblem(f"{path}: cannot read as YAML: {one_line(exc, limit=None)}") from None
    findings = project_findings(document, str(path))
    if findings:
        raise ModelProblem(findings[0].line())
    model = cast(dict, _stringify_version(document))["model"]  # the schema checked its shape
    return model["name"], model["version"]


def renamed_project(folder: Path, name: str, version: str) -> tuple[str, bytes]:
    """``(file name, content)`` of the model's project file with ``model.name`` and ``model.version`` set to
    ``name`` and ``version`` (a string), everything else in it kept (comments aside); raise
    :class:`ModelProblem` as :func:`read_project` does."""
    read_project(folder)  # missing or invalid: the same one line
    path = next(folder / file for file in PROJECT_FILES if (folder / file).is_file())
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["model"] = {**document["model"], "name": name, "version": version}
    return path.name, yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode("utf-8")


def is_multiplier(folder: Path) -> bool:
    """Whether the model folder holds the multiplier model (a ``multiplier.txt``)."""
    return (folder / MULTIPLIER_FILE).exists()


def load_other_model(folder: str | Path) -> OtherModel:
    """A model other than the multiplier in ``folder``: its project file read; raise :class:`ModelProblem`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelProblem(f"{folder}: model folder does not exist")
    return OtherModel(*read_project(folder), folder=folder)


def load_model(folder: str | Path) -> Model:
    """Load the model in ``folder``; raise :class:`ModelProblem` with a one-line reason when it is unusable."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelProblem(f"{folder}: model folder does not exist")
    path = folder / MULTIPLIER_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelProblem(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelProblem(f"{path}: cannot read: {exc}") from None
    try:
        multiplier = parse_multiplier(text)
    except ValueError as exc:
        raise ModelProblem(f"{path}: {exc}") from None
    name, version = read_project(folder)
    return Model(multiplier, name, version)
