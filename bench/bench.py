#!/usr/bin/env python3
"""Apus benchmarks, and with --vs-dora the same workloads on dora-rs 1.1.0 in the same run.

    python3 bench/bench.py --vs-dora          # about 10 minutes; --quick for a short run

Measures (all release builds; the Python nodes are the same files for both systems, written
against dora-rs's Python API, run by the same interpreter of a venv of the benchmark's own):
- ping-pong latency, RTT/2 p50/p90/p99: Python<->Python with dora's API (Apus and dora); zero-copy
  C<->C, Swift<->Swift and Python<->Python with Apus's APIs; a raw C futex ping-pong as the floor;
  at 8 B .. 40 MiB;
- throughput of an unpaced Python sender: messages/s, MB/s, received vs sent, drops as reported;
  at 8 B also with backpressure, and batched with Apus's send_many/next_many (Apus only);
- start-up: wall time of a two-node Python dataflow sending one message (median of 10);
- memory: peak RSS (VmHWM) of the daemon and of each node during 40 MiB ping-pong, and the largest
  PSS seen (shared pages divided among the processes mapping them) and its sum over the processes;
- CPU: CPU time of a dataflow idling on a 1 Hz timer, over 10 s.
Systems alternate run by run so drift hits both alike; the Python ping-pong runs 5 times per system
(--quick: once), and the table shows the spread of the runs' p50s and flags a bimodal one. Writes bench/results.json and prints a table
with Apus/dora ratios. Not part of the tests: numbers depend on the machine and its load."""
import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV = BENCH / ".venv"
DORA_PACKAGES = ["dora-rs-cli==1.1.0", "dora-rs==1.1.0"]
PYTHON_PACKAGES = ["pyarrow", "numpy", "cffi"]
SIZES = [8, 64, 512, 4 << 10, 64 << 10, 512 << 10, 2 << 20, 6 << 20, 40 << 20]
MIB = 1 << 20


def label(size):
    for unit, scale in (("MiB", MIB), ("KiB", 1024)):
        if size >= scale:
            return f"{size // scale} {unit}"
    return f"{size} B"


def log(text):
    print(text, file=sys.stderr, flush=True)


# Set-up

def venv(with_dora):
    python = VENV / "bin" / "python"
    wanted = PYTHON_PACKAGES + (DORA_PACKAGES if with_dora else [])
    if not python.exists():
        log(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    check = "import pyarrow, numpy, cffi" + (", dora" if with_dora else "")
    if subprocess.run([str(python), "-c", check], capture_output=True).returncode != 0:
        log(f"installing {' '.join(wanted)} into {VENV}")
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *wanted], check=True)
    return python


def build(work):
    log("building release: apus, libapus, bench-pingpong")
    for product in ("apus", "ApusCAPI", "bench-pingpong"):
        subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL)
    bin_path = Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=REPO, check=True,
                                   capture_output=True, text=True).stdout.strip())
    apus = bin_path / "apus"
    flags = subprocess.run([str(apus), "config", "--cflags", "--libs"], check=True, capture_output=True,
                           text=True).stdout.split()
    subprocess.run(["cc", "-O2", "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-o", str(work / "pingpong"),
                    str(BENCH / "nodes" / "pingpong.c"), *flags], check=True)
    subprocess.run(["cc", "-O2", "-o", str(work / "futex-pingpong"), str(BENCH / "transport" / "futex-pingpong.c")],
                   check=True)
    return apus, bin_path


class Systems:
    """How to run a dataflow file on each system, with the same Python for the nodes."""

    def __init__(self, apus, python):
        self.apus, self.python = apus, python
        self.env = dict(os.environ, APUS_PYTHON=str(python), PATH=f"{python.parent}:{os.environ['PATH']}")

    def command(self, system, dataflow):
        if system == "apus":
            return [str(self.apus), "run", str(dataflow), "--no-color", "--no-build"]
        return [str(self.python.parent / "dora"), "run", str(dataflow)]

    def run(self, system, dataflow, env=None, timeout=600):
        """(stdout, stderr, seconds) of one run to its end."""
        start = time.monotonic()
        result = subprocess.run(self.command(system, dataflow), cwd=dataflow.parent, env=dict(self.env, **(env or {})),
                                capture_output=True, text=True, timeout=timeout)
        seconds = time.monotonic() - start
        if result.returncode != 0:
            raise RuntimeError(f"{system} run of {dataflow} failed ({result.returncode}):\n"
                               f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout, result.stderr, seconds


def json_lines(text):
    """The JSON objects printed by nodes, from either system's console format."""
    found = []
    for line in text.splitlines():
        start = line.find("{\"")
        if start >= 0:
            try:
                found.append(json.loads(line[start:]))
            except json.JSONDecodeError:
                pass
    return found


def copy_flow(work, name, text, file="dataflow.yml"):
    folder = work / name
    folder.mkdir(exist_ok=True)
    (folder / file).write_text(text)
    return folder / file


# Process tree sampling (memory and CPU)

def descendants(root):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def describe(pid):
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    words = [w.decode(errors="replace") for w in command if w]
    for word in words:
        if word.endswith(".py"):
            return Path(word).stem
    return Path(words[0]).name if words else None


def proc_kib(pid, file, key):
    """A `key: N kB` line of /proc/PID/`file`; None when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_kib(pid):
    return proc_kib(pid, "status", "VmHWM:")


def pss_kib(pid):
    """Proportional set size: each shared page counts 1/n in each of the n processes mapping it."""
    return proc_kib(pid, "smaps_rollup", "Pss:")


def cpu_seconds(pids):
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / ticks


# Measures

def pingpong_python(systems, system, work, sizes, rounds, budget):
    flow = work / "py-pingpong" / "dataflow.yml"
    stdout, _, _ = systems.run(system, flow, env={"SIZES": ",".join(map(str, sizes)), "ROUNDS": str(rounds),
                                                  "BUDGET": str(budget), "WARMUP": "20"})
    return {row["size"]: row for row in json_lines(stdout) if "p50_us" in row}


def pingpong_native(systems, work, sizes, rounds, budget):
    env = {"SIZES": ",".join(map(str, sizes)), "ROUNDS": str(rounds), "BUDGET": str(budget), "WARMUP": "200"}
    results = {}
    for language in ("c", "swift", "python"):
        stdout, _, _ = systems.run("apus", work / f"{language}-pingpong" / "dataflow.yml", env=env)
        results[language] = {row["size"]: row for row in json_lines(stdout) if "p50_us" in row}
    reference = {}
    for size in sizes:
        out = subprocess.run([str(work / "futex-pingpong"), str(size), str(max(rounds, 20000))], check=True,
                             capture_output=True, text=True).stdout.split()
        reference[size] = {"size": size, "p50_us": float(out[0]) / 1000, "p99_us": float(out[1]) / 1000}
    results["c_futex_reference"] = reference
    return results


def throughput(systems, system, work, size, count, flow="dataflow.yml", batch=None):
    flow = work / "throughput" / flow
    env = {"SIZE": str(size), "COUNT": str(count)} | ({"BATCH": str(batch)} if batch else {})
    stdout, stderr, _ = systems.run(system, flow, env=env)
    rows = json_lines(stdout)
    sent = next(r for r in rows if "sent" in r)
    received = next(r for r in rows if "received" in r)
    seconds = (received["last"] or sent["end"]) - sent["start"]
    dropped = None
    if system == "apus":  # apus run reports drops per input; dora reports none
        dropped = 0
        for line in stderr.splitlines():
            if "messages dropped" in line or "message dropped" in line:
                dropped += int(line.split("': ")[1].split()[0])
    return {"size": size, "sent": sent["sent"], "received": received["received"], "reported_dropped": dropped,
            "messages_per_s": received["received"] / seconds if seconds > 0 else None,
            "megabytes_per_s": received["received"] * size / seconds / 1e6 if seconds > 0 else None}


def startup(systems, system, work):
    _, _, seconds = systems.run(system, work / "startup" / "dataflow.yml")
    return seconds


def memory(systems, system, work):
    """Peak RSS of the run's processes during 40 MiB Python ping-pong, the largest PSS each had
    when sampled, and the largest sum of PSS over them (what the dataflow costs the machine: RSS
    counts a shared page in every process that maps it)."""
    flow = work / "py-pingpong" / "dataflow.yml"
    env = dict(systems.env, SIZES=str(40 * MIB), ROUNDS="30", BUDGET="5", WARMUP="5")
    process = subprocess.Popen(systems.command(system, flow), cwd=flow.parent, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    peaks, pss, total = {}, {}, 0
    while process.poll() is None:
        sampled = 0
        for pid in descendants(process.pid):
            name, peak, proportional = describe(pid), peak_rss_kib(pid), pss_kib(pid)
            if name and peak:
                key = "daemon" if pid == process.pid else name  # `apus run` and `dora run` hold the daemon
                peaks[key] = max(peaks.get(key, 0), peak)
                if proportional:
                    pss[key] = max(pss.get(key, 0), proportional)
                    sampled += proportional
        total = max(total, sampled)
        time.sleep(0.02)
    return {"rss": {k: v / 1024 for k, v in peaks.items()}, "pss": {k: v / 1024 for k, v in pss.items()},
            "pss_sum": total / 1024}


def idle_cpu(systems, system, work, seconds):
    flow = work / "idle" / "dataflow.yml"
    process = subprocess.Popen(systems.command(system, flow), cwd=flow.parent, env=systems.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(3)  # start-up done
    pids = descendants(process.pid)
    before = cpu_seconds(pids)
    time.sleep(seconds)
    after = cpu_seconds(descendants(process.pid))
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return after - before


# Main

def write_flows(work, bin_path):
    copy_flow(work, "py-pingpong", f"""
nodes:
  - id: ping
    path: {BENCH}/pingpong/ping.py
    inputs: {{pong: pong/pong}}
    outputs: [ping]
  - id: pong
    path: {BENCH}/pingpong/pong.py
    inputs: {{ping: ping/ping}}
    outputs: [pong]
""")
    for language, program in (("c", work / "pingpong"), ("swift", bin_path / "bench-pingpong"),
                              ("python", BENCH / "nodes" / "pingpong.py")):
        copy_flow(work, f"{language}-pingpong", f"""
nodes:
  - id: ping
    path: {program}
    args: ping
    inputs: {{pong: pong/pong}}
    outputs: [ping]
  - id: pong
    path: {program}
    args: pong
    inputs: {{ping: ping/ping}}
    outputs: [pong]
""")
    for name in ("throughput", "startup", "idle"):
        for flow in (BENCH / name).glob("*.yml"):
            text = flow.read_text()
            for script in (BENCH / name).glob("*.py"):
                text = text.replace(f"path: {script.name}", f"path: {script}")
            copy_flow(work, name, text, flow.name)


def spread(p50s):
    """Min, median and max of several runs' p50s; bimodal when the largest is over 1.5 times the
    smallest (one run waited asleep, another spun: the kind of result a single run hides)."""
    ordered = sorted(p50s)
    return {"runs": len(ordered), "min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1],
            "bimodal": ordered[-1] > 1.5 * ordered[0]}


def median_row(rows):
    """Of several runs' rows for one size, the one with the median p50."""
    ordered = sorted(rows, key=lambda r: r["p50_us"])
    return ordered[len(ordered) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vs-dora", action="store_true", help="also run dora-rs 1.1.0 (installed into bench/.venv)")
    parser.add_argument("--quick", action="store_true", help="one repetition and fewer rounds (a rough look)")
    parser.add_argument("--output", default=str(BENCH / "results.json"), help="where to write the JSON results")
    options = parser.parse_args()

    systems_list = ["apus", "dora"] if options.vs_dora else ["apus"]
    reps = 1 if options.quick else 5
    rounds, budget = (100, 2) if options.quick else (300, 4)
    python = venv(options.vs_dora)
    with tempfile.TemporaryDirectory(prefix="apus-bench-") as folder:
        work = Path(folder)
        apus, bin_path = build(work)
        write_flows(work, bin_path)
        systems = Systems(apus, python)
        result = {"date": datetime.date.today().isoformat(),
                  "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
                  "python": subprocess.run([str(python), "--version"], capture_output=True, text=True).stdout.strip(),
                  "systems": systems_list}

        log("ping-pong, Python <-> Python")
        runs = {s: [] for s in systems_list}
        for _ in range(reps):
            for system in systems_list:
                runs[system].append(pingpong_python(systems, system, work, SIZES, rounds, budget))
        result["pingpong_python"] = {s: [median_row([r[size] for r in runs[s]]) for size in SIZES] for s in systems_list}
        result["pingpong_python_spread"] = {s: [spread([r[size]["p50_us"] for r in runs[s]]) for size in SIZES]
                                            for s in systems_list}

        log("ping-pong, zero-copy C <-> C, Swift <-> Swift and Python <-> Python (Apus) and the raw C futex floor")
        native = [pingpong_native(systems, work, SIZES, max(rounds, 2000), budget) for _ in range(reps)]
        result["pingpong_native"] = {k: [median_row([n[k][size] for n in native]) for size in SIZES]
                                     for k in ("c", "swift", "python", "c_futex_reference")}

        log("throughput, unpaced Python sender")
        result["throughput"] = {s: [] for s in systems_list}
        for size in SIZES:
            # Long enough that start-up skew between sender and receiver does not dominate.
            count = 100_000 if size <= 64 << 10 else 5000 if size <= 512 << 10 else 2000 if size <= 2 * MIB \
                else 300 if size <= 6 * MIB else 60
            if options.quick:
                count = max(20, count // 5)
            for system in systems_list:
                result["throughput"][system].append(throughput(systems, system, work, size, count))

        log("throughput at 8 B: backpressure (dora's API) and batches (Apus's API), Apus only")
        policies = {"backpressure": [], "batch": []}
        for _ in range(reps):
            policies["backpressure"].append(throughput(systems, "apus", work, 8, 100_000, "backpressure.yml"))
            policies["batch"].append(throughput(systems, "apus", work, 8, 500_000, "batch.yml", batch=1000))
        result["throughput_8b_policies"] = policies

        log("start-up, two Python nodes, one message")
        times = {s: [] for s in systems_list}
        for system in systems_list:
            startup(systems, system, work)  # warm the page cache
        for _ in range(3 if options.quick else 10):
            for system in systems_list:
                times[system].append(startup(systems, system, work))
        result["startup_s"] = {s: statistics.median(v) for s, v in times.items()}

        log("memory at 40 MiB ping-pong")
        result["peak_rss_mib"] = {s: memory(systems, s, work) for s in systems_list}

        log("idle CPU, 1 Hz timer")
        result["idle_cpu_s_per_10s"] = {s: idle_cpu(systems, s, work, 10) for s in systems_list}

    Path(options.output).write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    log(f"results: {options.output}")


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "–"


def table(result):
    dora = "dora" in result["systems"]
    lines = [f"Apus benchmarks, {result['date']}, {result['machine']}, {result['python']}", ""]
    lines.append("Ping-pong RTT/2 (µs), Python <-> Python" + (" — Apus vs dora-rs 1.1.0" if dora else ""))
    head = "| size | Apus p50 | p90 | p99 |" + (" dora p50 | p90 | p99 | Apus/dora p50 |" if dora else "")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for i, size in enumerate(SIZES):
        a = result["pingpong_python"]["apus"][i]
        row = f"| {label(size)} | {a['p50_us']:.1f} | {a['p90_us']:.1f} | {a['p99_us']:.1f} |"
        if dora:
            d = result["pingpong_python"]["dora"][i]
            row += f" {d['p50_us']:.1f} | {d['p90_us']:.1f} | {d['p99_us']:.1f} | {ratio(a['p50_us'], d['p50_us'])} |"
        lines.append(row)
    lines += ["", "Spread of the per-run p50s (µs), Python <-> Python with dora's API: min / median / max",
              "| size | Apus | dora |" if dora else "| size | Apus |", "|---|---|---|" if dora else "|---|---|"]
    for i, size in enumerate(SIZES):
        cells = []
        for system in (("apus", "dora") if dora else ("apus",)):
            w = result["pingpong_python_spread"][system][i]
            cells.append(f"{w['min']:.1f} / {w['median']:.1f} / {w['max']:.1f} ({w['runs']} runs)"
                         + (" BIMODAL" if w["bimodal"] else ""))
        lines.append(f"| {label(size)} | " + " | ".join(cells) + " |")
    lines += ["", "Ping-pong RTT/2 (µs), native nodes on Apus, zero-copy, against a raw C futex ping-pong",
              "| size | C p50 | p90 | p99 | Swift p50 | p90 | p99 | Python p50 | p90 | p99 | raw C futex p50 | p99 | C/raw p50 |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    native = result["pingpong_native"]
    for i, size in enumerate(SIZES):
        c, s, p, r = native["c"][i], native["swift"][i], native["python"][i], native["c_futex_reference"][i]
        lines.append(f"| {label(size)} | {c['p50_us']:.2f} | {c['p90_us']:.2f} | {c['p99_us']:.2f} | {s['p50_us']:.2f} |"
                     f" {s['p90_us']:.2f} | {s['p99_us']:.2f} | {p['p50_us']:.2f} | {p['p90_us']:.2f} | {p['p99_us']:.2f} |"
                     f" {r['p50_us']:.3f} | {r['p99_us']:.3f} | {ratio(c['p50_us'], r['p50_us'])} |")
    lines += ["", "Throughput, unpaced Python sender, default queue (10, drop_oldest)"]
    head = "| size | Apus msg/s | MB/s | received/sent | dropped (reported) |"
    head += " dora msg/s | MB/s | received/sent | dropped (reported) | Apus/dora msg/s |" if dora else ""
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for i, size in enumerate(SIZES):
        a = result["throughput"]["apus"][i]
        row = (f"| {label(size)} | {a['messages_per_s']:,.0f} | {a['megabytes_per_s']:,.0f} | {a['received']}/{a['sent']} |"
               f" {a['reported_dropped']} |")
        if dora:
            d = result["throughput"]["dora"][i]
            row += (f" {d['messages_per_s']:,.0f} | {d['megabytes_per_s']:,.0f} | {d['received']}/{d['sent']} |"
                    f" {d['sent'] - d['received']} lost, none reported | {ratio(a['messages_per_s'], d['messages_per_s'])} |")
        lines.append(row)
    policies = result["throughput_8b_policies"]
    lines += ["", "Throughput at 8 B, Apus, nothing lost: messages/s, min / median / max over the runs",
              "| sender and receiver | queue | msg/s | received/sent |", "|---|---|---|---|"]
    for key, what, queue in (("backpressure", "dora's API, one message per call", "10, backpressure"),
                             ("batch", "Apus's API, send_many and next_many, 1000 per call", "1000, backpressure")):
        rates = sorted(r["messages_per_s"] for r in policies[key])
        counts = ", ".join(sorted({f"{r['received']}/{r['sent']}" for r in policies[key]}))
        lines.append(f"| {what} | {queue} | {rates[0]:,.0f} / {rates[len(rates) // 2]:,.0f} / {rates[-1]:,.0f} | {counts} |")
    lines += [""]
    for title, key, unit, fmt in (("Start-up, two Python nodes, one message (median)", "startup_s", "s", "{:.3f}"),
                                  ("Idle dataflow CPU over 10 s (1 Hz timer)", "idle_cpu_s_per_10s", "s", "{:.3f}")):
        a = result[key]["apus"]
        text = f"{title}: Apus {fmt.format(a)} {unit}"
        if dora:
            d = result[key]["dora"]
            text += f", dora {fmt.format(d)} {unit}, Apus/dora {ratio(a, d)}"
        lines.append(text)
    memory_ = result["peak_rss_mib"]
    for measure, title in (("rss", "Peak RSS"), ("pss", "Peak PSS")):
        text = f"{title} at 40 MiB ping-pong (MiB): Apus " + ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(memory_["apus"][measure].items()))
        if dora:
            text += "; dora " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(memory_["dora"][measure].items()))
            text += f"; daemon Apus/dora {ratio(memory_['apus'][measure].get('daemon'), memory_['dora'][measure].get('daemon'))}"
        lines.append(text)
    text = f"Sum of PSS at 40 MiB ping-pong (MiB): Apus {memory_['apus']['pss_sum']:.0f}"
    if dora:
        text += f", dora {memory_['dora']['pss_sum']:.0f}, Apus/dora {ratio(memory_['apus']['pss_sum'], memory_['dora']['pss_sum'])}"
    lines.append(text)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
