#!/usr/bin/env bash
# ApusTransport between two processes against a raw C futex ping-pong, measured in one run,
# alternating the two at each size, and at 8 B against the same hand-off protocol written in plain
# C (protocol-pingpong.c). Writes bench/transport/results.json and prints a table.
# Usage: bench/transport/run.sh [ITERATIONS]   (not part of the tests)
set -euo pipefail
cd "$(dirname "$0")/../.."
iterations="${1:-5000}"
swift build -c release --product transport-bench >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/futex-pingpong" bench/transport/futex-pingpong.c
cc -O2 -o "$work/protocol-pingpong" bench/transport/protocol-pingpong.c

python3 - "$iterations" "$work/futex-pingpong" .build/release/transport-bench "$work/protocol-pingpong" <<'PY'
import json, platform, statistics, subprocess, sys, datetime
iterations, reference, bench, protocol = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
sizes = [("8 B", 8), ("4 KiB", 4096), ("64 KiB", 65536), ("2 MiB", 2 << 20), ("40 MiB", 40 << 20)]

def run(command):
    return [float(x) for x in subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()]

pick = lambda runs: sorted(runs, key=lambda r: r[0])[1]

# The design's hand-off protocol written in plain C, at 8 B: the floor of the protocol itself,
# between the one-line futex reference and Apus.
floor = {"c": [], "protocol": [], "protocol_clock_gettime": [], "protocol_no_clock": [], "apus": []}
for _ in range(3):
    floor["c"].append(run([reference, "8", str(iterations)]))
    floor["protocol"].append(run([protocol, str(iterations)]))
    floor["protocol_clock_gettime"].append(run([protocol, str(iterations), "--clock-gettime"]))
    floor["protocol_no_clock"].append(run([protocol, str(iterations), "--no-clock"]))
    floor["apus"].append(run([bench, "pingpong", "8", str(iterations)]))
floor = {name: pick(runs)[0] for name, runs in floor.items()}

rows = []
for label, size in sizes:
    count = iterations if size < (1 << 20) else max(200, iterations // 10)
    c, apus = [], []
    for _ in range(3):  # alternate so drift hits both alike; keep the median round
        c.append(run([reference, str(size), str(count)]))
        apus.append(run([bench, "pingpong", str(size), str(count)]))
    (c50, c99), (a50, a99) = pick(c), pick(apus)
    rows.append({"size": label, "bytes": size, "apus_p50_ns": a50, "apus_p99_ns": a99, "c_p50_ns": c50, "c_p99_ns": c99})

throughput = []
for label, size, count in [("8 B", 8, 2_000_000), ("2 MiB", 2 << 20, 20_000)]:
    rate, megabytes, received, sent = run([bench, "throughput", str(size), str(count)])
    throughput.append({"size": label, "messages_per_s": rate, "megabytes_per_s": megabytes, "received": received, "sent": sent})

# The software cost of a hand-off with no cross-CPU traffic: one thread publishing to itself.
loopback = statistics.median(run([bench, "loopback", "2000000"])[0] for _ in range(3))
loopback_c = statistics.median(run([protocol, "2000000", "--loopback"])[0] for _ in range(3))

result = {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} CPUs",
          "pingpong_rtt_half": rows,
          "protocol_floor_8b_p50_ns": floor, "throughput": throughput, "loopback_ns_per_handoff": round(loopback, 1), "protocol_loopback_ns_per_handoff": round(loopback_c, 1)}
json.dump(result, open("bench/transport/results.json", "w"), indent=2)

print(f"RTT/2, {iterations} round trips per size ({result['machine']}, {result['date']})")
print(f"{'size':>8} {'Apus p50':>10} {'Apus p99':>10} {'C p50':>10} {'C p99':>10} {'Apus/C p50':>11}")
for r in rows:
    print(f"{r['size']:>8} {r['apus_p50_ns']/1000:>8.3f}us {r['apus_p99_ns']/1000:>8.3f}us {r['c_p50_ns']/1000:>8.3f}us {r['c_p99_ns']/1000:>8.3f}us {r['apus_p50_ns']/r['c_p50_ns']:>10.2f}x")
print(f"8 B p50, measured side by side: C reference {floor['c']/1000:.3f}us, the same protocol in plain C "
      f"{floor['protocol']/1000:.3f}us (stamped by clock_gettime: {floor['protocol_clock_gettime']/1000:.3f}us, "
      f"not stamped: {floor['protocol_no_clock']/1000:.3f}us), Apus {floor['apus']/1000:.3f}us")
print(f"  protocol / C reference: {floor['protocol']/floor['c']:.2f}x; Apus / protocol: {floor['apus']/floor['protocol']:.2f}x")
flat = rows[-1]["apus_p50_ns"] / rows[0]["apus_p50_ns"]
print(f"Apus p50 at 40 MiB / at 8 B: {flat:.2f}x")
print("Throughput, unpaced sender, queue_size 256, backpressure (payload allocated in place, not written):")
for t in throughput:
    print(f"{t['size']:>8} {t['messages_per_s']:>12,.0f} msg/s {t['received']:.0f}/{t['sent']:.0f} received, 0 dropped")
print(f"One thread publishing 8 B to itself (publish + receive + release, no cross-CPU traffic): {loopback:.0f} ns per hand-off, "
      f"the C protocol {loopback_c:.0f} ns")
PY
