"""Small text pieces the kit needs in several places, written once: an exception or a text as one line, the
last lines of a program's output, and a value quoted from a candidate cut to a bounded length with its full size
said (a hostile candidate's 50 MB ``model_name`` must not become 50 MB in every message, report and log)."""

from __future__ import annotations

from decimal import Decimal

#: How long :func:`one_line` lets a line grow before it cuts it (with ``...``).
ONE_LINE_LIMIT = 200


def one_line(value: BaseException | str, limit: int | None = ONE_LINE_LIMIT) -> str:
    """``value`` (an exception's message, or a text) on one line: runs of whitespace, line breaks included,
    become one space. An exception without a message gives its type's name. With ``limit``, a longer line is cut
    to ``limit`` characters, the last three being ``...``."""
    text = " ".join(str(value).split())
    if not text and isinstance(value, BaseException):
        text = type(value).__name__
    if limit is not None and len(text) > limit:
        return text[: max(limit - 3, 0)] + "..."
    return text


#: How many characters of a value quoted from a candidate a message shows (:func:`quote`).
QUOTE_LIMIT = 80
#: How many characters of a candidate's error message (``{"error": ...}``) a finding quotes.
MESSAGE_QUOTE = 300
#: How long a whole message about a candidate may grow (:func:`bounded`, applied to every finding).
MESSAGE_LIMIT = 2000
#: How long one quoted line of a candidate's output may be (:func:`last_lines`).
LINE_LIMIT = 500


def _size(count: int, unit: str = "characters") -> str:
    return f"({count:,} {unit})"


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for a message, cut to about ``limit`` characters with the value's full size said:
    ``'aaaa…' (52,428,800 characters)`` for a long string, ``[1, 2, …] (1,000,000 characters)`` for another long
    value. Short values are quoted as ``repr`` does. Only the head of a long string is ever copied."""
    if isinstance(value, (str, bytes, bytearray)) and len(value) > limit:
        head = repr(value[:limit] if isinstance(value, str) else bytes(value[:limit]))
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{head[:-1]}…{head[-1]} {_size(len(value), unit)}"
    return cut(repr(value), limit)


def cut(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` when at most ``limit`` characters, else its first ``limit`` characters and its full size:
    ``aaaa… (52,428,800 characters)``."""
    return text if len(text) <= limit else f"{text[:limit]}… {_size(len(text))}"


def bounded(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` when at most ``limit`` characters, else its head and tail around ``… (N characters in all) …``:
    the end of a message (what it was compared with, where) stays readable."""
    if len(text) <= limit:
        return text
    tail = limit // 4
    return f"{text[: limit - tail]} … ({len(text):,} characters in all) … {text[len(text) - tail:]}"


def last_lines(text: str, n: int = 1, default: str = "", separator: str = " | ") -> str:
    """The last ``n`` non-empty lines of ``text``, each stripped and cut to :data:`LINE_LIMIT` characters
    (:func:`bounded`), joined with ``separator`` (one line for a finding or a message); ``default`` when ``text``
    has no non-empty line. Programs end their error output with the useful line."""
    lines = [line.strip() for line in text.splitlines()]
    kept = [bounded(line, LINE_LIMIT) for line in [line for line in lines if line][-n:]] if n > 0 else []
    return separator.join(kept) if kept else default


def integer_text(value: int) -> str:
    """``value`` in base 10, exactly, however many digits (``str()`` refuses beyond 4,300 digits)."""
    return str(Decimal(value))


def integer_from_text(text: str) -> int:
    """The integer a base-10 text holds, exactly, however many digits (``int()`` refuses beyond 4,300 digits).
    ValueError when ``text`` is not an integer."""
    if len(text) <= 4000:
        return int(text)
    value = Decimal(text)
    if value != value.to_integral_value() or not value.is_finite():
        raise ValueError(f"not an integer: {text[:20]}...")
    return int(value)


def short_integer(value: int, digits: int = 40) -> str:
    """``value`` for a message: in full when short, else its first digits and how many there are."""
    text = integer_text(value)
    sign = "-" if text.startswith("-") else ""
    body = text.lstrip("-")
    return text if len(body) <= digits else f"{sign}{body[:digits]}... ({len(body)} digits)"
