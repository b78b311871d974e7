"""Ping-pong latency, written against dora-rs's Python API only, so the very same file runs under
dora-rs and under Apus. Sends a message of each size in $SIZES (bytes, comma-separated) to `pong`,
waits for it to come back, and prints one JSON line per size: RTT/2 percentiles in microseconds.

$ROUNDS round trips per size (default 200) after $WARMUP (default 20), each size capped at
$BUDGET seconds (default 5) but never fewer than 10 rounds."""
import json
import os
import sys
import time

import numpy as np
import pyarrow as pa
from dora import Node

SIZES = [int(s) for s in os.environ.get("SIZES", "8,4096,65536").split(",")]
ROUNDS = int(os.environ.get("ROUNDS", "200"))
WARMUP = int(os.environ.get("WARMUP", "20"))
BUDGET = float(os.environ.get("BUDGET", "5"))


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def round_trip(node, payload, size):
    start = time.perf_counter_ns()
    node.send_output("ping", payload)
    while True:
        event = node.next()
        if event is None:
            sys.exit("ping: the event stream ended before the reply came")
        if event["type"] == "INPUT" and event["id"] == "pong":
            elapsed = time.perf_counter_ns() - start
            if len(event["value"]) != size:
                sys.exit(f"ping: sent {size} bytes, got {len(event['value'])} back")
            return elapsed


node = Node()
for size in SIZES:
    payload = pa.array(np.zeros(size, dtype=np.uint8))
    for _ in range(WARMUP):
        round_trip(node, payload, size)
    halves = []
    deadline = time.monotonic() + BUDGET
    while len(halves) < ROUNDS and (len(halves) < 10 or time.monotonic() < deadline):
        halves.append(round_trip(node, payload, size) / 2000)
    print(json.dumps({"size": size, "rounds": len(halves), "p50_us": percentile(halves, 0.5),
                      "p90_us": percentile(halves, 0.9), "p99_us": percentile(halves, 0.99)}), flush=True)
