#!/usr/bin/env bash
# What an inspector costs the dataflow it looks at: a C source sends to a C sink (backpressure),
# once alone and once with `apus topic echo` (6 MiB frames at 30 Hz) or `apus topic hz`
# (8-byte messages at 100 k msg/s: 100 on each tick of a 1 ms timer) attached for the whole
# steady state. Prints the source's CPU
# time per message and the sink's latency p50/p99 (send to take, from the send time the source
# writes into each payload), each the median of REPEATS runs; and, for comparison, the same with
# a second C consumer in the dataflow instead of the inspector. Not part of the tests.
# Usage: bench/inspection/run.sh [REPEATS [echo|hz]]   (default 3, both cases; release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
repeats="${1:-3}"
source bench/operators/prepare.sh
for program in source sink; do
    cc $flags -o "$work/$program" "bench/operators/$program.c" $libs
done

exec python3 - "$repeats" "$bin/apus" "$work" "${2:-}" <<'PY'
import re, statistics, subprocess, sys, time
repeats, apus, work, only = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

def flow(size, count, period, warmup, per_tick=1):
    return f"""nodes:
  - id: source
    path: {work}/source
    env: {{ BENCH_SIZE: {size}, BENCH_COUNT: {count}, BENCH_WARMUP: {warmup}, BENCH_PER_TICK: {per_tick} }}
    inputs: {{ tick: apus/timer/{period} }}
    outputs: [out]
  - id: sink
    path: {work}/sink
    env: {{ BENCH_WARMUP: {warmup} }}
    inputs: {{ in: {{ source: source/out, queue_policy: backpressure, queue_size: 64 }} }}
"""

def run(name, text, inspector):
    path = f"{work}/{name}.yml"
    open(path, "w").write(text)
    process = subprocess.Popen([apus, "run", path, "--no-color"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watcher = None
    if inspector:
        time.sleep(1.0)  # within the warm-up: attached before the steady state is measured
        watcher = subprocess.Popen([apus, "topic", *inspector[:1], name, "source/out", *inspector[1:]],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=600)
    if watcher:
        watcher.wait(timeout=30)
    cpu = re.search(r"\[source\] steady cpu_us (\d+) over (\d+)", out)
    latency = re.search(r"\[sink\] latency p50 ([\d.]+) us p99 ([\d.]+) us", out)
    if process.returncode != 0 or not cpu or not latency:
        sys.exit(f"{name}: exit {process.returncode}\n{out}\n{err}")
    return int(cpu.group(1)) / int(cpu.group(2)), float(latency.group(1)), float(latency.group(2))

cases = [
    ("echo-6MiB-30Hz", flow(6 << 20, 360, "millis/33", 45), ["echo"]),
    ("hz-8B-100kHz", flow(8, 1_200_000, "millis/1", 200_000, per_tick=100), ["hz", "--window", "1000"]),
]
print(f"{'case':<16} {'inspector':<10} {'source CPU/msg':>15} {'sink p50':>10} {'sink p99':>10}")
for name, text, inspector in cases:
    if only and not name.startswith(only):
        continue
    # For comparison: a second consumer in the dataflow (a C node, drop_oldest like an inspector).
    second = text + f"""  - id: second
    path: {work}/sink
    env: {{ BENCH_WARMUP: 1 }}
    inputs: {{ in: {{ source: source/out, queue_size: 10 }} }}
"""
    rows = {}
    for label, flow_text, attached in (("none", text, None), ("topic " + inspector[0], text, inspector), ("2nd sink", second, None)):
        runs = [run(name, flow_text, attached) for _ in range(repeats)]
        rows[label] = tuple(statistics.median(run[i] for run in runs) for i in range(3))
        cpu, p50, p99 = rows[label]
        added = "" if label == "none" else f"  ({100 * (cpu / rows['none'][0] - 1):+.1f} %, p50 {p50 - rows['none'][1]:+.1f} us)"
        print(f"{name:<16} {label:<10} {cpu:>12.2f} us {p50:>7.1f} us {p99:>7.1f} us{added}", flush=True)
PY
