#!/usr/bin/env bash
# Across machines: Apus's DDS edges against Cyclone's own ddsperf over the same veth link, in one
# run. Two network namespaces joined by a veth pair stand for two machines. Measures RTT/2 p50 of a
# ping-pong at 8 B and 64 KiB (Apus: the C nodes of bench/nodes/pingpong.c, ping on A, pong on B),
# and 1 MiB throughput (Apus: an unpaced C sender on A, backpressure, a C receiver on B).
# Needs root, iproute2 and cyclonedds-tools (ddsperf). Usage: bench/machines/run.sh (not a test)
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product apus >/dev/null
swift build -c release --product ApusCAPI >/dev/null
apus="$(swift build -c release --show-bin-path)/apus"
work="$(mktemp -d)"
tag="b$$"
cleanup() {
    pkill -f "apus daemon --machine B" 2>/dev/null || true
    ip netns del "$tag-A" 2>/dev/null || true
    ip netns del "$tag-B" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$tag-A"
ip netns add "$tag-B"
ip link add "${tag}a" type veth peer name "${tag}b"
ip link set "${tag}a" netns "$tag-A"
ip link set "${tag}b" netns "$tag-B"
ip -n "$tag-A" addr add 10.214.0.1/24 dev "${tag}a"
ip -n "$tag-B" addr add 10.214.0.2/24 dev "${tag}b"
for side in A B; do
    ip -n "$tag-$side" link set lo up
done
ip -n "$tag-A" link set "${tag}a" up
ip -n "$tag-B" link set "${tag}b" up

cc -O2 -std=c99 -D_POSIX_C_SOURCE=200809L -o "$work/pingpong" bench/nodes/pingpong.c $("$apus" config --cflags --libs)

echo "== ddsperf ping-pong (reliable, keep-last 1), 10 s per size"
for size in 8 65536; do
    ip netns exec "$tag-B" ddsperf -D 14 pong >/dev/null 2>&1 &
    sleep 1
    ip netns exec "$tag-A" ddsperf -D 10 ping size "$size" 2>&1 | grep -E "mean|min" | tail -1 | sed "s/^/size $size: /"
    wait
done
echo "== ddsperf 1 MiB throughput (reliable, keep-all), 10 s"
ip netns exec "$tag-B" ddsperf -D 12 -k all sub >"$work/sub.txt" 2>&1 &
sleep 1
ip netns exec "$tag-A" ddsperf -D 10 -k all pub size 1048576 >/dev/null 2>&1 || true
wait
grep -E "rate|Mb/s|MB/s" "$work/sub.txt" | tail -3

mkdir -p "$work/xdg-A" "$work/xdg-B"
XDG_RUNTIME_DIR="$work/xdg-B" ip netns exec "$tag-B" "$apus" daemon --machine B >"$work/daemon.log" 2>&1 &
sleep 1
cat >"$work/pingpong.yml" <<YAML
nodes:
  - id: ping
    path: $work/pingpong
    args: ping
    inputs: {pong: pong/pong}
    outputs: [ping]
  - id: pong
    deploy: {machine: B}
    path: $work/pingpong
    args: pong
    inputs: {ping: ping/ping}
    outputs: [pong]
YAML
echo "== Apus ping-pong across machines (RTT/2, µs)"
SIZES=8,65536 ROUNDS=2000 WARMUP=200 BUDGET=30 XDG_RUNTIME_DIR="$work/xdg-A" ip netns exec "$tag-A" \
    "$apus" run "$work/pingpong.yml" --no-color 2>&1 | grep -E "p50" || cat "$work/daemon.log"
