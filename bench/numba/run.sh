#!/usr/bin/env bash
# Numba, Python and C operators doing the same arithmetic (float32 samples times 0.5 into a new
# sample), in the operator runtime: a source bursts messages onto a backpressure edge, so the
# operator is never idle, and the sink times the gap between arrivals (best of three runs).
# Prints the per-event cost at 8 B, 4 KiB and 1 MiB, and what each kind adds to a run's start.
# Needs numba. Not part of the tests.
# Usage: bench/numba/run.sh   (release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/operators/prepare.sh
cc $flags -o "$work/source" bench/operators/source.c $libs -Ibench/operators
cc $flags -o "$work/sink" bench/wasm/sink.c $libs
cc $flags -shared -fPIC -o "$work/libscale.so" bench/numba/scale_operator.c
cp dataflows/numba/filters.py bench/numba/scale_operator.py "$work/"

exec python3 - "$bin/apus" "$work" <<'PY'
import sys
sys.path.insert(0, "bench/operators")
from backlog import best, startup
apus, work = sys.argv[1], sys.argv[2]
KINDS = {"c": "shared-library: libscale.so", "numba": "numba: filters.py:gain\n      params: { factor: 0.5 }",
         "python": "python: scale_operator.py"}

starts = {kind: startup(apus, work, line) for kind, line in KINDS.items()}
print("a run of two messages, start to end (median of 5): " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in starts.items()))
print(f"start-up that Numba adds over C: {(starts['numba'] - starts['c']) * 1000:.0f} ms; Python adds {(starts['python'] - starts['c']) * 1000:.0f} ms")
for label, size, count in (("8 B", 8, 20000), ("4 KiB", 4096, 20000), ("1 MiB", 1 << 20, 300)):
    cost = {kind: best(apus, work, line, size, count) for kind, line in KINDS.items()}
    print(f"{label}: per event C {cost['c']:.2f} us, Numba {cost['numba']:.2f} us, Python {cost['python']:.2f} us; "
          f"Numba/C {cost['numba'] / cost['c']:.2f}x, Python/Numba {cost['python'] / cost['numba']:.1f}x")
PY
