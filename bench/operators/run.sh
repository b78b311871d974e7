#!/usr/bin/env bash
# Operators against processes: a 3-stage chain (each stage copies the message into a new sample)
# as three C node processes, and as three C operators in one runtime node, between a C source
# on a 2 ms timer and a C sink. Prints end-to-end latency p50/p99 at 8 B, 64 KiB and 2 MiB and
# the CPU time per message of the whole run (all processes; start-up cancelled by running N and
# 2N messages); then the per-event cost of an operator (a no-op on a backlogged input) against a
# node's loop doing the same. Writes bench/operators/results.json. Not part of the tests.
# Usage: bench/operators/run.sh [MESSAGES]   (default 1000; release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
messages="${1:-1000}"
swift build -c release --product apus >/dev/null
swift build -c release --product apus-operator-runtime >/dev/null
swift build -c release --product ApusCAPI >/dev/null
bin="$(swift build -c release --show-bin-path)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
flags="-std=gnu99 -O2 -Wall -Werror $("$bin/apus" config --cflags)"
libs="$("$bin/apus" config --libs)"
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
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run([apus, "run", path, "--no-color"], capture_output=True, text=True, cwd=work)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"run failed:\n{result.stdout}\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result.stdout, cpu

rows = []
for label, size in (("8 B", 8), ("64 KiB", 65536), ("2 MiB", 2 << 20)):
    row = {"size": label}
    for kind in ("nodes", "operators"):
        out, cpu_n = run(chain(kind, size, messages))
        out2, cpu_2n = run(chain(kind, size, 2 * messages))
        match = re.search(r"latency p50 ([\d.]+) us p99 ([\d.]+) us over (\d+)", out2)
        if match is None or int(match.group(3)) != 2 * messages:
            sys.exit(f"the sink did not get every message:\n{out2}")
        row[kind] = {"p50_us": float(match.group(1)), "p99_us": float(match.group(2)),
                     "cpu_us_per_message": (cpu_2n - cpu_n) / messages * 1e6}
    rows.append(row)

def dispatch(text):
    out, _ = run(text)
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

print(f"3-stage chain, {2 * messages} messages every 2 ms ({platform.machine()}, {datetime.date.today()})")
print(f"{'size':>7} | {'nodes p50':>9} {'p99':>8} {'CPU/msg':>9} | {'operators p50':>13} {'p99':>8} {'CPU/msg':>9} | CPU nodes/operators")
for row in rows:
    n, o = row["nodes"], row["operators"]
    print(f"{row['size']:>7} | {n['p50_us']:>7.1f}us {n['p99_us']:>6.1f}us {n['cpu_us_per_message']:>7.1f}us | "
          f"{o['p50_us']:>11.1f}us {o['p99_us']:>6.1f}us {o['cpu_us_per_message']:>7.1f}us | {n['cpu_us_per_message'] / o['cpu_us_per_message']:.1f}x")
print(f"per event, backlogged input, 8 B: operator runtime to on_event and back {operator_ns:.0f} ns; "
      f"a node's apus_node_next + apus_event_free loop {node_ns:.0f} ns; dispatch overhead {operator_ns - node_ns:.0f} ns")
json.dump({"messages": 2 * messages, "rows": rows, "operator_event_ns": operator_ns, "node_event_ns": node_ns},
          open("bench/operators/results.json", "w"), indent=1)
PY
