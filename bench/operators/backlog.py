"""For the operator benchmarks (bench/wasm, bench/numba): runs a source that bursts messages onto
a backpressure edge into one operator, so it never waits, and a sink that times the gap between
arrivals: the operator's time per message."""
import re
import statistics
import subprocess
import sys
import time


def measure(apus, work, operator, size, count):
    """Microseconds per message through the operator whose kind line(s) are `operator`."""
    text = f"""nodes:
  - id: source
    path: {work}/source
    env: {{ BENCH_SIZE: {size}, BENCH_COUNT: {count}, BENCH_BURST: 1 }}
    inputs: {{ tick: apus/timer/millis/2 }}
    outputs: [out]
  - id: runtime
    operator:
      id: op
      {operator}
      inputs: {{ in: {{ source: source/out, queue_policy: backpressure, queue_size: 256 }} }}
      outputs: [out]
  - id: sink
    path: {work}/sink
    inputs: {{ in: {{ source: runtime/out, queue_policy: backpressure, queue_size: 256 }} }}
"""
    with open(f"{work}/dataflow.yml", "w") as file:
        file.write(text)
    result = subprocess.run([apus, "run", f"{work}/dataflow.yml", "--no-color"], capture_output=True, text=True)
    match = re.search(r"per message ([\d.]+) us over (\d+)", result.stdout)
    if result.returncode != 0 or match is None or int(match.group(2)) != count:
        sys.exit(f"run failed:\n{result.stdout}\n{result.stderr}")
    return float(match.group(1))


def best(apus, work, operator, size, count, runs=3):
    return min(measure(apus, work, operator, size, count) for _ in range(runs))


def startup(apus, work, operator, runs=5):
    """Median wall time, in seconds, of a run that sends two messages through the operator."""
    times = []
    for _ in range(runs):
        start = time.monotonic()
        measure(apus, work, operator, 8, 2)
        times.append(time.monotonic() - start)
    return statistics.median(times)
