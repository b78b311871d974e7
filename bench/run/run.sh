#!/bin/sh
# Wall time of `apus run` on a two-node Swift dataflow that sends one message and exits:
# spawn, connect, start barrier, one message, INPUT_CLOSED, STOP, exit. Median of N runs.
#   bench/run/run.sh [debug|release] [runs]      (default: release, 10)
set -eu
cd "$(dirname "$0")/../.."
config=${1:-release}
runs=${2:-10}
swift build -c "$config" --product apus >/dev/null
swift build -c "$config" --product sender >/dev/null
swift build -c "$config" --product receiver >/dev/null
bin=$(swift build -c "$config" --show-bin-path)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/one-message.yml" <<YAML
nodes:
  - id: sender
    path: $bin/sender
    args: --count 1
    inputs:
      tick: apus/timer/millis/1
    outputs:
      - count
  - id: receiver
    path: $bin/receiver
    inputs:
      count: sender/count
YAML
"$bin/apus" run "$work/one-message.yml" --no-build --no-color >/dev/null 2>&1   # warm the page cache
times=""
for _ in $(seq "$runs"); do
    start=$(date +%s%N)
    "$bin/apus" run "$work/one-message.yml" --no-build --no-color >/dev/null 2>&1
    end=$(date +%s%N)
    times="$times $(( (end - start) / 1000 ))"
done
python3 - "$config" $times <<'PY'
import statistics, sys
config, values = sys.argv[1], [int(v) / 1e6 for v in sys.argv[2:]]
print(f"apus run, two Swift nodes, one message ({config}, {len(values)} runs): "
      f"median {statistics.median(values):.3f} s, min {min(values):.3f} s, max {max(values):.3f} s")
PY
