"""Running a batch against a V2 server: each staged request file is POSTed to the model's ``infer`` route (REST), or
sent as a ``ModelInfer`` call (gRPC, a server given by ``--grpc`` alone), and its answer kept as an
:class:`~conformance.transport.exchange.Exchange`.

Over gRPC each request is sent as the message :mod:`conformance.transport.grpc_v2.codec` makes of it (typed
contents; raw for a request holding FP16); a request no message says faithfully (its JSON is what is wrong with
it: nesting that does not match the shape, ``2.0`` in an INT32 tensor) is not sent and has no exchange: the judge
passes over it, as such a request tests the JSON reading, which gRPC does not have.

The server is one the user runs (``--url``), or one the kit starts (``--serve``: :mod:`conformance.run.serving`)
on the model folder and stops afterwards. A run with another model staged (another multiplier, another name)
needs a server started on that model: with ``--serve`` the kit starts one for the run; a ``--url`` server serves
the model it was started with (the suite's tests set such runs aside, :attr:`OnlineRunner.fixed_model`).

A run is bounded by its timeout as a batch run is: each request may take what is left of it; requests not sent
by then are reported unsent. Each answer is also written to the workspace's output folder under the request's
name when the workspace is kept, so it holds the requests, the answers and the expected answers side by side.
"""

from __future__ import annotations

import json
import math
import shlex
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from conformance.odahu.model import ModelProblem, read_project
from conformance.run import staging
from conformance.run.observe import folder_digest
from conformance.run.workspace import RunResult, Workspace
from conformance.transport.exchange import GRPC, HTTP, Exchange
from conformance.transport.http import Answer, HttpClient
from conformance.v2.strictjson import JSONProblem, loads

#: Servers on other staged models kept running for later runs on the same files (--serve): a property test's
#: few multipliers come round again and again, and a server's start costs more than its requests.
POOL = 4
#: Why a request was not sent, by cause.
NOT_SENT_TIMEOUT = "not sent: the run's timeout had passed"
NOT_SENT_DOWN = "not sent: the server had stopped answering"


class Served(Protocol):
    """A server the kit started (:class:`conformance.run.serving.Served`)."""

    url: str
    served_before_ready: str | None
    grpc: str | None

    def alive(self) -> bool: ...

    def exit_status(self) -> int | None: ...

    def output(self, lines: int = 3) -> str: ...

    def stop(self) -> None: ...


def _not_sent(name: str, transport: str, where: str, body: bytes, down: bool) -> Exchange:
    """The exchange of a request not sent: the server had stopped answering (``down``), or the run's time was up."""
    return Exchange(name, transport, where, request=body, error=NOT_SENT_DOWN if down else NOT_SENT_TIMEOUT,
                    sent=False)


def _each(names: list[str], send: Callable[[str], None], concurrency: int) -> None:
    """``send`` each of ``names``: one after the other, or over ``concurrency`` threads at once."""
    if concurrency <= 1:
        for name in names:
            send(name)
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(send, names))


def model_path(name: str, version: str | None = None) -> str:
    """``/v2/models/NAME[/versions/V]`` with both parts escaped for a URL path."""
    path = f"/v2/models/{quote(name, safe='')}"
    return path + (f"/versions/{quote(version, safe='')}" if version else "")


class OnlineRunner:
    """Runs batches against the V2 server at ``url`` serving ``model_name`` (``model_version``, when given, is
    part of the route). ``serve`` (``--serve``) starts a server on a model folder and returns its handle
    (:class:`conformance.run.serving.Served`); the main server, on ``model``, is started at the first need and
    stopped by :meth:`close`. ``grpc`` (``HOST:PORT``) is the server's gRPC endpoint: given alone (no ``url``,
    no ``serve``), the batches go over gRPC (:attr:`transport`); beside REST, each batch on the server's own
    model goes over both, its gRPC exchanges in ``RunResult.twins``."""

    def __init__(self, url: str | None, model_name: str, model_version: str | None = None,
                 serve: Callable[[Path, tuple[str, bytes] | None], Served] | None = None, model: Path | None = None,
                 timeout: float = 60.0, grpc: str | None = None):
        self.url = url
        self.grpc = grpc
        #: what carries the batches: REST, unless the server is given by its gRPC endpoint alone
        self.transport = GRPC if grpc is not None and url is None and serve is None else HTTP
        self.grpc_client: Any = None  # a GrpcClient (made when first needed: grpcio is loaded only then)
        self.model_name, self.model_version = model_name, model_version
        self.serve, self.model = serve, model
        self.served: Served | None = None  # the main server's handle (--serve)
        self.client: HttpClient | None = HttpClient(url, timeout) if url else None
        self.timeout = timeout
        #: where requests are POSTed
        self.infer_route = model_path(model_name, model_version) + "/infer"
        #: servers on other staged models (--serve), by their files' digest, oldest first: (handle, client)
        self._pool: OrderedDict[str, tuple[Served, HttpClient]] = OrderedDict()
        self._homes: list[Workspace] = []  # where their models' copies are
        #: a request the model serves, sent while the main server (--serve) says it is not ready yet
        self.probe: bytes | None = None

    @property
    def fixed_model(self) -> bool:
        """Whether every run must use the model the server already serves (``--url``)."""
        return self.serve is None


    def main_client(self) -> HttpClient:
        """The client of the main server, started first when the kit serves it (a ServeProblem propagates)."""
        if self.client is None:
            assert self.serve is not None and self.model is not None
            probe = (self.infer_route, self.probe) if self.probe is not None else None
            self.served = self.serve(self.model, probe)
            self.url = self.served.url
            self.client = HttpClient(self.url, self.timeout)
            if self.served.grpc is not None:  # (--serve --grpc-port: its gRPC endpoint, once it answers)
                self.grpc = self.served.grpc
                self._await_grpc()
        return self.client

    def _await_grpc(self) -> None:
        """Wait (at most the run's timeout) until the started server's gRPC endpoint answers ServerLive at all;
        a ConformanceProblem (one line) when it never does."""
        from conformance.contract.problems import ConformanceProblem

        deadline = time.monotonic() + self.timeout
        while True:
            live = self.main_grpc().live(timeout=min(2.0, max(deadline - time.monotonic(), 0.1)))
            if live.code is not None:
                return
            if time.monotonic() >= deadline:
                raise ConformanceProblem(f"the server is ready over REST, but nothing answers over gRPC at "
                                         f"{self.grpc} within {self.timeout:g} s: {live.error}")
            time.sleep(0.05)

    def main_grpc(self) -> Any:
        """The :class:`~conformance.transport.grpc_v2.client.GrpcClient` of the gRPC endpoint (made at the first need)."""
        if self.grpc_client is None:
            from conformance.transport.grpc_v2.client import GrpcClient

            assert self.grpc is not None
            self.grpc_client = GrpcClient(self.grpc, self.timeout)
        return self.grpc_client

    def preflight(self) -> str | None:
        """Why the suite cannot run against this server, one line, or None: nothing answers at the URL (or at the
        gRPC endpoint), the server cannot be started (``--serve``), or it does not know the model (``GET`` of the
        model's metadata is 404: a wrong ``--model-name`` would fail every test alike)."""
        if self.grpc is not None:
            live = self.main_grpc().live(timeout=min(self.timeout, 10.0))
            if live.code is None:
                return f"nothing answers over gRPC at {self.grpc}: {live.error}"
            if self.transport == GRPC:
                return None
        try:
            client = self.main_client()
        except Exception as problem:  # ServeProblem: one line, with the server's last output
            return str(problem)
        live = client.get("/v2/health/live", timeout=min(self.timeout, 10.0))
        if live.status is None:
            return f"nothing answers at {client.base_url}: {live.error}"
        metadata = client.get(model_path(self.model_name, self.model_version), timeout=min(self.timeout, 10.0))
        if metadata.status == 404:
            version = f" version {self.model_version!r}" if self.model_version else ""
            return (f"{client.base_url} does not serve model {self.model_name!r}{version} (GET "
                    f"{model_path(self.model_name, self.model_version)}: 404); give --model-name (and --model-version)")
        return None

    def describe(self, ws: Workspace | None = None) -> str:
        """A shell command that sends the workspace's requests again (with curl; over gRPC, with the kit's own
        ``odahu-conformance`` is not yet a sender: grpcurl and the .proto), one answer per line."""
        if self.transport == GRPC:
            where = shlex.quote(str(ws.input)) if ws is not None else "REQUESTS"
            return (f"the requests in {where}, each as a ModelInfer call to {self.grpc} "
                    f"(grpcurl -plaintext -proto open_inference.proto ... {self.grpc} "
                    f"inference.GRPCInferenceService/ModelInfer)")
        url = (self.url or "http://HOST:PORT") + self.infer_route
        where = shlex.quote(str(ws.input)) if ws is not None else "REQUESTS"
        return (f"for f in {where}/*.json; do curl -sS -X POST -H 'Content-Type: application/json' "
                f"--data-binary @\"$f\" {shlex.quote(url)}; echo; done")

    def run(self, ws: Workspace, timeout: float, own_model: bool = True, concurrency: int = 1,
            requests: list[tuple[str, bytes]] | None = None) -> RunResult:
        """Send ``requests`` (``(name, bytes)``, those the platform's input filter keeps; by default the files of
        ``ws.input``) in name order, over ``concurrency`` connections at once, and return the run with its
        exchanges. ``own_model`` False: ``ws.model`` holds another model, served by a server started on it
        (``--serve`` only; kept for later runs on the same files, :data:`POOL`). Nothing is written: a kept workspace gets its requests and
        answers as files from :func:`write_answers`."""
        started = time.monotonic()
        if requests is None:
            files = sorted(p for p in ws.input.iterdir() if p.is_file()) if ws.input.is_dir() else []
            requests = [(p.name, p.read_bytes()) for p in files]
        bodies = dict(requests)
        names = sorted(bodies)
        served = None
        if self.transport == GRPC:
            if not own_model:
                raise AssertionError("a --grpc server serves its own model only (OnlineRunner.fixed_model)")
            exchanges, down = self._send_grpc(names, bodies, started + timeout, concurrency)
            made = self._result(ws, exchanges, started, stopped=down)
            made.concurrent = concurrency > 1
            return made
        try:
            route = self.infer_route
            if own_model:
                client = self.main_client()
            else:
                if self.serve is None or ws.model is None:
                    raise AssertionError("a --url server serves its own model only (OnlineRunner.fixed_model)")
                served, client = self._other(ws.model, timeout)
                name, version = _served_as(ws.model, self.model_name, self.model_version)
                route = model_path(name, version) + "/infer"
        except AssertionError:
            raise
        except Exception as problem:  # the server could not be started: ServeProblem, one line
            return self._result(ws, {}, started, start_error=str(problem))
        exchanges, down = self._send(client, route, names, bodies, started + timeout, concurrency, served)
        output = _output_of(served if served is not None else self.served)
        made = self._result(ws, exchanges, started, stopped=down, output=output)
        made.concurrent = concurrency > 1
        if self.grpc is not None and own_model and not down:  # the same requests over the same server's gRPC
            made.twins, _ = self._send_grpc(names, bodies, started + timeout, concurrency)
        return made

    def _other(self, model: Path, timeout: float) -> tuple[Served, HttpClient]:
        """A server on another staged ``model`` and its client: one already serving the same files (the last
        :data:`POOL` are kept, on copies of their models that outlive the run's workspace), else a new one."""
        key = json.dumps(sorted(folder_digest(model).items()))
        held = self._pool.pop(key, None)
        if held is not None and held[0].alive():
            self._pool[key] = held
            return held
        if held is not None:
            _stop(*held)
        assert self.serve is not None  # (--serve: the caller checked)
        home = staging.new_workspace()
        self._homes.append(home)
        copy = staging.stage_model(home, model)
        # (the probe as for the main server: a server that waits for an inference before it says it is ready
        # must get one here too; only the main server's early answer is judged, H-READY)
        name, version = _served_as(copy, self.model_name, self.model_version)
        probe = (model_path(name, version) + "/infer", self.probe) if self.probe is not None else None
        served = self.serve(copy, probe)
        self._pool[key] = (served, HttpClient(served.url, self.timeout))
        while len(self._pool) > POOL:
            _stop(*self._pool.pop(next(iter(self._pool))))
        return self._pool[key]

    def _send(self, client: HttpClient, route: str, names: list[str], bodies: dict[str, bytes], deadline: float,
              concurrency: int, served: Served | None = None) -> tuple[dict[str, Exchange], str | None]:
        exchanges: dict[str, Exchange] = {}
        down: list[str] = []
        where = f"POST {route}"

        def send(name: str) -> None:
            remaining = deadline - time.monotonic()
            if down or remaining <= 0:
                exchanges[name] = _not_sent(name, HTTP, where, bodies[name], bool(down))
                return
            # whole seconds (at most one more than the run's timeout): the socket's timeout then changes once a second
            answer = client.post(route, bodies[name], timeout=float(math.ceil(remaining)))
            exchanges[name] = _exchange(name, where, answer, bodies[name])
            if answer.status is None and not answer.timed_out:
                why = self._down(client, served)
                if why:
                    down.append(why)

        _each(names, send, concurrency)
        return {name: exchanges[name] for name in names}, (down[0] if down else None)

    def _send_grpc(self, names: list[str], bodies: dict[str, bytes], deadline: float,
                   concurrency: int) -> tuple[dict[str, Exchange], str | None]:
        """Each request as a ModelInfer call (those a message says faithfully; the others get no exchange)."""
        from conformance.transport.grpc_v2 import codec

        client = self.main_grpc()
        exchanges: dict[str, Exchange] = {}
        down: list[str] = []
        where = f"gRPC ModelInfer {self.model_name}" + (f" version {self.model_version}" if self.model_version else "")
        messages: dict[str, Any] = {}
        for name in names:
            try:
                parsed = loads(bodies[name])
                message = codec.request_message(parsed if isinstance(parsed, dict) else bodies[name], self.model_name,
                                                self.model_version)
            except (codec.Inexpressible, JSONProblem):
                continue
            if codec.faithful(bodies[name], message, parsed) is None:
                messages[name] = message

        def send(name: str) -> None:
            remaining = deadline - time.monotonic()
            if down or remaining <= 0:
                exchanges[name] = _not_sent(name, GRPC, where, bodies[name], bool(down))
                return
            answer = client.infer(messages[name], timeout=remaining)
            exchanges[name] = _grpc_exchange(name, where, answer, bodies[name])
            if answer.code is None and not answer.timed_out:
                live = client.live(timeout=5.0)
                if live.code is None:
                    down.append(f"the server stopped answering during the run (gRPC ServerLive: {live.error})")

        sendable = [name for name in names if name in messages]
        _each(sendable, send, concurrency)
        return {name: exchanges[name] for name in sendable}, (down[0] if down else None)

    def _down(self, client: HttpClient, served: Served | None = None) -> str | None:
        """Why the server no longer answers (it exited, or its liveness route does not answer), or None."""
        served = served if served is not None else self.served
        if served is not None and not served.alive():
            status = served.exit_status()
            return f"the server exited (status {status}) during the run; output: {served.output()}"
        live = client.get("/v2/health/live", timeout=5.0)
        if live.status is None:
            return f"the server stopped answering during the run (GET /v2/health/live: {live.error})"
        return None

    def _result(self, ws: Workspace, exchanges: dict[str, Exchange], started: float, start_error: str | None = None,
                stopped: str | None = None, output: str = "") -> RunResult:
        return RunResult(
            exit_code=None if start_error else 0, stdout="", stderr=output, duration=time.monotonic() - started,
            timed_out=any(e.timed_out for e in exchanges.values()), output_exists=True, entries=[],
            input_changes=[], model_changes=[], workspace=ws,
            command=[f"gRPC ModelInfer {self.grpc}" if self.transport == GRPC else f"POST {self.url or ''}{self.infer_route}"],
            start_error=start_error, exchanges=exchanges, server_down=stopped)

    def close(self) -> None:
        """Close the connections and stop every server the kit started (idempotent)."""
        if self.client is not None:
            self.client.close()
        if self.grpc_client is not None:
            self.grpc_client.close()
        if self.served is not None:
            self.served.stop()
        while self._pool:
            _stop(*self._pool.popitem()[1])
        while self._homes:
            staging.remove_workspace(self._homes.pop())


def _stop(served: Served, client: HttpClient) -> None:
    client.close()
    served.stop()


def _served_as(model: Path, name: str, version: str | None) -> tuple[str, str | None]:
    """The name (and version, where routes are versioned: ``version`` not None) a server started on the staged
    ``model`` serves it under: its project file's (a run that stages the model under another name), else the
    ones given."""
    try:
        staged_name, staged_version = read_project(model)
    except ModelProblem:
        return name, version
    return staged_name, (staged_version if version is not None else None)


def write_answers(result: RunResult) -> None:
    """Write an online run's requests and answers into its workspace (``input/NAME``, ``output/NAME``), for a
    kept workspace: requests, answers and expected answers side by side. Nothing for a batch run."""
    ws = result.workspace
    for name, exchange in (result.exchanges or {}).items():
        if exchange.request is not None and not (ws.input / name).exists():
            ws.input.mkdir(parents=True, exist_ok=True)
            (ws.input / name).write_bytes(exchange.request)
        answer = exchange.answer_bytes() if exchange.body is not None or exchange.decoded is not None else None
        if answer is not None:
            ws.output.mkdir(parents=True, exist_ok=True)
            (ws.output / name).write_bytes(answer)


def _exchange(name: str, where: str, answer: Answer, request: bytes) -> Exchange:
    return Exchange(name, HTTP, where, request=request, body=answer.body if answer.status is not None else None,
                    status=answer.status, headers=answer.headers, seconds=answer.seconds, error=answer.error,
                    timed_out=answer.timed_out)


def _grpc_exchange(name: str, where: str, answer: Any, request: bytes) -> Exchange:
    """The exchange of a ModelInfer call's :class:`~conformance.transport.grpc_v2.client.GrpcAnswer`: an ``OK``
    answer decoded into the JSON document form (written as JSON into a kept workspace: :func:`write_answers`);
    one whose tensors cannot be read says why in ``malformed``; a refusal's ``body`` is its code and message as
    JSON."""
    from conformance.transport.grpc_v2 import codec

    exchange = Exchange(name, GRPC, where, request=request, code=answer.code, details=answer.details,
                        seconds=answer.seconds, error=answer.error, timed_out=answer.timed_out)
    if answer.code is None:
        return exchange
    if answer.code != "OK":
        exchange.body = json.dumps({"error": answer.details, "grpc_status": answer.code}).encode()
        return exchange
    try:
        exchange.decoded = codec.response_document(answer.response)
    except codec.Malformed as problem:
        exchange.malformed = str(problem)
    return exchange


def _output_of(served: Served | None) -> str:
    if served is None:
        return ""
    try:
        return str(served.output(20))
    except Exception:  # noqa: BLE001 - the output is an aid only
        return ""
