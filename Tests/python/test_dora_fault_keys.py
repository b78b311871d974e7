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
