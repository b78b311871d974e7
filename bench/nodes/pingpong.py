"""Ping-pong over Apus's own Python API, zero-copy both ways, for bench/bench.py: each side
reserves a sample of the size in shared memory (`node.allocate`) and writes a sequence number
into it, copying no payload, as pingpong.c does in C.
    pingpong.py ping   (env SIZES, ROUNDS, WARMUP, BUDGET as bench/pingpong/ping.py)
    pingpong.py pong"""
import json
import os
import sys
import time

import numpy as np
from apus import Node


def send_sized(node, output, size, sequence):
    with node.allocate(output, size) as array:
        if size >= 8:
            array[:8].view(np.uint64)[0] = sequence


def ping(node):
    sizes = [int(s) for s in os.environ.get("SIZES", "8,4096,65536").split(",")]
    rounds, warmup = int(os.environ.get("ROUNDS", "200")), int(os.environ.get("WARMUP", "20"))
    budget = float(os.environ.get("BUDGET", "5"))
    sequence = 0

    def round_trip(size):
        nonlocal sequence
        start = time.perf_counter_ns()
        send_sized(node, "ping", size, sequence)
        sequence += 1
        while (event := node.next()) is not None:
            if event.type == "INPUT":
                length = event.value.nbytes
                elapsed = time.perf_counter_ns() - start
                if length != size:
                    sys.exit(f"ping: sent {size} bytes, got {length} back")
                return elapsed / 2000
        sys.exit("ping: the event stream ended before the reply")

    for size in sizes:
        for _ in range(warmup):
            round_trip(size)
        halves, deadline = [], time.monotonic() + budget
        while len(halves) < rounds and (len(halves) < 10 or time.monotonic() < deadline):
            halves.append(round_trip(size))
        halves.sort()
        at = lambda fraction: halves[min(len(halves) - 1, int(fraction * len(halves)))]
        print(json.dumps({"size": size, "rounds": len(halves), "p50_us": at(0.5), "p90_us": at(0.9), "p99_us": at(0.99)}),
              flush=True)


def pong(node):
    for event in node:
        if event.type == "INPUT":
            value = event.value
            size = value.nbytes
            sequence = int(value[:8].view(np.uint64)[0]) if size >= 8 else 0
            del value
            event.release()
            send_sized(node, "pong", size, sequence)


node = Node()
pong(node) if sys.argv[1:] == ["pong"] else ping(node)
