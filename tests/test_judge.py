"""Tests of conformance.judge's run-level checks: one named function per requirement, registered under the
requirement it decides, each judging plain run records (no candidate is run here), and the pairing of responses
written under other names with the requests they answer."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conformance import judge
from conformance.contract.findings import Finding
from conformance.contract.requirements import SHOULD
from conformance.run.workspace import OutputEntry, RunResult, Workspace
from conformance.v2.documents import REQUEST, RESPONSE, Document, parse

ROOT = Path("/nonexistent/run")


def result(entries: list[OutputEntry] | None = None, **fields) -> RunResult:
    """A run that ended with exit status 0 and wrote ``entries``; ``fields`` override any other field."""
    workspace = Workspace(ROOT, ROOT / "input", ROOT / "raw-output", ROOT / "model")
    values = dict(exit_code=0, stdout="", stderr="", duration=0.5, timed_out=False, output_exists=True,
                  entries=entries or [], input_changes=[], model_changes=[], command=["predict"], workspace=workspace)
    values.update(fields)
    return RunResult(**values)


def files(*names: str) -> list[OutputEntry]:
    return [OutputEntry(name, "file", 10) for name in names]


def request(name: str, id_: str | None = "r") -> Document:
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}]}
    if id_ is not None:
        body["id"] = id_
    return parse(json.dumps(body).encode(), REQUEST, name)


def response(name: str, id_: str | None = "r") -> Document:
    body = {"model_name": "multiplier", "outputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [2]}]}
    if id_ is not None:
        body["id"] = id_
    return parse(json.dumps(body).encode(), RESPONSE, name)


def reader(documents: dict[str, Document]):
    """``read`` for :func:`judge.pair_responses` over ready documents (any other file reads as text that is not
    JSON); it records what it was asked for."""
    asked: list[str] = []

    def read(name: str) -> Document:
        asked.append(name)
        return documents[name] if name in documents else parse(b"not json", RESPONSE, name)

    read.asked = asked  # type: ignore[attr-defined]
    return read


def lines(findings: list[Finding]) -> list[str]:
    for finding in findings:
        assert "\n" not in finding.line(), finding
    return [finding.line() for finding in findings]


# ---------------------------------------------------------------------------------------------------------------
# registration


def failing_calls(tmp_path: Path) -> dict:
    """For every registered requirement, a call of its check on evidence that breaks the requirement."""
    decoy = tmp_path / "decoy-output"
    decoy.mkdir()
    answered = result(files("a.json"))
    silent = result([], exit_code=1)
    return {
        "P-TIMELY": lambda check: check(result(timed_out=True, exit_code=None)),
        "P-EXIT": lambda check: check(result(exit_code=1)),
        "P-NAME": lambda check: check(result(files("a.txt"))),
        "P-READONLY": lambda check: check(result(input_changes=["modified a.json"])),
        "P-EVERY": lambda check: check(result(files("a.json")), ["a.json", "b.json"], {"a.json": "a.json"}),
        "P-CONFIG": lambda check: check(result(files("a.json")), "no multiplier.txt"),
        "P-OUTDIR": lambda check: check(answered, silent, "is absent"),
        "P-ISOLATE": lambda check: check(answered, silent, ["a.json"]),
        "P-OFFLINE": lambda check: check(silent, answered),
        "P-ENV": lambda check: check(result(files("decoy.json")), {"ODAHU_MODEL_OUTPUT": decoy}),
    }


def test_every_run_check_is_registered_under_the_requirement_it_decides(tmp_path):
    calls = failing_calls(tmp_path)
    assert set(judge.RUN_CHECKS) == set(calls), "a check was added or removed: give it a failing call above"
    assert set(judge.BATCH_RUN_IDS) <= set(judge.RUN_CHECKS)
    for requirement, check in judge.RUN_CHECKS.items():
        assert check.requirement == requirement
        assert re.match(rf"{re.escape(requirement)}\b", check.__doc__ or ""), f"{check.__name__}'s docstring names another"
        findings = calls[requirement](check)
        assert findings, f"{check.__name__} found nothing on evidence that breaks {requirement}"
        assert {f.requirement for f in findings} == {requirement}, (check.__name__, lines(findings))
        lines(findings)


def test_the_named_functions_are_the_registered_ones():
    assert judge.RUN_CHECKS["P-TIMELY"] is judge.finishes_in_time
    assert judge.RUN_CHECKS["P-EXIT"] is judge.exits_zero
    assert judge.RUN_CHECKS["P-NAME"] is judge.platform_keeps_every_file
    assert judge.RUN_CHECKS["P-READONLY"] is judge.leaves_inputs_alone
    assert judge.RUN_CHECKS["P-EVERY"] is judge.one_response_each


# ---------------------------------------------------------------------------------------------------------------
# each check


def test_finishes_in_time():
    assert judge.finishes_in_time(result()) == []
    assert judge.finishes_in_time(result(exit_code=3)) == []  # a failed exit is P-EXIT's, not P-TIMELY's
    killed = result(timed_out=True, exit_code=None, duration=12.04, stderr="one\ntwo\nthree\nfour\n")
    assert lines(judge.finishes_in_time(killed)) == [
        "(run): P-TIMELY: killed after 12.0 s (the run's timeout); output: two | three | four"]


def test_exits_zero():
    assert judge.exits_zero(result()) == []
    assert judge.exits_zero(result(timed_out=True, exit_code=None)) == []  # P-TIMELY's
    assert judge.exits_zero(result(exit_code=None, start_error="no such file")) == []  # never started
    assert lines(judge.exits_zero(result(exit_code=2, stdout="out", stderr="bad model\n"))) == [
        "(run): P-EXIT: exit status 2 after a batch; output: bad model"]
    assert lines(judge.exits_zero(result(exit_code=2, stdout="only stdout\n"))) == [
        "(run): P-EXIT: exit status 2 after a batch; output: only stdout"]
    assert lines(judge.exits_zero(result(exit_code=None, stopped="stopped: wrote more than 5 bytes"))) == [
        "(run): P-EXIT: the run was stopped: wrote more than 5 bytes"]
    [left] = judge.exits_zero(result(leftovers=["pid 7: sleep 60", "pid 8: sleep 61", "pid 9: x", "pid 10: y"]))
    assert left.requirement == "P-EXIT" and left.file == judge.RUN
    assert left.level == "SHOULD"  # as in a pod, they are stopped; an image's end unseen with its container
    assert "left 4 process(es) running" in left.message and "pid 9: x" in left.message and "pid 10" not in left.message
    both = judge.exits_zero(result(exit_code=1, leftovers=["pid 7: sleep 60"]))
    assert [f.requirement for f in both] == ["P-EXIT", "P-EXIT"]


def test_platform_keeps_every_file():
    entries = [
        OutputEntry("a.json", "file", 3),
        OutputEntry("notes.txt", "file", 4),
        OutputEntry("sub", "dir"),
        OutputEntry("sub/inner", "dir"),
        OutputEntry("sub/d.json", "file", 3),
        OutputEntry("link.json", "symlink"),
        OutputEntry("pipe.json", "other"),
    ]
    found = {f.file: f.message for f in judge.platform_keeps_every_file(result(entries))}
    assert found == {
        "notes.txt": "not a *.json file: the platform drops it",
        "sub/": "a subfolder in the output folder: the platform drops it",
        "sub/d.json": "written in a subfolder: the platform drops it",
        "link.json": "a symbolic link, not a file: the platform reads through it, and its whole step fails if the "
                     "link dangles",
        "pipe.json": "a FIFO, socket or device, not a regular file: the platform's step fails or hangs on it",
    }
    assert judge.platform_keeps_every_file(result(files("a.json", "b.json"))) == []
    assert all(f.level != SHOULD for f in judge.platform_keeps_every_file(result(entries)))  # the MUST part


def test_leaves_inputs_alone():
    assert judge.leaves_inputs_alone(result()) == []
    changed = result(input_changes=["modified a.json", "added tmp"], model_changes=["removed multiplier.txt"])
    assert lines(judge.leaves_inputs_alone(changed)) == [
        "(input folder): P-READONLY: modified a.json",
        "(input folder): P-READONLY: added tmp",
        "(model folder): P-READONLY: removed multiplier.txt",
    ]


def test_one_response_each():
    every = judge.one_response_each
    assert every(result(files("a.json", "b.json")), ["b.json", "a.json"], {"a.json": "a.json", "b.json": "b.json"}) == []
    assert every(result(), [], {}) == []  # an empty batch owes nothing
    assert lines(every(result(files("a.json", "z.json")), ["a.json", "b.json"], {"a.json": "a.json"})) == [
        "b.json: P-EVERY: no response written for this request",
        "z.json: P-EVERY: a response no request asked for",
    ]
    # a renamed response answers its request: neither missing nor extra
    assert every(result(files("a.json", "out-b.json")), ["a.json", "b.json"],
                 {"a.json": "a.json", "b.json": "out-b.json"}) == []
    nothing = every(result([], output_exists=False, exit_code=1, stderr="boom"), ["a.json", "b.json"], {})
    assert lines(nothing) == ["(run): P-EVERY: no response for any of the 2 requests (the output folder was not "
                              "even created); output: boom"]
    # files the platform drops are not answers unless paired (P-NAME is their finding)
    assert [f.file for f in every(result(files("notes.txt")), ["a.json"], {})] == ["a.json"]


def test_refuses_unusable_model():
    refuses = judge.refuses_unusable_model
    assert refuses(result(exit_code=2, stderr="no multiplier.txt in /model\n"), "no multiplier.txt") == []
    found = refuses(result(files("a.json"), stderr="line one\n"), "empty multiplier.txt")
    assert [f.file for f in found] == ["(run)", "a.json"] and "exit status 0" in found[0].message
    assert "no reason given" in refuses(result(exit_code=2), "x")[0].message
    assert "takes 2 lines" in refuses(result(exit_code=2, stderr="a\nb\n"), "x")[0].message


def test_a_refusal_without_a_one_line_reason_is_a_should_finding():
    """Exit non-zero and nothing written is the MUST part; the one-line reason is the SHOULD part (contract)."""
    traceback = "Traceback (most recent call last):\n  File \"p.py\", line 1\nValueError: bad multiplier\n"
    [long] = judge.refuses_unusable_model(result(exit_code=1, stderr=traceback), "empty")
    [silent] = judge.refuses_unusable_model(result(exit_code=1), "empty")
    assert long.level == SHOULD and silent.level == SHOULD
    assert judge.blocking([long, silent], strict=False) == [] and judge.blocking([long], strict=True) == [long]
    served = judge.refuses_unusable_model(result(files("a.json"), exit_code=1, stderr="one line\n"), "empty")
    assert [f.level for f in served] == ["MUST"]  # a response written with an unusable model


def test_differential_checks():
    answered, silent = result(files("a.json", "b.json")), result([], exit_code=1, stderr="no folder")
    assert judge.creates_output_folder(answered, answered, "is absent") == []
    assert judge.creates_output_folder(silent, silent, "is absent") == []  # no baseline: nothing shown
    assert "no folder" in judge.creates_output_folder(answered, silent, "is absent")[0].message
    assert judge.isolates_unservable_requests(answered, answered, ["a.json"]) == []
    [lost] = judge.isolates_unservable_requests(answered, result(files("b.json"), exit_code=1), ["a.json", "b.json"])
    assert "a.json" in lost.message and "b.json" not in lost.message.split(";")[0] and "exit status 1" in lost.message
    assert judge.works_offline(answered, answered) == []
    assert judge.works_offline(silent, silent) == []
    assert judge.works_offline(silent, answered)[0].requirement == "P-OFFLINE"


def test_reads_operator_variables(tmp_path):
    decoy = tmp_path / "decoy-output"
    decoys = {"ODAHU_MODEL_OUTPUT": decoy, "ODAHU_MODEL_INPUT": tmp_path / "decoy-input"}
    assert judge.reads_operator_variables(result(files("a.json")), decoys) == []
    decoy.mkdir()
    found = judge.reads_operator_variables(result(files("a.json", "decoy.json")), decoys)
    assert [f.requirement for f in found] == ["P-ENV", "P-ENV"]
    assert "ODAHU_MODEL_OUTPUT" in found[0].message and "decoy request" in found[1].message


# ---------------------------------------------------------------------------------------------------------------
# pairing responses with requests


def test_responses_under_their_request_names_are_paired_without_reading():
    requests = {name: request(name) for name in ("a.json", "b.json")}
    read = reader({})
    pairing, findings = judge.pair_responses(result(files("a.json", "b.json")), requests, read)
    assert pairing == {"a.json": "a.json", "b.json": "b.json"} and findings == []
    assert read.asked == []


def test_renamed_responses_are_paired_by_their_unique_id():
    requests = {"a.json": request("a.json", "first"), "b.json": request("b.json", "second")}
    # in name order x.json would answer a.json; the echoed ids say otherwise
    written = {"x.json": response("x.json", "second"), "y.json": response("y.json", "first")}
    pairing, findings = judge.pair_responses(result(files(*written)), requests, reader(written))
    assert pairing == {"a.json": "y.json", "b.json": "x.json"}
    assert lines(findings) == ["a.json: P-NAME (SHOULD): the response is written as y.json",
                               "b.json: P-NAME (SHOULD): the response is written as x.json"]
    assert all(f.level == SHOULD for f in findings)
    assert judge.one_response_each(result(files(*written)), requests, pairing) == []


def test_numbered_responses_are_paired_in_natural_order():
    """response0..response10 answer req-00..req-10 by number (plain name order would put response10 third)."""
    requests = {f"req-{n:02d}.json": request(f"req-{n:02d}.json", "same") for n in range(11)}
    written = {f"response{n}.json": response(f"response{n}.json", "same") for n in range(11)}
    pairing, findings = judge.pair_responses(result(files(*reversed(list(written)))), requests, reader(written))
    assert pairing == {f"req-{n:02d}.json": f"response{n}.json" for n in range(11)}
    assert len(findings) == 11 and {f.requirement for f in findings} == {"P-NAME"}
    assert judge.natural_key("response2.json") < judge.natural_key("response10.json")


def test_numbered_responses_follow_the_order_a_predictor_lists_its_requests():
    """A predictor numbers responses in the order it lists the requests (sorted by name: big-131071 before
    big-65535), so requests are taken in that order and responses by their numbers."""
    requests = {name: request(name, "same") for name in ("big-65535.json", "big-131071.json", "big-9.json")}
    written = {f"response{n}.json": response(f"response{n}.json", "same") for n in range(3)}
    pairing, _ = judge.pair_responses(result(files(*written)), requests, reader(written))
    assert pairing == {"big-131071.json": "response0.json", "big-65535.json": "response1.json",
                       "big-9.json": "response2.json"}


def test_a_dropped_file_named_after_a_request_in_full_answers_that_request():
    requests = {name: request(name) for name in ("a.json", "a.b.json")}
    run = result(files("a.b.json.out", "a.json.out"))
    pairing, _ = judge.pair_responses(run, requests, reader({}))
    assert pairing == {"a.b.json": "a.b.json.out", "a.json": "a.json.out"}


def test_renamed_responses_are_not_guessed_when_the_counts_differ():
    requests = {name: request(name, "same") for name in ("a.json", "b.json", "c.json")}
    written = {"out1.json": response("out1.json", "same"), "out2.json": response("out2.json", "same")}
    pairing, findings = judge.pair_responses(result(files(*written)), requests, reader(written))
    assert pairing == {} and findings == []
    every = judge.one_response_each(result(files(*written)), requests, pairing)
    assert sorted(f.file for f in every) == ["a.json", "b.json", "c.json", "out1.json", "out2.json"]


def test_a_dropped_file_named_after_a_missing_request_answers_it():
    """b.txt is b.json's answer: the platform drops it (P-NAME, the root cause), so no P-EVERY."""
    requests = {"a.json": request("a.json"), "b.json": request("b.json")}
    run = result(files("a.json", "b.txt"))
    pairing, findings = judge.pair_responses(run, requests, reader({}))
    assert pairing == {"a.json": "a.json", "b.json": "b.txt"} and findings == []
    assert judge.one_response_each(run, requests, pairing) == []
    assert lines(judge.platform_keeps_every_file(run)) == ["b.txt: P-NAME: not a *.json file: the platform drops it"]
    # the same for a response written into a subfolder, and for b.json.partial; never for an unrelated name
    for dropped in ("sub/b.json", "b.json.partial"):
        pairing, _ = judge.pair_responses(result(files("a.json", dropped)), requests, reader({}))
        assert pairing["b.json"] == dropped
    pairing, _ = judge.pair_responses(result(files("a.json", "bb.txt")), requests, reader({}))
    assert "b.json" not in pairing


def test_one_dropped_file_answers_one_request():
    requests = {"x.json": request("x.json"), "x.1.json": request("x.1.json")}
    run = result(files("x.1.txt"))
    pairing, _ = judge.pair_responses(run, requests, reader({}))
    assert list(pairing.values()).count("x.1.txt") == 1
    assert [f.file for f in judge.one_response_each(run, requests, pairing)] == ["x.json"]


def test_the_p_name_message_says_what_the_platform_does_with_links():
    found = judge.platform_keeps_every_file(result([OutputEntry("b.json", "symlink"), OutputEntry("p.json", "other")]))
    assert not [f for f in found if "the platform drops it" in f.message or "a other" in f.message]


# pairing by content, and guesses


def shaped_request(name: str, shape: list[int], datatype: str = "INT32") -> Document:
    size = 1
    for side in shape:
        size *= side
    body = {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": [1] * size}]}
    return parse(json.dumps(body).encode(), REQUEST, name)


def shaped_response(name: str, shape: list[int], datatype: str = "INT32", value: int = 2) -> Document:
    size = 1
    for side in shape:
        size *= side
    body = {"model_name": "multiplier", "model_version": "1",
            "outputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": [value] * size}]}
    return parse(json.dumps(body).encode(), RESPONSE, name)


def multiplier_expected(requests: dict[str, Document]) -> dict:
    from conformance.odahu.model import Model
    from conformance.oracle.expect import expect

    model = Model(2, "multiplier", "1")
    return {name: expect(doc, model, name) for name, doc in requests.items()}


def test_numbered_responses_in_another_order_are_paired_by_their_content():
    """response0.json answers large.json (its shape says so), though in name order it would answer a.json."""
    requests = {"a.json": shaped_request("a.json", [2]), "large.json": shaped_request("large.json", [30, 30]),
                "m.json": shaped_request("m.json", [2], "FP64")}
    written = {"response0.json": shaped_response("response0.json", [30, 30]),
               "response1.json": shaped_response("response1.json", [2], "FP64"),
               "response2.json": shaped_response("response2.json", [2])}
    pairing, findings = judge.pair_responses(result(files(*written)), requests, reader(written),
                                             multiplier_expected(requests))
    assert pairing == {"large.json": "response0.json", "m.json": "response1.json", "a.json": "response2.json"}
    assert pairing.guessed == set() and all("guess" not in f.message for f in findings)
    # in name order, where the content agrees, order stands (the ODAHU example's names, sorted listing)
    in_order = {f"response{n}.json": doc for n, doc in enumerate([written["response2.json"], written["response0.json"],
                                                                  written["response1.json"]])}
    pairing, _ = judge.pair_responses(result(files(*in_order)), requests, reader(in_order), multiplier_expected(requests))
    assert pairing == {"a.json": "response0.json", "large.json": "response1.json", "m.json": "response2.json"}
    assert pairing.guessed == set()


def test_a_pairing_the_content_cannot_confirm_is_a_guess_and_says_so():
    """Two requests of the same shape with other values, their responses numbered against name order (the
    content contradicts order elsewhere): which answers which is a guess, said in the P-NAME finding."""
    a = parse(b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}]}', REQUEST, "a.json")
    b = parse(b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [5]}]}', REQUEST, "b.json")
    requests = {"a.json": a, "b.json": b, "c.json": shaped_request("c.json", [3])}
    written = {"response0.json": shaped_response("response0.json", [3]),
               "response1.json": shaped_response("response1.json", [1], value=10),
               "response2.json": shaped_response("response2.json", [1], value=2)}
    pairing, findings = judge.pair_responses(result(files(*written)), requests, reader(written),
                                             multiplier_expected(requests))
    assert pairing["c.json"] == "response0.json" and pairing.guessed == {"a.json", "b.json"}
    guessed = [f for f in findings if "a guess" in f.message]
    assert [f.file for f in guessed] == ["a.json", "b.json"] and all(f.level == SHOULD for f in guessed)
    # requests whose answers are the same (errors owed to both) can swap responses: no guess
    bad = {name: parse(b"{}", REQUEST, name) for name in ("x.json", "y.json")}
    errors = {n: parse(b'{"error": "no inputs"}', RESPONSE, n) for n in ("response0.json", "response1.json")}
    both = {**bad, "c.json": requests["c.json"]}
    numbered = {**errors, "response2.json": shaped_response("response2.json", [3])}
    order = {"response0.json": numbered["response2.json"], "response1.json": errors["response0.json"],
             "response2.json": errors["response1.json"]}
    pairing, _ = judge.pair_responses(result(files(*order)), both, reader(order), multiplier_expected(both))
    assert pairing["c.json"] == "response0.json" and pairing.guessed == set()
    # without any content to compare (unknown answers), order alone is a guess too
    unknown = {name: judge.Expected(None, None) for name in requests}  # type: ignore[arg-type]
    pairing, _ = judge.pair_responses(result(files(*written)), requests, reader(written), unknown)
    assert pairing.guessed == set(requests)


def test_dropped_responses_are_paired_by_their_echoed_id_first():
    """a.txt echoes b.json's id: it answers b.json, whatever its name (the platform drops it all the same)."""
    requests = {"a.json": request("a.json", "id-a"), "b.json": request("b.json", "id-b")}
    written = {"a.txt": response("a.txt", "id-b"), "b.txt": response("b.txt", "id-a")}
    run = result(files(*written))
    pairing, findings = judge.pair_responses(run, requests, reader(written))
    assert pairing == {"a.json": "b.txt", "b.json": "a.txt"} and findings == []
    assert judge.one_response_each(run, requests, pairing) == []


def test_a_guessed_pairing_is_not_judged_against_its_request(tmp_path):
    """judge_batch: the response paired by a guess keeps its format findings, and the value requirements are
    not-checked there with the reason, never failed."""
    from conformance.odahu.model import Model
    from conformance.v2.strictjson import dumps

    output = tmp_path / "raw-output"
    output.mkdir()
    bodies = {"response0.json": {"model_name": "multiplier", "model_version": "1",
                                 "outputs": [{"name": "x", "shape": [3], "datatype": "INT32", "data": [2, 2, 2]}]},
              "response1.json": {"model_name": "wrong", "model_version": "1",
                                 "outputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [10]}]},
              "response2.json": {"model_name": "multiplier", "model_version": "1",
                                 "outputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [2]}]}}
    for name, body in bodies.items():
        (output / name).write_bytes(dumps(body))
    run = result(files(*bodies), workspace=Workspace(tmp_path, tmp_path / "input", output, tmp_path / "model"))
    requests = {"a.json": b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}]}',
                "b.json": b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [5]}]}',
                "c.json": b'{"inputs": [{"name": "x", "shape": [3], "datatype": "INT32", "data": [1, 1, 1]}]}'}
    judged = judge.judge_batch(run, requests, Model(2, "multiplier", "1"))
    assert judged.pairing.guessed == {"a.json", "b.json"}
    must = [f.line() for f in judged.findings if f.level != SHOULD]
    assert must == ["a.json: F-MODEL /model_name: is 'wrong', the model's name is 'multiplier'"], must
    assert "M-VALUE" not in {f.requirement for f in judged.findings}
    assert "a guess" in judged.blocked_at("a.json")["M-VALUE"] and "M-VALUE" in judged.checked_at("c.json")


def test_isolation_is_decided_on_the_pairing_not_on_file_names():
    """The good requests answered alone as response0..2.json and not at all beside unservable ones: lost,
    although no file is named after them in either run."""
    alone = result(files("response0.json", "response1.json"))
    mixed = result([], exit_code=1, stderr="KeyError: 'inputs'")
    pairs = {"a.json": "response0.json", "b.json": "response1.json"}
    assert judge.isolates_unservable_requests(alone, mixed, ["a.json", "b.json"]) == []  # by name: nothing seen
    [lost] = judge.isolates_unservable_requests(alone, mixed, ["a.json", "b.json"], pairs, {})
    assert "a.json, b.json" in lost.message and "exit status 1" in lost.message
    assert judge.isolates_unservable_requests(alone, result(files("x.json")), ["a.json"], pairs,
                                              {"a.json": "x.json"}) == []


def test_a_killed_batch_is_p_isolate_only_when_a_control_batch_finishes():
    """Killed beside unservable requests: P-TIMELY's alone (nothing here) unless as many good requests without
    them finish (then the unservable requests made it hang)."""
    alone = result(files("a.json"))
    killed = result(timed_out=True, exit_code=None, duration=10.0, stderr="waiting for inputs")
    assert judge.isolates_unservable_requests(alone, killed, ["a.json"]) == []  # no control run
    assert judge.isolates_unservable_requests(alone, killed, ["a.json"], control=killed) == []  # it hangs anyway
    [found] = judge.isolates_unservable_requests(alone, killed, ["a.json"], control=result(files("c.json"), duration=1.25))
    assert found.requirement == "P-ISOLATE" and "as many good requests without them finish in 1.2 s" in found.message
    assert "waiting for inputs" in found.message
