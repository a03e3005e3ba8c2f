"""Where the expected answers of a model other than the multiplier come from (the ``--oracle`` option).

- ``recorded``: golden pairs recorded from an approved predictor (``fixtures record``); only the golden requests
  have expected answers, compared within a tolerance (:mod:`conformance.oracle.match`).
- ``python:MODULE:FUNCTION`` (or ``python:FILE.py:FUNCTION``): a reference function, ``FUNCTION(request: dict,
  model: pathlib.Path) -> dict`` giving the V2 response body (or ``{"error": ...}``) the model owes a request;
  called for every request the suite sends, each call within ``Oracle.timeout`` seconds (``--oracle-timeout``).
- ``signature``: no expected values; the responses are checked for format and against the declared signature.

The multiplier model's oracle is :mod:`conformance.oracle.expect` (``--oracle multiplier``, chosen when the model
folder holds ``multiplier.txt``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conformance.contract.problems import ConformanceProblem
from conformance.odahu.model import OtherModel
from conformance.oracle.expect import Expected, invalid_request
from conformance.oracle.signature import Signature, unservable
from conformance.text import one_line
from conformance.v2.documents import ERROR, RESPONSE, Document, inspect

#: The oracle kinds for a model that is not the multiplier.
KINDS = ("recorded", "python", "signature")

#: Seconds one call of a reference function may take (``--oracle-timeout``): a reference that takes longer on
#: one request than a candidate's whole batch may (the run timeout's default) is broken.
DEFAULT_ORACLE_TIMEOUT = 60.0


class OracleProblem(ConformanceProblem):
    """The oracle cannot be set up or failed on a request; ``str()`` is one line."""


@dataclass(frozen=True)
class Tolerance:
    """How close a float element must be to the expected one: ``|got - want| <= atol + rtol * |want|``
    (numpy's ``isclose``), compared in float64 after both are cast to the declared datatype."""

    rtol: float = 1e-5
    atol: float = 1e-8
    #: ``(output name, rtol, atol)``: another tolerance for these outputs
    per_output: tuple[tuple[str, float, float], ...] = ()

    def for_output(self, name: str) -> Tolerance:
        """The tolerance of the output ``name`` (its own when given, else this one)."""
        for output, rtol, atol in self.per_output:
            if output == name:
                return Tolerance(rtol, atol)
        return Tolerance(self.rtol, self.atol) if self.per_output else self

    def __str__(self) -> str:
        return f"rtol {self.rtol:g}, atol {self.atol:g}"


def parse_output_tolerance(text: str) -> tuple[str, float, float]:
    """``NAME=RTOL`` or ``NAME=RTOL,ATOL`` (the option ``--output-tolerance``); ValueError with one line."""
    name, _, numbers = text.partition("=")
    parts = numbers.split(",")
    try:
        if not name or not 1 <= len(parts) <= 2:
            raise ValueError
        rtol, atol = float(parts[0]), float(parts[1]) if len(parts) == 2 else 0.0
    except ValueError:
        raise ValueError(f"--output-tolerance {text!r}: expected NAME=RTOL or NAME=RTOL,ATOL") from None
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(f"--output-tolerance {text!r}: tolerances must not be negative")
    return name, rtol, atol


Reference = Callable[[dict, Path], dict]


@dataclass
class Oracle:
    """The expected answers for a model other than the multiplier. ``kind`` is one of :data:`KINDS`; ``spec`` the
    option as given; ``reference`` the reference function (python kind only)."""

    kind: str
    spec: str
    model: OtherModel
    signature: Signature | None
    tolerance: Tolerance
    reference: Reference | None = None
    #: three golden requests ``(name, bytes)`` answered with values: the good requests of a model that declares no
    #: signature (``goldens.answered_requests``)
    golden_requests: list[tuple[str, bytes]] = field(default_factory=list)
    #: seconds one call of the reference function may take
    timeout: float = DEFAULT_ORACLE_TIMEOUT

    def expect(self, request: Document, raw: bytes) -> Expected:
        """The expected answer to ``request`` (its ``raw`` bytes as staged): an error response (P-EVERY) for a
        request that is not valid V2 or that the declared signature cannot serve (:func:`unservable`); else the
        reference function's answer (python kind), else unknown (golden answers are given by the caller, who
        knows which requests are golden)."""
        owed = self.owed_error(request)
        if owed is not None:
            return owed
        unknown = Expected(request.id, self.model)
        if self.reference is None:
            return unknown
        assert self.model.folder is not None  # the python kind needs the model folder (checked at setup)
        try:
            body = json.loads(raw)
            answer = call_within(self.timeout, self.reference, body, self.model.folder)
        except _TimedOut:
            raise OracleProblem(f"{self.spec} took longer than {self.timeout:g} s on {request.file} "
                                "(--oracle-timeout)") from None
        except SystemExit as exc:  # sys.exit() in the user's function must not end the kit
            raise OracleProblem(f"{self.spec} called sys.exit({exc.code!r}) on {request.file}") from None
        except Exception as exc:  # the user's function: any failure is reported as one line, never a traceback
            raise OracleProblem(f"{self.spec} failed on {request.file}: {type(exc).__name__}: {one_line(exc, limit=300)}") from None
        return expected_from(answer, request, self.model, f"{self.spec} on {request.file}")

    def owed_error(self, request: Document) -> Expected | None:
        """The error response (P-EVERY) owed to a request that is not valid V2 or that the declared signature
        cannot serve, whatever a recorded or reference answer says; None for a request the model may serve."""
        if request.findings:
            return Expected(request.id, self.model, error=invalid_request(request), requirement="P-EVERY")
        why = unservable(request, self.signature) if self.signature is not None else None
        if why is not None:
            return Expected(request.id, self.model, error=why, requirement="P-EVERY")
        return None


class _TimedOut(BaseException):
    """A reference call ran out of time (a BaseException, so that the user's ``except Exception`` cannot eat it)."""


def call_within(seconds: float, function: Reference, body: dict, folder: Path) -> dict:
    """``function(body, folder)``, or :class:`_TimedOut` once it has run ``seconds``. In the main thread an
    interval timer interrupts the call itself (a sleep, a Python loop; a long call inside C code ends first); in
    another thread the call runs in a daemon thread that is abandoned at the deadline."""
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        def expire(signum: int, frame: object) -> None:
            raise _TimedOut()

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return function(body, folder)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    outcome: list = []

    def call() -> None:
        try:
            outcome.append((True, function(body, folder)))
        except (Exception, SystemExit) as exc:
            outcome.append((False, exc))

    worker = threading.Thread(target=call, daemon=True, name="odahu-conformance oracle")
    worker.start()
    worker.join(seconds)
    if not outcome:
        raise _TimedOut()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def expected_from(answer: object, request: Document, model: OtherModel, source: str) -> Expected:
    """The :class:`Expected` a V2 response body or error body stands for (a golden response, a reference
    function's answer); raise :class:`OracleProblem` when it is neither."""
    if isinstance(answer, dict) and "outputs" in answer and "model_name" not in answer:
        answer = {"model_name": model.name, "model_version": model.version, **answer}
    document = inspect(answer, RESPONSE, source)
    if document.findings:
        raise OracleProblem(f"{source}: not a valid V2 response: {document.findings[0].line()}")
    return expected_of(document, request, model)


def expected_of(document: Document, request: Document, model: OtherModel) -> Expected:
    """The :class:`Expected` a valid response or error ``document`` stands for, as the answer to ``request``."""
    if document.kind == ERROR:
        return Expected(request.id, model, error=str(document.body["error"]), requirement="B-MATCH")  # type: ignore[index]
    return Expected(request.id, model, outputs=document.tensors)


def load_reference(spec: str) -> Reference:
    """The function ``python:MODULE:FUNCTION`` or ``python:FILE.py:FUNCTION`` names (a module is imported with the
    current folder on ``sys.path``); raise :class:`OracleProblem`."""
    target = spec.removeprefix("python:")
    module_name, _, function_name = target.rpartition(":")
    if not module_name or not function_name:
        raise OracleProblem(f"--oracle {spec}: expected python:MODULE:FUNCTION or python:FILE.py:FUNCTION")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            if not path.is_file():
                raise OracleProblem(f"--oracle {spec}: {path}: no such file")
            loader_spec = importlib.util.spec_from_file_location(f"odahu_reference_{path.stem}", path)
            assert loader_spec is not None and loader_spec.loader is not None
            module = importlib.util.module_from_spec(loader_spec)
            sys.path.insert(0, str(path.parent))  # the file's neighbours import as they would beside it
            loader_spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(module_name)
    except OracleProblem:
        raise
    except Exception as exc:
        raise OracleProblem(f"--oracle {spec}: cannot import {module_name}: {type(exc).__name__}: {one_line(exc, limit=300)}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise OracleProblem(f"--oracle {spec}: {module_name} has no function {function_name!r}")
    return function
