"""The kit's JSON Schemas (Draft 2020-12), shipped as package data and cross-referenced through ``referencing``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from conformance.contract.findings import join

#: Schema names (file stem under ``conformance/v2/schemas``) by the document kind they describe.
REQUEST = "v2-request"
RESPONSE = "v2-response"
ERROR = "v2-error"
ANY_RESPONSE = "v2-any-response"
SERVICE = "inferenceservice"
JOB = "inferencejob"
PROJECT = "odahuflow-project"


@lru_cache(maxsize=None)
def _registry() -> tuple[Registry, dict[str, dict]]:
    schemas = {}
    for entry in (resources.files("conformance.v2") / "schemas").iterdir():
        if entry.name.endswith(".json"):
            schemas[entry.name[: -len(".json")]] = json.loads(entry.read_text(encoding="utf-8"))
    registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    )
    return registry, schemas


def schema(name: str) -> dict:
    """The schema document called ``name`` (one of the module constants)."""
    return _registry()[1][name]


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    """A validator for schema ``name`` that resolves references between the kit's schemas."""
    registry, schemas = _registry()
    return Draft202012Validator(schemas[name], registry=registry)


def errors(name: str, instance: object, base: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(json_pointer, message)`` for each way ``instance`` breaks schema ``name``, shallowest first."""
    found = sorted(validator(name).iter_errors(instance), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    for error in found:
        yield join(base, *error.absolute_path), _message(error)


def _message(error: ValidationError) -> str:
    if error.validator == "not" and isinstance(error.validator_value, dict):
        forbidden = error.validator_value.get("required", [])
        return f"must not have {' or '.join(map(repr, forbidden))} here"
    message = error.message
    return message if len(message) <= 200 else message[:197] + "..."
