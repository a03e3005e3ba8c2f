"""The kit's HTTP client for V2 servers: keep-alive connections, bounded waits, never an exception for network
trouble (an :class:`Answer` says what happened).

One :class:`HttpClient` holds one connection per thread, so a batch sent one request after another reuses one
socket, and concurrent senders (B-INDEPENDENT online) each get their own.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

from conformance.contract.problems import ConformanceProblem

#: A body larger than this is not read whole (a server streaming gigabytes is itself a finding).
MAX_BODY = 1 << 30


@dataclass
class Answer:
    """What one HTTP request got: ``status`` (None when nothing came back, then ``error`` says why in one line),
    ``headers`` (looked up by lower-cased name), the ``body`` and how many ``seconds`` it took; ``timed_out`` when the wait ran out."""

    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0
    error: str | None = None
    timed_out: bool = False

    @property
    def content_type(self) -> str:
        """The media type of the body, without parameters, lower-cased ("" when none was sent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class _Connection(http.client.HTTPConnection):
    """An HTTP/1.1 connection that sends a request's headers and a bytes body in one write, without Nagle's delay:
    written apart, a small body waits for the server's acknowledgement of the headers (Python 3.11's
    ``http.client`` writes them apart)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send_output(self, message_body: object = None, encode_chunked: bool = False) -> None:
        if isinstance(message_body, bytes):
            self._buffer.extend((b"", message_body))  # type: ignore[attr-defined]
            self.send(b"\r\n".join(self._buffer))  # type: ignore[attr-defined]
            del self._buffer[:]  # type: ignore[attr-defined]
            return
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]


class UrlProblem(ConformanceProblem):
    """A base URL the client cannot use; one line."""


def parse_base_url(url: str) -> tuple[str, int, str]:
    """``(host, port, path prefix)`` of an ``http://HOST:PORT[/prefix]`` URL; :class:`UrlProblem` otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme != "http":
        raise UrlProblem(f"{url!r}: expected http://HOST:PORT (https is not supported)")
    if not parts.hostname:
        raise UrlProblem(f"{url!r}: no host")
    try:
        port = parts.port or 80
    except ValueError:
        raise UrlProblem(f"{url!r}: the port is not a number from 0 to 65535") from None
    if parts.query or parts.fragment:
        raise UrlProblem(f"{url!r}: a query or fragment has no place in a server's base URL")
    return parts.hostname, port, parts.path.rstrip("/")


class HttpClient:
    """Requests to one V2 server at ``base_url``, each bounded by ``timeout`` seconds (or the ``timeout`` given
    to the call)."""

    def __init__(self, base_url: str, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.host, self.port, self.prefix = parse_base_url(base_url)
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self, path: str, timeout: float | None = None) -> Answer:
        """``GET path``."""
        return self.request("GET", path, None, timeout)

    def post(self, path: str, body: bytes, timeout: float | None = None,
             content_type: str = "application/json") -> Answer:
        """``POST path`` with ``body``."""
        return self.request("POST", path, body, timeout, {"Content-Type": content_type})

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        """Send one request on this thread's connection (made, or made again after the server closed it) and
        read the whole answer. A connection the server closed before answering a reused request is retried once
        on a new one (keep-alive races); any other trouble is an :class:`Answer` with ``error``."""
        limit = self.timeout if timeout is None else timeout
        started = time.monotonic()
        for attempt in (1, 2):
            connection, fresh = self._connection(limit)
            try:
                connection.request(method, self.prefix + path, body=body, headers=headers or {})
                response = connection.getresponse()
                if response.length is not None and response.length > MAX_BODY:  # (from its Content-Length)
                    self._drop()
                    return Answer(response.status, _headers(response), b"", time.monotonic() - started,
                                  f"a body of {response.length} bytes, over the kit's limit of {MAX_BODY}")
                data = response.read()
                if response.will_close:
                    self._drop()
                return Answer(response.status, _headers(response), data, time.monotonic() - started)
            except (socket.timeout, TimeoutError):
                self._drop()
                waited = time.monotonic() - started
                return Answer(None, seconds=waited, error=f"no answer within {waited:.1f} s", timed_out=True)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._drop()
                if attempt == 1 and not fresh:
                    continue  # a kept-alive connection the server had closed
                return Answer(None, seconds=time.monotonic() - started, error=_why(exc))
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                return Answer(None, seconds=time.monotonic() - started, error=_why(exc))
        raise AssertionError("unreachable")

    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        connection = getattr(self._local, "connection", None)
        fresh = connection is None
        if connection is None:
            connection = _Connection(self.host, self.port, timeout=timeout)
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        elif connection.timeout != timeout:  # (a system call each time: callers round their timeouts)
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
        return connection, fresh

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def close(self) -> None:
        """Close every connection this client opened (on any thread)."""
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()
        self._local = threading.local()


def _headers(response: http.client.HTTPResponse) -> Mapping[str, str]:
    """The response's headers as they came: a case-insensitive mapping (``get("content-type")``), not copied."""
    return cast(Mapping[str, str], response.msg)


def _why(exc: BaseException) -> str:
    """One line for a network error: ``connection refused``, ``connection reset``, the OS's words."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (ConnectionResetError, http.client.RemoteDisconnected)):
        return "the server closed the connection without an answer"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host: {exc.strerror or exc}"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())
