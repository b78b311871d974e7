"""dora's restart_window and cpu_affinity, each by its effect."""
import pytest

FLAKY = '''
import pathlib, sys, time
from dora import Node

runs = pathlib.Path("runs")
count = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(count))
node = Node()
print(f"run {count}, restart_count {node.restart_count()}", flush=True)
time.sleep(0.3)
sys.exit(0 if count == 4 else 1)
'''


@pytest.mark.parametrize("window", [None, "0.2"])
def test_restart_window_resets_the_count(dataflow, window):
    """max_restarts 1: without a window the node fails for good after one restart; with a window
    shorter than each run, every failure starts a new window, so it is restarted until it succeeds."""
    dataflow.write("flaky.py", FLAKY)
    keys = f"\n    restart_window: {window}" if window else ""
    run = dataflow.run(f"""
nodes:
  - id: flaky
    path: flaky.py
    restart_policy: on-failure
    max_restarts: 1{keys}
""")
    notes = [line for line in run.stderr.splitlines() if "restarting" in line]
    if window is None:
        assert run.status == 1, run
        assert run.lines("flaky") == ["run 1, restart_count 0", "run 2, restart_count 1"], run
        assert len(notes) == 1 and "restarting (1 of 1)" in notes[0], run
    else:
        assert run.status == 0, run
        assert run.lines("flaky") == [f"run {n}, restart_count {n - 1}" for n in range(1, 5)], run
        assert len(notes) == 3 and all("restarting (1 of 1 in 0.2 s)" in note for note in notes), run
    dataflow.expect_clean()


def test_cpu_affinity_shows_in_proc_status(dataflow):
    dataflow.write("where.py", '''
from dora import Node
node = Node()
print([line.split()[1] for line in open("/proc/self/status") if line.startswith("Cpus_allowed_list")][0])
''')
    run = dataflow.run("""
nodes:
  - id: pinned
    path: where.py
    cpu_affinity: [1]
  - id: free
    path: where.py
""")
    assert run.status == 0, run
    assert run.lines("pinned") == ["1"], run
    assert run.lines("free") != ["1"], run
    dataflow.expect_clean()


HANGS = '''
import time
from dora import Node

node = Node()
print("started", flush=True)
while True:  # stuck in its own code: never calls the API again
    time.sleep(0.05)
'''

IDLE = '''
from dora import Node

for event in Node():  # waits for an input that never comes, then STOP
    pass
print("idle: ended cleanly", flush=True)
'''


@pytest.mark.parametrize("policy", ["never", "on-failure"])
def test_health_check_timeout_kills_a_node_that_hangs_and_spares_one_that_waits(dataflow, policy):
    dataflow.write("hangs.py", HANGS).write("idle.py", IDLE)
    restarts = "\n    restart_policy: on-failure\n    max_restarts: 1" if policy == "on-failure" else ""
    dataflow.start(f"""
health_check_interval: 0.1
nodes:
  - id: hangs
    path: hangs.py
    health_check_timeout: 0.5
    outputs: [out]{restarts}
  - id: idle
    path: idle.py
    health_check_timeout: 0.5
    inputs:
      never: hangs/out
""", "--stop-after", "3s")
    run = dataflow.wait(timeout=60)
    notes = [line for line in run.stderr.splitlines() if "(health_check_timeout 0.5 s): killing it" in line]
    assert all(note.startswith("apus: node 'hangs' said nothing for ") for note in notes), run
    assert len(notes) == (1 if policy == "never" else 2), run
    assert run.lines("hangs").count("started") == len(notes), run
    assert "idle: ended cleanly" in run.lines("idle"), run
    assert run.status == 1, run
    assert "node 'hangs' said nothing for" in run.stderr.split("failed:")[-1], run
    dataflow.expect_clean()


TICKER = '''
from dora import Node

ticks = data = 0
for event in Node():
    if event["type"] == "INPUT":
        if event["id"] == "tick":
            ticks += 1
        else:
            data += 1
print(f"ended after {data} data messages, still ticking: {ticks > 5}", flush=True)
'''

SOURCE = '''
import pyarrow as pa
from dora import Node

node = Node()
node.send_output("out", pa.array([1]))
'''


@pytest.mark.parametrize("setting", [None, "true", "false"])
def test_exit_when_nodes_finish(dataflow, setting):
    """By default (and with true) a node whose data inputs have closed gets STOP though it has a
    timer; with false its timer keeps it running until the dataflow is stopped."""
    dataflow.write("ticker.py", TICKER).write("source.py", SOURCE)
    root = f"exit_when_nodes_finish: {setting}\n" if setting else ""
    run = dataflow.run(root + """
nodes:
  - id: source
    path: source.py
    outputs: [out]
  - id: ticker
    path: ticker.py
    inputs:
      tick: dora/timer/millis/20
      data: source/out
""", "--stop-after", "2s")
    assert run.status == 0, run
    stopped_early = "--stop-after elapsed" not in run.stderr
    assert stopped_early == (setting != "false"), run
    assert run.lines("ticker") == [f"ended after 1 data messages, still ticking: {setting == 'false'}"], run
    dataflow.expect_clean()
