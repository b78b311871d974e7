"""`apus top`: a running dataflow's nodes and inputs, from counters in shared memory and /proc."""
import json
import os
import signal
import subprocess
import time

from conftest import APUS, BUILD

TEST_NODE = BUILD / "apus-test-node"

OVERFLOWING = f"""
nodes:
  - id: source
    path: {TEST_NODE}
    args: --send 200 --on-tick
    inputs: {{ tick: apus/timer/millis/2 }}
    outputs: [out]
  - id: sink
    path: {TEST_NODE}
    args: --busy-ms 300
    inputs: {{ in: {{ source: source/out, queue_size: 4 }} }}
"""


def top(*arguments):
    return subprocess.run([str(APUS), "top", *arguments], capture_output=True, text=True, timeout=60)


def wait_for(dataflow, text, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in "".join(open(path).read() for path in (dataflow.folder / "out").glob("*/*.log")):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged within {timeout} s")


def test_top_once_json_shows_every_node_and_the_drops_the_run_reports(dataflow):
    dataflow.start(OVERFLOWING)
    # Once the source has sent its 200, the sink's drops are final; it still works off its queue.
    wait_for(dataflow, "events done")
    shown = top("dataflow", "--once", "--json")
    assert shown.returncode == 0, shown.stderr
    snapshot = json.loads(shown.stdout)
    nodes = {node["id"]: node for node in snapshot["nodes"]}
    assert set(nodes) == {"source", "sink"}, snapshot
    # The source has ended (it sent its 200); the sink still runs.
    assert nodes["source"]["status"] == "finished" and "pid" not in nodes["source"], snapshot
    sink = nodes["sink"]
    assert sink["pid"] > 0 and sink["rss_bytes"] > 0 and sink["status"] == "running" and sink["restarts"] == 0, snapshot
    (sink_input,) = nodes["sink"]["inputs"]
    assert sink_input["capacity"] == 4 and sink_input["source"] == "source/out", snapshot
    run = dataflow.wait()
    assert run.status == 0, run
    reported = [line for line in run.stderr.splitlines() if "node 'sink' input 'in':" in line]
    assert reported == [f"apus: node 'sink' input 'in': {sink_input['dropped']} messages dropped (queue_size 4 full, "
                        "drop_oldest kept the newest; a larger queue_size or queue_policy: backpressure keeps them all)"], run
    assert sink_input["dropped"] > 100, snapshot
    dataflow.expect_clean()


def test_top_table_and_what_it_says_when_nothing_fits(dataflow):
    dataflow.start(OVERFLOWING)
    wait_for(dataflow, "events done")
    # Hostile bytes on the run's socket, and a client that says nothing, change nothing.
    import glob
    import socket
    (path,) = [p for p in glob.glob(f"/tmp/apus-{os.getuid()}/runs/*.sock") + glob.glob(
        f"{os.environ.get('XDG_RUNTIME_DIR', '/nonexistent')}/apus/runs/*.sock")
        if json.load(open(p[:-5] + ".json"))["name"] == "dataflow"]
    for garbage in (b"\xff" * 64, b"\x00\x00\x00\x08snapshot", b""):
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
            client.sendall(garbage)
    table = top("--once")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("dataflow (run "), table.stdout
    assert any(line.split()[:1] == ["sink"] and line.split()[-1] == "running" for line in lines), table.stdout
    assert any(line.startswith("sink/in ") for line in lines), table.stdout
    unknown = top("no-such-flow", "--once")
    assert unknown.returncode != 0 and "no running dataflow is called 'no-such-flow' (running: dataflow (" in unknown.stderr
    run = dataflow.wait()
    assert run.status == 0, run
    ended = top("dataflow", "--once")
    assert ended.returncode != 0 and "no running dataflow is called 'dataflow'" in ended.stderr, ended.stderr
    dataflow.expect_clean()


def test_a_killed_run_leaves_nothing_for_top_to_find(dataflow):
    process = dataflow.start(OVERFLOWING)
    wait_for(dataflow, "events done")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    after = top("dataflow", "--once")
    assert after.returncode != 0 and "no running dataflow is called 'dataflow'" in after.stderr, after.stderr
    runs = [name for name in os.listdir(f"/tmp/apus-{os.getuid()}/runs") if name.endswith((".json", ".sock"))] \
        if "XDG_RUNTIME_DIR" not in os.environ else []
    assert runs == [], runs
    dataflow.expect_clean()


def test_live_top_in_a_real_terminal_redraws_and_quits_with_q(dataflow):
    """In tmux: the table shows and refreshes each second, and `q` ends apus top (the dataflow runs on)."""
    slow = OVERFLOWING.replace("--send 200", "--send 2000")
    dataflow.start(slow)
    time.sleep(1.0)
    session = f"apus-top-{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "30", f"{APUS} top dataflow"], check=True,
                   cwd=dataflow.folder)
    try:
        screens = []
        for _ in range(2):
            time.sleep(1.5)
            screens.append(subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout)
        assert all("sink/in" in screen and "source/out" in screen for screen in screens), screens
        assert screens[0] != screens[1], "the table did not refresh"
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and subprocess.run(["tmux", "has-session", "-t", session]).returncode == 0:
            time.sleep(0.1)
        assert subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode != 0, "q did not end apus top"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert dataflow.process.poll() is None, "the dataflow ended with apus top"
    dataflow.process.send_signal(signal.SIGINT)
    assert dataflow.wait().status == 0
    dataflow.expect_clean()


def test_top_shows_each_inputs_latency_from_send_to_take(dataflow):
    """The consumer samples one take in 16 against the send stamp; a fast sink's latency is small."""
    dataflow.start(f"""
nodes:
  - id: source
    path: {TEST_NODE}
    args: --send 3000 --on-tick
    inputs: {{ tick: apus/timer/millis/1 }}
    outputs: [out]
  - id: sink
    path: {TEST_NODE}
    inputs: {{ in: source/out }}
""")
    time.sleep(1.5)
    shown = top("dataflow", "--once", "--json")
    assert shown.returncode == 0, shown.stderr
    (sink,) = [node for node in json.loads(shown.stdout)["nodes"] if node["id"] == "sink"]
    (entry,) = sink["inputs"]
    assert len(entry["latency_histogram"]) == 24 and sum(entry["latency_histogram"]) > 10, entry
    assert entry["latency_p50_us_under"] <= entry["latency_p99_us_under"] <= 4096, entry
    assert 500 < entry["rate_hz"] < 1100, entry
    dataflow.process.send_signal(signal.SIGINT)
    assert dataflow.wait().status == 0
    dataflow.expect_clean()
