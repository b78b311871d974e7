#!/usr/bin/env bash
# The shapes of a hop across machines in plain C (hop.c), against ddsperf, over one veth link
# between two network namespaces, as bench/machines/run.sh sets up. Prints RTT/2 p50 and p90 of
# an 8 B ping-pong per shape, REPEAT times, alternating.
# Needs root, iproute2, cyclonedds-dev (idlc, headers) and cyclonedds-tools (ddsperf).
# Each machine has a vCPU of its own unless PIN=0 (bench/machines/veth.sh).
# Usage: [PIN=0] bench/machines/shapes/run.sh [SHAPE...]   (default: every shape; not part of the tests)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
tag="sh$$"
. "$here/../veth.sh"
cleanup() {
    pkill -f "$work/hop" 2>/dev/null
    remove_machines
    rm -rf "$work" /dev/shm/apus_shapes_*
}
trap cleanup EXIT
(cd "$work" && idlc "$here/shapes.idl" 2>/dev/null && cc -O2 -o hop "$here/hop.c" shapes.c -I. -lddsc) || exit 1
make_machines 215 || exit 1
shapes="${*:-direct standin shadow standin_ws bout bridges}"
for round in $(seq "${REPEAT:-2}"); do
    B ddsperf -D 11 -T OU pong >/dev/null 2>&1 &
    sleep 1
    A ddsperf -D 8 -T OU ping 2>&1 | grep " 50% " | tail -1 | sed -E 's/.* 50% ([0-9.]+)us.* 90% ([0-9.]+)us.*/ddsperf RTT\/2 p50 \1 us p90 \2 us/'
    wait
    for shape in $shapes; do
        B setsid "$work/hop" pong "$shape" &
        sleep 1
        A "$work/hop" ping "$shape" 8 5000
        pkill -f "$work/hop pong"
        wait 2>/dev/null
        rm -f /dev/shm/apus_shapes_*
    done
done
