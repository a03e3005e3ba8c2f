#!/usr/bin/env python3
"""Requests/s a real peer answers over ONE keep-alive connection (a bare http.client loop, no kit involved).

    python tests/peers/bench_keepalive.py [--peer mlserver|kserve] [--model multiplier|iris] [--requests 2000]
                                          [--seconds 10]

Starts the peer (tests/peers/servers.py, its cached venv), sends the same small good request (the multiplier:
INT32 [2]; iris: examples/iris/fixtures/input/good-a.json) on one http.client.HTTPConnection until ``--requests``
were answered or ``--seconds`` passed, after 50 warm-up requests, and prints one line: requests, seconds,
requests/s, and whether every answer was 200. The figure is the baseline the kit's own HTTP client is compared
with (issue 16: the checker at least 90% of a bare keep-alive loop).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peers import servers, venvs  # noqa: E402

MULTIPLIER_REQUEST = {"id": "r1", "inputs": [{"name": "a", "shape": [2], "datatype": "INT32", "data": [1, 2]}]}


def loop(port: int, path: str, body: bytes, requests: int, seconds: float) -> tuple[int, float, bool]:
    """(requests answered, seconds taken, every answer 200) over one keep-alive connection."""
    connection = http.client.HTTPConnection(servers.HOST, port, timeout=10)
    headers = {"Content-Type": "application/json"}
    try:
        for _ in range(50):  # warm-up: the connection, the server's first-request paths
            connection.request("POST", path, body=body, headers=headers)
            connection.getresponse().read()
        ok, done = True, 0
        started = time.perf_counter()
        deadline = started + seconds
        while done < requests and time.perf_counter() < deadline:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            ok &= response.status == 200
            done += 1
        return done, time.perf_counter() - started, ok
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", choices=("mlserver", "kserve"), default="mlserver")
    parser.add_argument("--model", choices=servers.MODELS, default="multiplier")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    try:
        python = venvs.ensure(venvs.PEERS[args.peer])
    except venvs.PeerUnavailable as error:
        print(f"bench_keepalive: {args.peer} unavailable: {error}", file=sys.stderr)
        return 2
    if args.model == "iris":
        body, name = (servers.IRIS / "fixtures" / "input" / "good-a.json").read_bytes(), servers.IRIS_NAME
    else:
        body, name = json.dumps(MULTIPLIER_REQUEST).encode(), servers.MODEL_NAME
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        server = servers.start(args.peer, python, Path(workdir), model=args.model)
        try:
            done, elapsed, ok = loop(server.port, f"/v2/models/{name}/infer", body, args.requests, args.seconds)
        finally:
            servers.stop(server)
    print(f"{args.peer} {args.model}: {done} requests in {elapsed:.2f} s = {done / elapsed:.0f} requests/s over "
          f"one keep-alive connection ({len(body)}-byte body){'' if ok else ', NOT all 200'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
