#!/usr/bin/env bash
# Times `apus check` on a generated chain of N nodes (default 1000), median of 10 runs.
# Usage: bench/check/run.sh [NODES] [debug|release]
set -euo pipefail
cd "$(dirname "$0")/../.."
nodes="${1:-1000}"
config="${2:-release}"
swift build -c "$config" --product apus >/dev/null
apus=".build/$config/apus"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$nodes" > "$work/large.yml" <<'PY'
import sys
n = int(sys.argv[1])
print("nodes:")
for i in range(n):
    print(f"  - id: node-{i}\n    path: /bin/true\n    outputs: [out]\n    inputs:")
    print("      tick: apus/timer/millis/10" if i == 0 else f"      in: node-{i-1}/out")
PY

python3 - "$apus" "$work/large.yml" "$nodes" "$config" <<'PY'
import statistics, subprocess, sys, time
apus, path, nodes, config = sys.argv[1:]
times = []
for _ in range(10):
    start = time.perf_counter()
    subprocess.run([apus, "check", path], check=True, stdout=subprocess.DEVNULL)
    times.append(time.perf_counter() - start)
print(f"apus check, {nodes} nodes ({config}): median {statistics.median(times) * 1000:.1f} ms, "
      f"min {min(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms over 10 runs")
PY
