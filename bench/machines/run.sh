#!/usr/bin/env bash
# Across machines: Apus's DDS edges against Cyclone's own ddsperf over the same veth link, in one
# run. Two network namespaces joined by a veth pair stand for two machines. Measures RTT/2 p50 of
# a ping-pong at the smallest size and at 64 KiB (Apus: the C nodes of bench/nodes/pingpong.c, ping
# on A, pong on B, backpressure edges; ddsperf: its ping/pong, reliable, which reports round
# trips), and 1 MiB throughput (Apus: bench/throughput's unpaced sender on A, backpressure, the
# receiver on B; ddsperf: pub/sub, reliable keep-all).
# Needs root, iproute2, cyclonedds-tools (ddsperf) and bench/.venv (python3 bench/bench.py makes it).
# Each machine has a vCPU of its own unless PIN=0 (bench/machines/veth.sh).
# ROUNDS sets the round trips of each Apus ping-pong (default 2,000; a tenth more go to warm-up);
# ddsperf reports its last second, about 16,000 round trips at 8 B.
# Usage: [PIN=0] [ROUNDS=N] bench/machines/run.sh   (not part of the tests)
set -uo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product apus >/dev/null && swift build -c release --product ApusCAPI >/dev/null || exit 1
apus="$(swift build -c release --show-bin-path)/apus"
python="${APUS_PYTHON:-$PWD/bench/.venv/bin/python}"
work="$(mktemp -d)"
tag="bm$$"
. bench/machines/veth.sh
cleanup() {
    pkill -f "apus daemon --machine B" 2>/dev/null
    remove_machines
    rm -rf "$work"
}
trap cleanup EXIT
make_machines 214 || exit 1

echo "== ddsperf ping-pong, RTT/2 (ddsperf halves each round trip itself), the last second of 8"
for topic in "-T OU" "size 64k"; do
    set -- $topic
    if [ "$1" = "-T" ]; then B ddsperf -D 11 -T OU pong >/dev/null 2>&1 & sleep 1; A ddsperf -D 8 -T OU ping 2>&1 | grep " 50% " | tail -1
    else B ddsperf -D 11 pong >/dev/null 2>&1 & sleep 1; A ddsperf -D 8 ping size 64k 2>&1 | grep " 50% " | tail -1; fi
    wait
done
echo "== ddsperf 1 MiB, reliable keep-all: samples/s and Mb/s"
B ddsperf -D 10 -k all sub >"$work/sub.txt" 2>&1 &
sleep 1
A ddsperf -D 8 -k all pub size 1M >/dev/null 2>&1
wait
grep "size 1048576" "$work/sub.txt" | sed -n '3,6p'

cc -O2 -std=c99 -D_POSIX_C_SOURCE=200809L -o "$work/pingpong" bench/nodes/pingpong.c $("$apus" config --cflags --libs)
mkdir -p "$work/xdg-A" "$work/xdg-B"
# B's part runs its Python nodes with B's daemon's interpreter.
APUS_PYTHON="$python" XDG_RUNTIME_DIR="$work/xdg-B" B "$apus" daemon --machine B >"$work/daemon.log" 2>&1 &
sleep 1
cat >"$work/pingpong.yml" <<YAML
nodes:
  - id: ping
    path: $work/pingpong
    args: ping
    inputs: {pong: {source: pong/pong, queue_policy: backpressure}}
    outputs: [ping]
  - id: pong
    deploy: {machine: B}
    path: $work/pingpong
    args: pong
    inputs: {ping: {source: ping/ping, queue_policy: backpressure}}
    outputs: [pong]
YAML
echo "== Apus ping-pong across machines, RTT/2 (µs)"
rounds="${ROUNDS:-2000}"
SIZES=8,65536 ROUNDS="$rounds" WARMUP=$((rounds / 10)) BUDGET=30 XDG_RUNTIME_DIR="$work/xdg-A" A "$apus" run "$work/pingpong.yml" --no-color 2>&1 | grep p50
cat >"$work/throughput.yml" <<YAML
nodes:
  - id: sender
    path: $PWD/bench/throughput/sender.py
    outputs: [data]
  - id: receiver
    deploy: {machine: B}
    path: $PWD/bench/throughput/receiver.py
    inputs: {data: {source: sender/data, queue_policy: backpressure}}
YAML
echo "== Apus 1 MiB across machines, backpressure"
SIZE=1048576 COUNT=1000 APUS_PYTHON="$python" XDG_RUNTIME_DIR="$work/xdg-A" A "$apus" run "$work/throughput.yml" --no-color 2>&1 \
    | "$python" -c '
import json, sys
rows = [json.loads(line.split("] ", 1)[1]) for line in sys.stdin if "] {" in line]
sent = next(r for r in rows if "sent" in r)
got = next(r for r in rows if "received" in r)
seconds = got["last"] - sent["start"]
count = got["received"]
print(count, "of", sent["sent"], round(count / seconds), "msg/s", round(count * 1.048576 / seconds), "MB/s")'
