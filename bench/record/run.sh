#!/usr/bin/env bash
# What `apus record` sustains, in release builds: a C source (bench/operators/source.c) sends to a
# C sink while the recorder (backpressure: nothing may be lost) writes every message to an MCAP
# file in a scratch folder. Cases: 640x480x3 frames at 30 Hz; 8-byte messages and 6 MiB frames as
# fast as the recorder takes them (the source waits for it). Prints, per case, the messages
# recorded against those sent, the rate and MB/s, the recorder's CPU time per message; and `dd`
# writing the same number of bytes to the same folder, for comparison. Each of the two writes right
# after a file of that size was written and deleted: on a virtual machine whose guest memory the
# host reclaims (virtio-balloon free page reporting), writing into page-cache pages not touched
# for a while runs at a tenth of the speed (dd here: 324 MB/s cold, 3.0 GB/s warm), and the
# recorder and dd must not be compared in different states. Not part of the tests.
# Usage: bench/record/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/operators/prepare.sh
for program in source sink; do
    cc $flags -o "$work/$program" "bench/operators/$program.c" $libs
done

exec python3 - "$bin/apus" "$work" <<'PY'
import json, os, re, subprocess, sys, time
apus, work = sys.argv[1], sys.argv[2]

def warm_up(nbytes):
    """Writes and deletes a file of `nbytes` in the scratch folder: the page cache's pages are then
    ones the host has backed (see above)."""
    subprocess.run(["dd", "if=/dev/zero", f"of={work}/warm.bin", "bs=1M", f"count={max(nbytes >> 20, 1)}"],
                   capture_output=True, check=True)
    os.unlink(f"{work}/warm.bin")


def case(name, size, count, timer, burst):
    go = f"{work}/{name}.go"
    flow = f"{work}/{name}.yml"
    open(flow, "w").write(f"""nodes:
  - id: source
    path: {work}/source
    env: {{ BENCH_SIZE: {size}, BENCH_COUNT: {count}, BENCH_GO: {go}{", BENCH_BURST: 1" if burst else ""} }}
    inputs: {{ tick: apus/timer/{timer} }}
    outputs: [out]
  - id: sink
    path: {work}/sink
    inputs: {{ in: {{ source: source/out, queue_policy: backpressure, queue_size: 64 }} }}
""")
    run = subprocess.Popen([apus, "run", flow, "--no-color"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    output = f"{work}/{name}.mcap"
    recorder = subprocess.Popen(["/usr/bin/time", "-f", "cpu %U %S", apus, "record", name, "-o", output],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while True:  # the recorder is wired once apus top lists it
        shown = subprocess.run([apus, "top", name, "--once", "--json"], capture_output=True, text=True)
        if any(node["origin"] == "inspector" and node["status"] == "running" for node in json.loads(shown.stdout)["nodes"]):
            break
    warm_up(size * count)
    start = time.monotonic()
    open(go, "w").close()
    run.communicate(timeout=900)
    _, err = recorder.communicate(timeout=900)
    seconds = time.monotonic() - start
    recorded = int(re.search(r"recorded (\d+) message", err).group(1))
    nbytes = os.path.getsize(output)
    user, system = re.search(r"cpu ([\d.]+) ([\d.]+)", err).groups()
    cpu = float(user) + float(system)  # the recorder's own, from attaching to the end
    os.unlink(output)
    warm_up(nbytes)
    dd = subprocess.run(["dd", "if=/dev/zero", f"of={work}/dd.bin", "bs=1M", f"count={max(nbytes >> 20, 1)}"],
                        capture_output=True, text=True)
    dd_rate = float(re.search(r"([\d.]+) ([MG])B/s", dd.stderr).group(1)) * (1000 if "GB/s" in dd.stderr else 1)
    os.unlink(f"{work}/dd.bin")
    print(f"{name:<22} {recorded:>7} of {count:<7} {recorded / seconds:>10.0f} msg/s {nbytes / seconds / 1e6:>8.1f} MB/s "
          f"(dd {dd_rate:>6.0f} MB/s) {cpu / max(recorded, 1) * 1e6:>8.1f} us CPU/msg", flush=True)

print(f"{'case':<22} {'recorded':>18} {'rate':>16} {'throughput':>13} {'':>15} {'recorder':>12}")
case("frames-640x480x3-30Hz", 640 * 480 * 3, 300, "millis/33", False)
case("8B-max-rate", 8, 200_000, "millis/1", True)
case("6MiB-max-rate", 6 << 20, 200, "millis/1", True)
PY
