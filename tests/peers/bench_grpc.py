#!/usr/bin/env python3
"""Requests/s of the kit's gRPC path against a bare stub loop, on the reference server's gRPC endpoint.

    python tests/peers/bench_grpc.py [--requests 2000] [--rounds 3]

Starts predictor/server.py with --grpc-port 0 on the kit's model, then, each round: a bare loop (one channel, the
generated stub, the same prebuilt ModelInferRequest each time: no kit involved), and the kit's own path
(OnlineRunner over gRPC: each staged request parsed, encoded, checked for faithfulness, sent through GrpcClient,
its answer decoded into an Exchange). Prints one line a round: both figures and their ratio (issue 17: the
checker at least 90% of a bare stub loop). Both send one request at a time on one channel.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUEST = {"id": "r1", "inputs": [{"name": "a", "shape": [2], "datatype": "INT32", "data": [1, 2]}]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import grpc

    from conformance.paths import kit_model
    from conformance.run.online import OnlineRunner
    from conformance.run.workspace import Workspace
    from conformance.transport.grpc_v2 import codec
    from conformance.transport.grpc_v2 import open_inference_pb2_grpc as pb_grpc

    server = subprocess.Popen([sys.executable, str(ROOT / "predictor" / "server.py"), "--port", "0", "--grpc-port", "0",
                               "--model", str(kit_model())], stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        target = "127.0.0.1:" + re.search(r"gRPC on 127\.0\.0\.1:(\d+)", server.stderr.readline()).group(1)  # type: ignore[union-attr]
        body = json.dumps(REQUEST).encode()
        message = codec.request_message(body, "multiplier")
        stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(target))
        runner = OnlineRunner(None, "multiplier", None, grpc=target, timeout=600)
        root = Path("/nonexistent")
        ws = Workspace(root, root / "input", root / "output", None)
        requests = [(f"r{i:06d}.json", body) for i in range(args.requests)]
        for _ in range(50):  # warm-up: the channels, the server's first-request paths
            stub.ModelInfer(message, timeout=10)
        runner.run(ws, 60, requests=requests[:50])
        for _ in range(args.rounds):
            started = time.perf_counter()
            for _ in range(args.requests):
                stub.ModelInfer(message, timeout=10)
            bare = args.requests / (time.perf_counter() - started)
            started = time.perf_counter()
            result = runner.run(ws, 600, requests=requests)
            kit = args.requests / (time.perf_counter() - started)
            ok = all(exchange.code == "OK" for exchange in (result.exchanges or {}).values())
            print(f"bare stub loop {bare:.0f}/s, kit {kit:.0f}/s, ratio {kit / bare:.2f}, all OK: {ok}")
        runner.close()
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
