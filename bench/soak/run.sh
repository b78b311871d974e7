#!/usr/bin/env bash
# A soak: runs bench/soak/soak.yml (C, Swift and Python nodes, a 2 ms timer, backpressure edges,
# a node restarted every 30 s) for SECONDS (default 3600), samples every process's RSS, PSS and
# open descriptors and the entries of /dev/shm every 10 s, and prints whether each stayed flat and
# whether every message sent was received or reported dropped. Writes bench/soak/results.json.
# Usage: bench/soak/run.sh [SECONDS]   (not part of the tests; release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-3600}"
swift build -c release >/dev/null
export PATH="$PWD/.build/release:$PATH"
exec python3 - "$seconds" <<'PY'
import json, os, re, subprocess, sys, time, uuid

seconds = float(sys.argv[1])
tag = f"apus-soak-{uuid.uuid4()}"
environment = dict(os.environ, SOAK_SECONDS=str(seconds), APUS_SOAK_TAG=tag)
folder = "bench/soak"
out, err = open(f"{folder}/soak.stdout", "w"), open(f"{folder}/soak.stderr", "w")
run = subprocess.Popen(["apus", "run", "soak.yml", "--no-color"], cwd=folder, env=environment, stdout=out, stderr=err)

def processes():
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
            if f"APUS_SOAK_TAG={tag}".encode() not in environ:
                continue
            node = next((item.split(b"=", 1)[1].decode() for item in environ if item.startswith(b"APUS_NODE_ID=")), None)
            name = node or ("apus run" if int(entry) == run.pid else "guardian")
            status = open(f"/proc/{entry}/status").read()
            if re.search(r"State:\s+Z", status):
                continue
            rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
            pss = int(re.search(r"Pss:\s+(\d+)", open(f"/proc/{entry}/smaps_rollup").read()).group(1))
            fds = len(os.listdir(f"/proc/{entry}/fd"))
            found[name] = {"rss_kib": rss, "pss_kib": pss, "fds": fds}
        except (OSError, AttributeError, StopIteration):
            continue
    return found

samples = []
started = time.monotonic()
while run.poll() is None:
    samples.append({"t": round(time.monotonic() - started), "shm": len(os.listdir("/dev/shm")), "processes": processes()})
    for _ in range(100):
        if run.poll() is not None:
            break
        time.sleep(0.1)
run.wait()
out.close(), err.close()
stdout, stderr = open(f"{folder}/soak.stdout").read(), open(f"{folder}/soak.stderr").read()

def number(pattern, text):
    match = re.search(pattern, text)
    return int(match.group(1)) if match else None

sent = number(r"\[source\] sent (\d+)", stdout)
relayed = number(r"\[relay\] relayed (\d+)", stdout)
received = number(r"\[sink\] received (\d+)", stdout)
out_of_order = number(r"out_of_order (\d+)", stdout)
dropped = sum(int(d) for d in re.findall(r"node '(?:relay|sink)' input '\w+': (\d+) messages? dropped", stderr))
restarts = len(re.findall(r"node 'flaky' .*restarting \(", stderr))
# Every incarnation of flaky says what it took; together they took every message sent.
flaky = sum(int(n) for n in re.findall(r"\[flaky\] received (\d+)", stdout))
flaky_lost = sum(int(d) for d in re.findall(r"node 'flaky' input '\w+': (\d+)", stderr))

# Flat: after a minute of warm-up, the last quarter's mean is within 10 % (+1 MiB) of the first's.
steady = [s for s in samples if s["t"] >= 60] or samples
quarter = max(1, len(steady) // 4)
def mean(window, name, field):
    values = [s["processes"][name][field] for s in window if name in s["processes"]]
    return sum(values) / len(values) if values else 0
names = sorted({name for s in steady for name in s["processes"]})
rows, flat = [], True
for name in names:
    row = {"process": name}
    for field, slack in (("rss_kib", 1024), ("pss_kib", 1024), ("fds", 2)):
        first, last = mean(steady[:quarter], name, field), mean(steady[-quarter:], name, field)
        ok = last <= first * 1.1 + slack
        flat &= ok
        row[field] = (round(first), round(last), ok)
    rows.append(row)
shm = [s["shm"] for s in samples]
shm_flat = max(shm) - min(shm) == 0 if shm else True

print(f"soak of {seconds:.0f} s on {time.strftime('%Y-%m-%d')}: {len(samples)} samples, every 10 s; exit status {run.returncode}")
print(f"{'process':>10} {'RSS first→last (KiB)':>24} {'PSS first→last (KiB)':>24} {'fds first→last':>16}")
for row in rows:
    cell = lambda value: f"{value[0]}→{value[1]}{'' if value[2] else ' GROWS'}"
    print(f"{row['process']:>10} {cell(row['rss_kib']):>24} {cell(row['pss_kib']):>24} {cell(row['fds']):>16}")
print(f"/dev/shm entries: {min(shm) if shm else 0}–{max(shm) if shm else 0} ({'flat' if shm_flat else 'CHANGED'})")
print(f"sent {sent}, relayed {relayed}, received {received} ({out_of_order} out of order), reported dropped {dropped}, "
      f"flaky restarted {restarts} times")
print(f"flaky, over its {restarts + 1} incarnations: received {flaky}, reported lost {flaky_lost}")
accounted = sent is not None and received is not None and sent == received + dropped and sent == flaky and flaky_lost == 0
print(f"sent = received + reported drops, and = what flaky received: {'yes' if accounted else 'NO'}; "
      f"memory and descriptors flat: {'yes' if flat else 'NO'}")
json.dump({"seconds": seconds, "samples": samples, "sent": sent, "relayed": relayed, "received": received, "dropped": dropped,
           "restarts": restarts, "flaky_received": flaky, "flaky_lost": flaky_lost, "exit_status": run.returncode}, open(f"{folder}/results.json", "w"))
sys.exit(0 if accounted and flat and shm_flat and run.returncode == 0 else 1)
PY
