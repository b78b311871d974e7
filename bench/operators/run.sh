#!/usr/bin/env bash
# Operators against processes: a 3-stage chain (each stage copies the message into a new sample)
# as three C node processes, and as three C operators in one runtime node, between a C source
# on a 2 ms timer and a C sink. Prints end-to-end latency p50/p99 at 8 B, 64 KiB and 2 MiB and
# the CPU time per message of source, stages and sink (each process measures its own after the
# first 500 messages, which make and map the pools), and of the three stages alone; then the
# per-event cost of an operator (a no-op on a backlogged input) against a
# node's loop doing the same. Writes bench/operators/results.json. Not part of the tests.
# Usage: bench/operators/run.sh [MESSAGES]   (default 3000; release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
messages="${1:-3000}"
source bench/operators/prepare.sh
for program in source sink stage_node noop_node; do
    cc $flags -o "$work/$program" "bench/operators/$program.c" $libs
done
cc $flags -shared -fPIC -o "$work/libstage.so" bench/operators/stage_operator.c
cc $flags -shared -fPIC -DNOOP -o "$work/libnoop.so" bench/operators/stage_operator.c

exec python3 - "$messages" "$bin/apus" "$work" <<'PY'
import json, platform, re, resource, subprocess, sys, datetime
messages, apus, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
backpressure = "queue_policy: backpressure, queue_size: 64"

def source(size, count, burst=False):
    return f"""  - id: source
    path: {work}/source
    env: {{ BENCH_SIZE: {size}, BENCH_COUNT: {count}{", BENCH_BURST: 1" if burst else ""} }}
    inputs: {{ tick: apus/timer/millis/2 }}
    outputs: [out]
"""

def chain(kind, size, count):
    text = "nodes:\n" + source(size, count)
    if kind == "nodes":
        previous = "source/out"
        for stage in ("s1", "s2", "s3"):
            text += f"""  - id: {stage}
    path: {work}/stage_node
    inputs: {{ in: {{ source: {previous}, {backpressure} }} }}
    outputs: [out]
"""
            previous = f"{stage}/out"
    else:
        text += "  - id: chain\n    operators:\n"
        previous = "source/out"
        for stage in ("s1", "s2", "s3"):
            text += f"""      - id: {stage}
        shared-library: {work}/libstage.so
        inputs: {{ in: {{ source: {previous}, {backpressure} }} }}
        outputs: [out]
"""
            previous = f"chain/{stage}/out"
    text += f"""  - id: sink
    path: {work}/sink
    inputs: {{ in: {{ source: {previous}, {backpressure} }} }}
"""
    return text

def run(text):
    path = f"{work}/dataflow.yml"
    open(path, "w").write(text)
    result = subprocess.run([apus, "run", path, "--no-color"], capture_output=True, text=True, cwd=work)
    if result.returncode != 0:
        sys.exit(f"run failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout

def steady(out, node):
    """CPU microseconds per message of `node`'s process in the steady state (its own report)."""
    reports = [(int(cpu), int(count)) for cpu, count in re.findall(rf"\[{node}\] steady cpu_us (\d+) over (\d+)", out)]
    cpu, count = max(reports)  # a runtime's operators all report their one process: the longest span
    return cpu / count

rows = []
for label, size in (("8 B", 8), ("64 KiB", 65536), ("2 MiB", 2 << 20)):
    row = {"size": label}
    for kind in ("nodes", "operators"):
        out = run(chain(kind, size, messages))
        match = re.search(r"latency p50 ([\d.]+) us p99 ([\d.]+) us over (\d+); the first message ([\d.]+) ms", out)
        if match is None or int(match.group(3)) != messages - 500:
            sys.exit(f"the sink did not get every message:\n{out}")
        stages = sum(steady(out, s) for s in ("s1", "s2", "s3")) if kind == "nodes" else steady(out, "chain")
        row[kind] = {"p50_us": float(match.group(1)), "p99_us": float(match.group(2)), "first_ms": float(match.group(4)),
                     "cpu_us_per_message": steady(out, "source") + stages + steady(out, "sink"),
                     "stages_cpu_us_per_message": stages}
    rows.append(row)

def dispatch(text):
    out = run(text)
    return float(re.search(r"per event ([\d.]+) ns", out).group(1))

count = 200000
operator_ns = dispatch("nodes:\n" + source(8, count, burst=True) + f"""  - id: runtime
    operators:
      - id: noop
        shared-library: {work}/libnoop.so
        inputs: {{ in: {{ source: source/out, queue_policy: backpressure, queue_size: 1024 }} }}
""")
node_ns = dispatch("nodes:\n" + source(8, count, burst=True) + f"""  - id: noop
    path: {work}/noop_node
    inputs: {{ in: {{ source: source/out, queue_policy: backpressure, queue_size: 1024 }} }}
""")

print(f"3-stage chain, {messages} messages every 2 ms, the first 500 left out ({platform.machine()}, {datetime.date.today()})")
print("CPU per message: of source, stages and sink together, and of the three stages alone")
print(f"{'size':>7} | {'nodes p50':>9} {'p99':>9} {'CPU run':>8} {'stages':>8} | {'operators p50':>13} {'p99':>9} {'CPU run':>8} {'stages':>8} | nodes/operators run, stages")
for row in rows:
    n, o = row["nodes"], row["operators"]
    print(f"{row['size']:>7} | {n['p50_us']:>7.1f}us {n['p99_us']:>7.1f}us {n['cpu_us_per_message']:>6.1f}us {n['stages_cpu_us_per_message']:>6.1f}us | "
          f"{o['p50_us']:>11.1f}us {o['p99_us']:>7.1f}us {o['cpu_us_per_message']:>6.1f}us {o['stages_cpu_us_per_message']:>6.1f}us | "
          f"{n['cpu_us_per_message'] / o['cpu_us_per_message']:.1f}x, {n['stages_cpu_us_per_message'] / o['stages_cpu_us_per_message']:.1f}x")
print("the first message, end to end: " + "; ".join(
    f"{row['size']} nodes {row['nodes']['first_ms']:.1f} ms, operators {row['operators']['first_ms']:.1f} ms" for row in rows))
print(f"per event, backlogged input, 8 B: operator runtime to on_event and back {operator_ns:.0f} ns; "
      f"a node's apus_node_next + apus_event_free loop {node_ns:.0f} ns; dispatch overhead {operator_ns - node_ns:.0f} ns")
json.dump({"messages": messages, "rows": rows, "operator_event_ns": operator_ns, "node_event_ns": node_ns},
          open("bench/operators/results.json", "w"), indent=1)
PY
