"""The ``H-*`` checks of one exchange with a V2 server: what its status, headers and body say about the protocol,
apart from what the answer holds (the F-*, M-* and B-* checks judge that, as for a batch's files).

Each check is one named function, registered in :data:`EXCHANGE_CHECKS` by the requirement it decides.
:func:`answer_document` gives the judge the document an answer stands for: a 200's body read strictly; a refusal
(4xx, 5xx) as an error response whatever its body, so that the body's form is H-ERROR's finding alone and never
also an F-JSON or F-SCHEMA one.
"""

from __future__ import annotations

from collections.abc import Callable

from conformance.contract.findings import Finding
from conformance.contract.requirements import SHOULD
from conformance.oracle.expect import Expected
from conformance.text import quote
from conformance.transport.exchange import Exchange
from conformance.v2.documents import ERROR, RESPONSE, Document, parse

#: The H-* requirements every online run shows, run-level and per exchange.
ONLINE_RUN_IDS = ("H-INFER", "H-ERROR", "H-TIMELY", "H-HEALTH")
#: How many characters of a body a finding quotes.
BODY_QUOTE = 120

EXCHANGE_CHECKS: dict[str, Callable[..., list[Finding]]] = {}


def exchange_check(requirement: str) -> Callable[[Callable[..., list[Finding]]], Callable[..., list[Finding]]]:
    """Register the decorated function as the per-exchange check of ``requirement``."""

    def register(function: Callable[..., list[Finding]]) -> Callable[..., list[Finding]]:
        EXCHANGE_CHECKS[requirement] = function
        function.requirement = requirement  # type: ignore[attr-defined]
        return function

    return register


def body_excerpt(exchange: Exchange) -> str:
    """The answer's body, quoted and cut (``(empty)`` when there is none)."""
    if not exchange.body:
        return "(empty)"
    return quote(exchange.body.decode("utf-8", "replace"), BODY_QUOTE)


def is_error_body(body: bytes | None) -> bool:
    """Whether ``body`` is the protocol's error object: JSON ``{"error": non-empty string, ...}``."""
    document = parse(body or b"", RESPONSE, "(body)")
    return document.kind == ERROR and not document.findings


@exchange_check("H-TIMELY")
def answered_in_time(exchange: Exchange) -> list[Finding]:
    """H-TIMELY: the request was answered before the run's timeout."""
    if exchange.timed_out:
        return [Finding("H-TIMELY", exchange.name, "", f"{exchange.where}: {exchange.error} (the run's timeout)")]
    return []


@exchange_check("H-INFER")
def served_with_200(exchange: Exchange, document: Document) -> list[Finding]:
    """H-INFER: an answer holding an inference response comes with status 200 and ``application/json``; an
    answer that is not an error comes with 2xx at all. (An error body with 200 is H-ERROR's.)"""
    status = exchange.status
    if status is None or document.kind == ERROR or status >= 400:
        return []
    if status != 200:
        return [Finding("H-INFER", exchange.name, "", f"{exchange.where}: status {status}; a served request gets 200")]
    if exchange.headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
        found = exchange.headers.get("content-type")
        return [Finding("H-INFER", exchange.name, "", f"{exchange.where}: Content-Type is "
                                                      f"{quote(found) if found is not None else 'missing'}; expected application/json")]
    return []


@exchange_check("H-ERROR")
def refused_with_4xx(exchange: Exchange, document: Document, expected: Expected) -> list[Finding]:
    """H-ERROR: a refusal is a 4xx status (SHOULD: 400, the protocol's "typically 400") with an ``{"error":
    string}`` body; never a 5xx for a request the model cannot serve, never an error body with 200. A request
    the model serves that is refused is not judged here: the behaviour checks blame the refusal."""
    status, name, where = exchange.status, exchange.name, exchange.where
    if status is None:
        return []
    if status < 400:
        if document.kind == ERROR:
            return [Finding("H-ERROR", name, "/error", f"{where}: an error response with status {status}; a refusal "
                                                       f"gets a 4xx status (typically 400)")]
        return []
    if status >= 500:
        if expected.is_error or not expected.is_known:
            return [Finding("H-ERROR", name, "", f"{where}: status {status} (a server error) for a request the model "
                                                 f"cannot serve; expected a 4xx (typically 400); body: {body_excerpt(exchange)}")]
        return []
    findings = []
    if not is_error_body(exchange.body):
        findings.append(Finding("H-ERROR", name, "", f"{where}: status {status} with a body that is not "
                                                     f"{{\"error\": string}}: {body_excerpt(exchange)}"))
    if status != 400:
        findings.append(Finding("H-ERROR", name, "", f"{where}: status {status}; the protocol's refusal is "
                                                     f"typically 400", level=SHOULD))
    return findings


def answer_document(exchange: Exchange) -> Document:
    """The document the answer stands for, its findings filed under the request's name: a 2xx body read strictly
    (any V2 response or error document); a 4xx or 5xx status is a refusal, an error response whatever its body
    says (the body's form is H-ERROR's to judge)."""
    status = exchange.status
    if status is not None and status >= 400:
        document = exchange.document(exchange.name)
        if document.kind == ERROR and not document.findings:
            return document
        return Document(exchange.name, ERROR, {"error": f"(status {status})"})
    return exchange.document(exchange.name)
