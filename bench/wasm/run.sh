#!/usr/bin/env bash
# Wasm operators against C operators, in the operator runtime: the same byte-wise transform
# (transform.h) as a C operator (Apus's ABI, reading its input in place and writing a new
# sample) and as a Wasm operator (WasmKit: the input copied into its memory, transformed there,
# copied out by apus_send). A source bursts messages on a backpressure edge, so the operator
# is never idle, and the sink times the gap between arrivals. Prints the per-event cost with
# trivial work (8 B passed on), MB/s at 64 KiB and 2 MiB, and what loading a Wasm module adds to
# a run's start. Not part of the tests.
# Usage: bench/wasm/run.sh   (release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product apus >/dev/null
swift build -c release --product apus-operator-runtime >/dev/null
swift build -c release --product ApusCAPI >/dev/null
bin="$(swift build -c release --show-bin-path)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
flags="-std=gnu99 -O2 -Wall -Werror $("$bin/apus" config --cflags)"
libs="$("$bin/apus" config --libs)"
cc $flags -o "$work/source" bench/operators/source.c $libs -Ibench/operators
cc $flags -o "$work/sink" bench/wasm/sink.c $libs
cc $flags -shared -fPIC -o "$work/libcop.so" bench/wasm/transform_operator.c
cc $flags -shared -fPIC -DTRIVIAL -o "$work/libctrivial.so" bench/wasm/transform_operator.c
"$bin/apus" wasm-cc -Ibench/wasm -o "$work/wop.wasm" bench/wasm/transform_guest.c
"$bin/apus" wasm-cc -Ibench/wasm -DTRIVIAL -o "$work/wtrivial.wasm" bench/wasm/transform_guest.c

exec python3 - "$bin/apus" "$work" <<'PY'
import re, subprocess, sys
apus, work = sys.argv[1], sys.argv[2]

def measure(kind, code, size, count):
    key = "shared-library" if kind == "c" else "wasm"
    text = f"""nodes:
  - id: source
    path: {work}/source
    env: {{ BENCH_SIZE: {size}, BENCH_COUNT: {count}, BENCH_BURST: 1 }}
    inputs: {{ tick: apus/timer/millis/2 }}
    outputs: [out]
  - id: runtime
    operator:
      id: op
      {key}: {work}/{code}
      inputs: {{ in: {{ source: source/out, queue_policy: backpressure, queue_size: 256 }} }}
      outputs: [out]
  - id: sink
    path: {work}/sink
    inputs: {{ in: {{ source: runtime/out, queue_policy: backpressure, queue_size: 256 }} }}
"""
    open(f"{work}/dataflow.yml", "w").write(text)
    result = subprocess.run([apus, "run", f"{work}/dataflow.yml", "--no-color"], capture_output=True, text=True)
    match = re.search(r"per message ([\d.]+) us over (\d+)", result.stdout)
    if result.returncode != 0 or match is None or int(match.group(2)) != count:
        sys.exit(f"run failed:\n{result.stdout}\n{result.stderr}")
    return float(match.group(1))

def best(*args):
    return min(measure(*args) for _ in range(3))

def startup(kind, code):
    """Median wall time of a run that sends one message through the operator: start-up and end."""
    import statistics, time
    times = []
    for _ in range(7):
        start = time.monotonic()
        measure(kind, code, 8, 2)
        times.append(time.monotonic() - start)
    return statistics.median(times)

load_c, load_w = startup("c", "libctrivial.so"), startup("wasm", "wtrivial.wasm")
print(f"a run of two messages, start to end (median of 7): with the C operator {load_c * 1000:.0f} ms, "
      f"with the Wasm operator {load_w * 1000:.0f} ms: loading, checking and instantiating the module adds {(load_w - load_c) * 1000:.0f} ms")
c8, w8 = best("c", "libctrivial.so", 8, 20000), best("wasm", "wtrivial.wasm", 8, 20000)
print(f"per event, trivial work (8 B passed on): C operator {c8:.2f} us, Wasm operator {w8:.2f} us, Wasm overhead {w8 - c8:.2f} us")
for label, size, count in (("64 KiB", 65536, 2000), ("2 MiB", 2 << 20, 100)):
    c, w = best("c", "libcop.so", size, count), best("wasm", "wop.wasm", size, count)
    print(f"{label}: C operator {size / c:.0f} MB/s ({c:.1f} us/msg), Wasm operator {size / w:.0f} MB/s ({w:.1f} us/msg), C/Wasm {w / c:.1f}x")
PY
