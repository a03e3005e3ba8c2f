"""Small text pieces the kit needs in several places, written once: an exception or a text as one line, and the
last lines of a program's output."""

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


def last_lines(text: str, n: int = 1, default: str = "", separator: str = " | ") -> str:
    """The last ``n`` non-empty lines of ``text``, each stripped, joined with ``separator`` (one line for a
    finding or a message); ``default`` when ``text`` has no non-empty line. Programs end their error output with
    the useful line."""
    kept = [line.strip() for line in text.splitlines() if line.strip()][-n:] if n > 0 else []
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
