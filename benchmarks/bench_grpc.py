#!/usr/bin/env python3
"""Requests/s of the kit's gRPC path against a bare stub loop, on the reference server's gRPC endpoint.

    python benchmarks/bench_grpc.py [--requests 1000] [--rounds 9]

Starts predictor/server.py with --grpc-port 0 on the kit's model, then, each round, one after the other (so that a
change in the machine's load touches both alike): a bare loop (one channel, the generated stub, the messages of
the same requests built beforehand: no kit involved), and the kit's own path (OnlineRunner over gRPC: each staged
request parsed, encoded, checked for faithfulness, sent through GrpcClient, its answer decoded into an Exchange).
Both send one request at a time on one channel, the same 50 small requests in turn (as benchmarks/bench_online.py
does over REST). Prints each round's figures, then the median ratio over the rounds, the load average and the
median CPU time this process spent a request in each loop (steadier than wall time on a shared machine). Goal
(issue 17): the checker at least 90% of a bare stub loop; exit status 1 when the median misses it.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.v2.strictjson import dumps  # noqa: E402

#: The kit's small good requests, as the suite sends them (the multiplier's input is ``a``).
BODIES = [dumps({"id": f"r{i}", "inputs": [{"name": "a", "shape": [2], "datatype": "INT32", "data": [i, -i]}]})
          for i in range(50)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
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
        line = server.stderr.readline()
        match = re.search(r"gRPC on 127\.0\.0\.1:(\d+)", line)
        if not match:
            sys.exit(f"the reference server did not start with gRPC: {line}")
        target = "127.0.0.1:" + match.group(1)
        messages = [codec.request_message(body, "multiplier") for body in BODIES]
        stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(target))
        runner = OnlineRunner(None, "multiplier", None, grpc=target, timeout=600)
        root = Path("/nonexistent")
        ws = Workspace(root, root / "input", root / "output", None)
        requests = [(f"r{i:06d}.json", BODIES[i % len(BODIES)]) for i in range(args.requests)]

        def bare_loop() -> float:
            started, cpu = time.perf_counter(), time.process_time()
            for i in range(args.requests):
                stub.ModelInfer(messages[i % len(messages)], timeout=10)
            bare_cpu.append((time.process_time() - cpu) / args.requests)
            return args.requests / (time.perf_counter() - started)

        def kit_loop(batch: list[tuple[str, bytes]]) -> float:
            started, cpu = time.perf_counter(), time.process_time()
            result = runner.run(ws, 600, requests=batch)
            elapsed = time.perf_counter() - started
            kit_cpu.append((time.process_time() - cpu) / len(batch))
            exchanges = list((result.exchanges or {}).values())
            if len(exchanges) != len(batch) or any(exchange.code != "OK" for exchange in exchanges):
                sys.exit("kit loop: not every request was sent and answered OK")
            return len(batch) / elapsed

        bare_cpu: list[float] = []
        kit_cpu: list[float] = []
        for message in messages:  # warm-up: the channels, the server's first-request paths
            stub.ModelInfer(message, timeout=10)
        kit_loop(requests[:50])
        ratios, bare, kit = [], [], []
        for _ in range(args.rounds):
            bare.append(bare_loop())
            kit.append(kit_loop(requests))
            ratios.append(kit[-1] / bare[-1])
            print(f"round: bare stub loop {bare[-1]:.0f}/s, kit {kit[-1]:.0f}/s, ratio {ratios[-1]:.2f}")
        runner.close()
    finally:
        server.terminate()
        server.wait()
    ratio = statistics.median(ratios)
    print(f"bare stub loop {statistics.median(bare):,.0f} requests/s; kit {statistics.median(kit):,.0f} requests/s; "
          f"kit/bare {ratio:.2f} (median of {args.rounds} rounds of {args.requests} requests; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())})")
    print(f"this process's CPU a request (the server's not counted): bare loop {statistics.median(bare_cpu) * 1e6:.0f} us, "
          f"kit {statistics.median(kit_cpu) * 1e6:.0f} us (medians)")
    print(f"goal: kit >= 90% of the bare stub loop: {'met' if ratio >= 0.9 else 'MISSED'}")
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
