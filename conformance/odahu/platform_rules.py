"""What the ODAHU platform itself does with files, so the kit can say what it would lose.

The platform's validate steps (odahu-flow 1.6.1, ``packages/operator/pkg/utils/predictv2/directory_validator.go``)
list a folder (``ioutil.ReadDir``: not recursive, name order, entries ``lstat``-ed), skip folders and names not
ending in ``.json``, read every other entry whole (``ioutil.ReadFile``, which follows links) and do a bare Go
``json.Unmarshal`` into the request (``InferenceRequest``) or response (``InferenceResponse``) struct of
``packages/operator/pkg/apis/predict_v2/predict_v2.gen.go``. A file that fails to unmarshal is logged and skipped
(dropped silently); a read error ends the whole step with an error (the job fails: every file is lost).

How that unmarshal decides (Go 1.14 ``encoding/json``), as modelled here:

* no field is required: ``{}`` and ``null`` are kept; ``null`` is fine for every field (it leaves the zero value);
* keys reach fields case-insensitively with Unicode simple folding (``"INPUTS"``, ``"Datatype"``, ``"ſhape"`` with
  U+017F, ``"\u212aey"`` with the Kelvin sign): every copy of such a key is decoded into the field, so a wrongly
  typed copy (differently cased, or an earlier duplicate) fails the file even when the exact key is right;
* ``id`` / ``model_name`` / ``model_version`` / ``name`` / ``datatype`` are strings; ``shape`` is ``[]int``
  (64-bit: ``2.0``, ``1E0``, ``1.5`` and values out of int64's range fail); ``data`` is ``[]interface{}`` and
  ``parameters`` ``map[string]interface{}``: every number anywhere below them is decoded as float64, so one
  beyond float64's range (``1e400``, a 400-digit integer) fails the file; a struct or slice field holding another
  JSON type (``"inputs": {}``, ``"inputs": [5]``, ``"data": 5``) fails it;
* unknown keys are ignored whatever they hold (their numbers are never converted);
* no nesting depth limit (the platform's Go predates the 10,000-level limit of Go 1.15);
* invalid UTF-8 inside a string (a value or a key) and lone surrogate escapes (``"\\ud800"``) are kept: Go's
  scanner (``stateInString``) refuses only control characters there, and ``unquote`` turns each invalid byte and
  each escape that is not half of a valid pair into U+FFFD; the file is passed on unchanged, so its request
  reaches the predictor. A byte outside a string that is not JSON syntax (0x80 and up included, valid UTF-8 or
  not) is a syntax error (``invalid character ... looking for beginning of value``): dropped;
* otherwise syntax as the kit's strict reader: a BOM, trailing data, NaN/Infinity, comments and empty files are
  refused.

:func:`accepts` judges bytes (a fast path through orjson for the common case, and an exact, iterative tokenizer
for the rest: no recursion, no conversion of long integers, so no input can crash it); :func:`decide_entry` /
:func:`decide_folder` judge folder entries. This module never judges conformance.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import orjson

from conformance.v2.strictjson import count_members

# ------------------------------------------------------------------------------------------------- the structs

STRING, INT, ANY, SKIP = "string", "int", "interface {}", "(unknown key)"


@dataclass(frozen=True)
class Struct:
    """A Go struct: JSON field name -> type."""

    name: str
    fields: dict


@dataclass(frozen=True)
class Slice:
    """A Go slice of ``element``."""

    element: object
    name: str = ""


@dataclass(frozen=True)
class Map:
    """``map[string]interface{}``."""

    name: str = "map[string]interface {}"


PARAMETERS = Map()
TENSOR_DATA = Slice(ANY, "[]interface {}")
SHAPE = Slice(INT, "[]int")
_TENSOR_FIELDS = {"data": TENSOR_DATA, "datatype": STRING, "name": STRING, "parameters": PARAMETERS, "shape": SHAPE}
REQUEST_INPUT = Struct("RequestInput", _TENSOR_FIELDS)
REQUEST_OUTPUT = Struct("RequestOutput", {"name": STRING, "parameters": PARAMETERS})
RESPONSE_OUTPUT = Struct("ResponseOutput", _TENSOR_FIELDS)
INFERENCE_REQUEST = Struct("InferenceRequest", {
    "id": STRING, "inputs": Slice(REQUEST_INPUT, "[]RequestInput"),
    "outputs": Slice(REQUEST_OUTPUT, "[]RequestOutput"), "parameters": PARAMETERS,
})
INFERENCE_RESPONSE = Struct("InferenceResponse", {
    "id": STRING, "model_name": STRING, "model_version": STRING,
    "outputs": Slice(RESPONSE_OUTPUT, "[]ResponseOutput"), "parameters": PARAMETERS,
})
STRUCTS = {"request": INFERENCE_REQUEST, "response": INFERENCE_RESPONSE}

#: Go's key folding for the (ASCII) field names: ASCII case, plus the two non-ASCII runes whose simple case
#: folding reaches an ASCII letter: U+017F (long s) -> s and U+212A (Kelvin sign) -> k.
_FOLD = str.maketrans({**{chr(c): chr(c + 32) for c in range(65, 91)}, "\u017f": "s", "\u212a": "k"})


def fold(key: str) -> str:
    """``key`` as Go's field matching compares it with the (lower-case ASCII) field names."""
    return key.translate(_FOLD) if len(key) <= 16 else key


def field_of(struct: Struct, key: str) -> tuple[str, object] | None:
    """``(field name, type)`` that ``key`` reaches in ``struct`` (exact or case-folded), or ``None``."""
    name = fold(key)
    kind = struct.fields.get(name)
    return None if kind is None else (name, kind)


def _type_name(kind: object) -> str:
    if isinstance(kind, Slice):
        return kind.name or f"[]{_type_name(kind.element)}"
    if isinstance(kind, (Struct, Map)):
        return kind.name  # always named
    return cast(str, kind)  # a basic type is its Go name


class _Refused(Exception):
    """The bytes break the encoding or syntax rules; ``str()`` says how."""


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a number"


# ------------------------------------------------------------------------------------------------------ bytes


#: Documents larger than this are judged by the scanner alone (bounded memory: about twice the file), smaller
#: ones through orjson first (faster).
EXACT_FROM_BYTES = 16 << 20


def accepts(raw: bytes, kind: str) -> tuple[bool, str]:
    """``(True, "")`` when the platform's validator keeps these bytes as a ``kind`` ("request" / "response")
    document, else ``(False, reason)`` (one line). Never raises for any content."""
    struct = STRUCTS[kind]
    if len(raw) > EXACT_FROM_BYTES:
        return _exact(raw, struct)  # the scanner holds the text once; a parse holds every value as an object
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _exact(raw, struct)
    objects, keys = count_members(value)
    if raw.count(b"{") != objects or raw.count(b":") != keys:
        return _exact(raw, struct)  # a repeated key (or braces in strings): every copy must be seen
    # orjson checked the syntax and encoding and that every number is finite as a double, so only the types
    # below the known fields remain (no walk into data or parameters needed).
    problem = _value_problem(value, struct, check_numbers=False)
    return (False, problem) if problem else (True, "")


def accepts_value(value: object, kind: str, trust_data: bool = False) -> tuple[bool, str]:
    """:func:`accepts` for an already parsed document whose text was strict JSON without repeated keys (what
    the kit's strict reader returns). Numbers are checked as Go converts them (huge integers, infinities);
    ``trust_data`` skips the numbers of tensor ``data`` (the caller checked them finite already)."""
    problem = _value_problem(value, STRUCTS[kind], check_numbers=True, trust_data=trust_data)
    return (False, problem) if problem else (True, "")


def _pointer(parts: list) -> str:
    """Where a problem is: a JSON pointer without its leading ``/`` (``inputs/0/shape/0``), or "the document"."""
    return "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts) or "the document"


def _float_problem(value: object) -> bool:
    """Whether a parsed number is beyond float64's range (Go's ParseFloat fails)."""
    if type(value) is int:
        if value.bit_length() <= 1023:
            return False
        try:
            float(value)
        except OverflowError:
            return True
        return False
    return isinstance(value, float) and math.isinf(value)


def _value_problem(value: object, struct: Struct, check_numbers: bool, trust_data: bool = False) -> str:
    """The first type problem of a parsed value against ``struct`` ("" when none); iterative."""
    stack: list[tuple[object, object, list, str]] = [(value, struct, [], "")]
    while stack:
        item, kind, where, key_note = stack.pop()
        if item is None or kind == SKIP:
            continue
        if kind == ANY:
            if not check_numbers:
                continue
            if isinstance(item, dict):
                stack.extend((v, ANY, where + [k], "") for k, v in item.items())
            elif isinstance(item, list):
                stack.extend((v, ANY, where + [i], "") for i, v in enumerate(item) if not isinstance(v, (str, bool)))
            elif not isinstance(item, (str, bool)) and _float_problem(item):
                return f"{_pointer(where)}{key_note}: a number beyond float64's range (Go's interface {{}} holds it as float64)"
            continue
        problem = ""
        if isinstance(kind, Struct):
            if not isinstance(item, dict):
                problem = f"{_describe(item)} where Go expects {kind.name}"
            else:
                for key, sub in item.items():
                    found = field_of(kind, key)
                    if found is not None:
                        note = "" if key == found[0] else f" (key {key!r} reaches field {found[0]!r})"
                        stack.append((sub, found[1], where + [key], note))
        elif isinstance(kind, Slice):
            if not isinstance(item, list):
                problem = f"{_describe(item)} where Go expects {_type_name(kind)}"
            elif kind.element == ANY:
                if check_numbers and not trust_data:
                    stack.append((item, ANY, where, key_note))
            else:
                stack.extend((v, kind.element, where + [i], key_note) for i, v in enumerate(item))
        elif isinstance(kind, Map):
            if not isinstance(item, dict):
                problem = f"{_describe(item)} where Go expects {kind.name}"
            elif check_numbers:
                stack.append((item, ANY, where, key_note))
        elif kind == STRING:
            if not isinstance(item, str):
                problem = f"{_describe(item)} where Go expects string"
        elif kind == INT:
            if type(item) is not int:
                problem = f"the number {item!r} is not an integer (Go's []int)" if isinstance(item, float) \
                    else f"{_describe(item)} where Go expects int"
            elif not -(2**63) <= item < 2**63:
                problem = "an integer outside int64's range (Go's []int is 64-bit)"
        if problem:
            return f"{_pointer(where)}{key_note}: {problem}"
    return ""


# ------------------------------------------------------------------------------------- the exact, iterative path

_WS = " \t\n\r"
_TOKEN = re.compile(
    r'[ \t\n\r]*(?:'
    r'(?P<s>"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*")'
    r'|(?P<n>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)'
    r'|(?P<p>[{}\[\]:,])'
    r'|(?P<l>true|false|null)'
    r')'
)
#: A run of numbers and commas inside an array, for speed: ``1, 2.5, -3,`` (the last value is read normally).
# Runs are capped: an unbounded repeat keeps a backtracking frame per element (tens of bytes each, 40x a file of
# short numbers); the scanner calls _run again after each run, so long arrays are still skipped in big steps.
#: Inside ``interface{}`` only numbers that cannot overflow a double (at most 200 integer digits, a two-digit
#: exponent) are taken; the rest go through the per-token check.
_SAFE_RUN = re.compile(r'(?:[ \t\n\r]*-?(?:0|[1-9][0-9]{0,199})(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,2})?[ \t\n\r]*,){1,4096}')
_ANY_RUN = re.compile(r'(?:[ \t\n\r]*-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?[ \t\n\r]*,){1,4096}')
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")


def _decode_text(raw: bytes) -> str:
    """The text of ``raw``; a byte that is not UTF-8 becomes a lone surrogate U+DC80..U+DCFF (Python's
    ``surrogateescape``), which the tokenizer takes inside a string (Go keeps it, as U+FFFD) and nowhere else."""
    if not raw.strip(b" \t\n\r"):
        raise _Refused("empty file (no JSON value)")
    if raw.startswith(b"\xef\xbb\xbf"):
        raise _Refused("starts with a byte order mark (BOM)")
    return raw.decode("utf-8", errors="surrogateescape")


def _string(token: str) -> str:
    """The text of a string token (an escaped lone surrogate stays one: Go makes it U+FFFD, and neither matches
    a field name)."""
    if "\\" not in token:
        return token[1:-1]
    return cast(str, json.loads(token))


def _invalid(char: str) -> str:
    """How the scanner names an unexpected character: a byte that is not UTF-8 by its value."""
    if "\udc80" <= char <= "\udcff":
        return f"a byte 0x{ord(char) - 0xdc00:02x} that is not UTF-8, outside a string"
    return f"invalid character {char!r}"


def _exact(raw: bytes, struct: Struct) -> tuple[bool, str]:
    try:
        problem = _scan(_decode_text(raw), struct)
    except _Refused as refused:
        return False, f"does not parse as JSON ({refused})"
    return (False, problem) if problem else (True, "")


def _position(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line} column {column}"


def _number_problem(token: str, kind: object) -> str:
    if kind == INT:
        if not _INT.match(token):
            return f"the number {token[:40]} is not an integer (Go's []int)"
        digits = len(token) - (token[0] == "-")
        if digits > 19 or not -(2**63) <= int(token) < 2**63:
            return f"the number {token[:40]}{'...' if len(token) > 40 else ''} is outside int64's range (Go's []int is 64-bit)"
        return ""
    if kind == ANY:
        mantissa = token.split("e")[0].split("E")[0].lstrip("-").split(".")[0]
        if len(mantissa) <= 300 and "e" not in token and "E" not in token:
            return ""
        if math.isinf(float(token)):
            shown = token if len(token) <= 40 else f"{token[:20]}... ({len(token)} characters)"
            return f"the number {shown} is beyond float64's range (Go's interface {{}} holds it as float64)"
        return ""
    if kind == SKIP:
        return ""
    return f"a number where Go expects {_type_name(kind)}"


def _scan(text: str, root: Struct) -> str:
    """Check the whole text's syntax (raising :class:`_Refused`) and return the first type problem ("" if none).

    Iterative: ``stack`` holds one frame per open container: ``[is_object, type, key or index, note]``; the type
    of an object frame is the struct/map/any/skip its keys belong to, of an array frame its elements' type."""
    stack: list[list] = []
    first = ""
    pos, end = 0, len(text)
    state = "value"  # value, value_or_close, key, key_or_close, colon, after
    kind: object = root  # the type the next value must have
    note = ""

    def where() -> str:
        return _pointer([frame[2] for frame in stack])

    while True:
        match = _TOKEN.match(text, pos)
        if match is None:
            rest = text[pos:].lstrip(_WS)
            if not rest and state == "after" and not stack:
                return first
            if not rest:
                raise _Refused("unexpected end of JSON input")
            at = end - len(rest)
            word = next((w for w in ("NaN", "Infinity", "-Infinity", "//", "/*") if rest.startswith(w)), "")
            what = {"//": "a comment", "/*": "a comment"}.get(word, f"a {word} token" if word else _invalid(rest[0]))
            raise _Refused(f"{what} at {_position(text, at)}")
        group = match.lastgroup
        assert group is not None  # every alternative of _TOKEN is a named group
        token = match.group(group)
        pos = match.end()
        if state == "after":
            if not stack:
                raise _Refused(f"unexpected data after the top-level value at {_position(text, match.start(group))}")
            frame = stack[-1]
            if token == ",":
                if frame[0]:
                    state = "key"
                else:
                    frame[2] += 1
                    state, kind, note = "value", frame[1], frame[3]
                    pos, frame[2] = _run(text, pos, frame)
            elif token == ("}" if frame[0] else "]"):
                stack.pop()
            else:
                raise _Refused(f"unexpected {token[:20]!r} at {_position(text, match.start(group))}")
            continue
        if state in ("key", "key_or_close"):
            if token == "}" and state == "key_or_close":
                stack.pop()
                state = "after"
                continue
            if group != "s":
                raise _Refused(f"expected a key at {_position(text, match.start(group))}")
            frame = stack[-1]
            key = _string(token)
            frame[2] = key
            owner = frame[1]
            if isinstance(owner, Struct):
                found = field_of(owner, key)
                kind, note = (SKIP, "") if found is None else (
                    found[1], "" if key == found[0] else f" (key {key!r} reaches field {found[0]!r})")
            else:
                kind, note = owner, ""
            state = "colon"
            continue
        if state == "colon":
            if token != ":":
                raise _Refused(f"expected ':' at {_position(text, match.start(group))}")
            state = "value"
            continue
        # state is value or value_or_close
        if token == "]" and state == "value_or_close":
            stack.pop()
            state = "after"
            continue
        state = "after"
        if group == "p":
            if token == "{":
                if isinstance(kind, Struct) or kind in (ANY, SKIP):
                    owner = kind
                elif isinstance(kind, Map):
                    owner = ANY
                else:
                    if not first:
                        first = f"{where()}{note}: an object where Go expects {_type_name(kind)}"
                    owner = SKIP
                stack.append([True, owner, "", note])
                state = "key_or_close"
            elif token == "[":
                if isinstance(kind, Slice):
                    element = kind.element
                elif kind in (ANY, SKIP):
                    element = kind
                else:
                    if not first:
                        first = f"{where()}{note}: an array where Go expects {_type_name(kind)}"
                    element = SKIP
                frame = [False, element, 0, note]
                stack.append(frame)
                state, kind = "value_or_close", element
                start = pos
                pos, frame[2] = _run(text, pos, frame)
                if pos != start:
                    state = "value"  # the run ended with a comma: a value must follow
            else:
                raise _Refused(f"unexpected {token!r} at {_position(text, match.start(group))}")
            continue
        problem = ""
        if group == "s":
            if kind not in (STRING, ANY, SKIP):
                problem = f"a string where Go expects {_type_name(kind)}"
        elif group == "n":
            problem = _number_problem(token, kind)
        elif token != "null" and kind not in (ANY, SKIP):
            problem = f"a boolean where Go expects {_type_name(kind)}"
        if problem and not first:
            first = f"{where()}{note}: {problem}"


def _run(text: str, pos: int, frame: list) -> tuple[int, int]:
    """Skip a run of plain numbers in an array of ``interface{}`` or of unknown data; return the new position
    and the index of the array's next value."""
    element = frame[1]
    if element == ANY:
        match = _SAFE_RUN.match(text, pos)
    elif element == SKIP:
        match = _ANY_RUN.match(text, pos)
    else:
        return pos, frame[2]
    if match is None:
        return pos, frame[2]
    return match.end(), frame[2] + match.group().count(",")


# ----------------------------------------------------------------------------------------------- folder entries

KEPT, DROPPED, FAILS_STEP, NOT_JUDGED = "kept", "dropped silently", "fails the whole step", "not judged"
HANGS = "the platform's step would hang"


@dataclass(frozen=True)
class Decision:
    """What the platform's validate step does with one folder entry: ``outcome`` is :data:`KEPT`,
    :data:`DROPPED` (skipped with a log line), :data:`FAILS_STEP` (the step ends with an error: the job fails
    and every file is lost) or, for a file over the kit's size limit, :data:`NOT_JUDGED`."""

    name: str
    outcome: str
    reason: str = ""

    @property
    def kept(self) -> bool:
        return self.outcome == KEPT

    @property
    def fails_step(self) -> bool:
        return self.outcome == FAILS_STEP

    def describe(self) -> str:
        """``"kept"``, ``"dropped silently (reason)"``, ``"fails the whole step (reason)"``."""
        return f"{self.outcome} ({self.reason})" if self.reason else self.outcome

    def line(self) -> str:
        """One line naming the entry: ``NAME: kept`` and so on."""
        return f"{self.name}: {self.describe()}"


def decide_entry(path: str | os.PathLike, kind: str, max_bytes: int | None = None) -> Decision:
    """What the platform's ``kind`` validate step does with the folder entry ``path``. Never opens a FIFO;
    never raises. ``max_bytes`` caps what the kit reads (the platform has no cap)."""
    path = Path(path)
    name = path.name
    try:
        own = os.lstat(path)
    except OSError as exc:
        return Decision(name, FAILS_STEP, f"cannot be listed: {exc.strerror or exc}")
    if stat.S_ISDIR(own.st_mode):
        # ReadDir's entries come from lstat: a real folder is skipped before any read, whatever its name.
        return Decision(name, DROPPED, "a folder: the platform skips folders (not recursive)")
    if not name.endswith(".json"):
        return Decision(name, DROPPED, "not *.json: the platform skips it unread")
    link = stat.S_ISLNK(own.st_mode)
    what = "a symbolic link to " if link else ""
    try:
        target = os.stat(path) if link else own
    except OSError as exc:
        state = "a dangling symbolic link" if exc.errno == 2 else "a symbolic link that cannot be followed"
        return Decision(name, FAILS_STEP, f"{state} ({exc.strerror or exc}): reading it fails")
    mode = target.st_mode
    if stat.S_ISDIR(mode):
        return Decision(name, FAILS_STEP, f"{what}a folder: reading it fails")
    if stat.S_ISFIFO(mode):
        return Decision(name, FAILS_STEP, f"{HANGS}: {what}a FIFO is read until a writer closes it")
    if not stat.S_ISREG(mode):
        return Decision(name, FAILS_STEP, f"{what}a socket or device, not a regular file: reading it fails or never ends")
    if max_bytes is not None and target.st_size > max_bytes:
        return Decision(name, NOT_JUDGED, f"{target.st_size} bytes, over the kit's limit of {max_bytes} bytes")
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return Decision(name, FAILS_STEP, "not a regular file any more when read")
            raw = handle.read()
    except OSError as exc:
        return Decision(name, FAILS_STEP, f"cannot be read ({exc.strerror or exc})")
    return decide_bytes(name, raw, kind, via_link=link)


def decide_bytes(name: str, raw: bytes, kind: str, via_link: bool = False) -> Decision:
    """The decision for a readable ``*.json`` entry holding ``raw``."""
    keeps, reason = accepts(raw, kind)
    if keeps:
        return Decision(name, KEPT, "a symbolic link, judged by its target" if via_link else "")
    return Decision(name, DROPPED, reason)


def decide_folder(folder: str | os.PathLike, kind: str, max_bytes: int | None = None) -> list[Decision]:
    """One :class:`Decision` per entry of ``folder`` in the platform's order (byte order of the names).
    Raise ``OSError`` when the folder cannot be listed (the platform's step fails then too)."""
    folder = Path(folder)
    names = sorted(os.listdir(folder), key=lambda n: os.fsencode(n))
    return [decide_entry(folder / name, kind, max_bytes) for name in names]


def step_failure(decisions: list[Decision]) -> Decision | None:
    """The first entry that makes the whole step fail (the platform stops at the first), or ``None``."""
    return next((d for d in decisions if d.fails_step), None)
