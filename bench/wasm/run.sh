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
source bench/operators/prepare.sh
cc $flags -o "$work/source" bench/operators/source.c $libs -Ibench/operators
cc $flags -o "$work/sink" bench/wasm/sink.c $libs
cc $flags -shared -fPIC -o "$work/libcop.so" bench/wasm/transform_operator.c
cc $flags -shared -fPIC -DTRIVIAL -o "$work/libctrivial.so" bench/wasm/transform_operator.c
"$bin/apus" wasm-cc -Ibench/wasm -o "$work/wop.wasm" bench/wasm/transform_guest.c
"$bin/apus" wasm-cc -Ibench/wasm -DTRIVIAL -o "$work/wtrivial.wasm" bench/wasm/transform_guest.c

exec python3 - "$bin/apus" "$work" <<'PY'
import sys
sys.path.insert(0, "bench/operators")
from backlog import best, startup
apus, work = sys.argv[1], sys.argv[2]

def kind(code):
    return f"{'wasm' if code.endswith('.wasm') else 'shared-library'}: {work}/{code}"

load_c, load_w = startup(apus, work, kind("libctrivial.so"), runs=7), startup(apus, work, kind("wtrivial.wasm"), runs=7)
print(f"a run of two messages, start to end (median of 7): with the C operator {load_c * 1000:.0f} ms, "
      f"with the Wasm operator {load_w * 1000:.0f} ms: loading, checking and instantiating the module adds {(load_w - load_c) * 1000:.0f} ms")
c8, w8 = best(apus, work, kind("libctrivial.so"), 8, 20000), best(apus, work, kind("wtrivial.wasm"), 8, 20000)
print(f"per event, trivial work (8 B passed on): C operator {c8:.2f} us, Wasm operator {w8:.2f} us, Wasm overhead {w8 - c8:.2f} us")
for label, size, count in (("64 KiB", 65536, 2000), ("2 MiB", 2 << 20, 100)):
    c, w = best(apus, work, kind("libcop.so"), size, count), best(apus, work, kind("wop.wasm"), size, count)
    print(f"{label}: C operator {size / c:.0f} MB/s ({c:.1f} us/msg), Wasm operator {size / w:.0f} MB/s ({w:.1f} us/msg), C/Wasm {w / c:.1f}x")
PY
