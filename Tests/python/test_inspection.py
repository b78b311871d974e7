"""Looking inside a running dataflow: `apus topic list/echo/hz` attach a consumer of their own to
running outputs and leave again; `apus node add/remove` add and remove whole nodes. The producers
never restart and lose nothing."""
import glob
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time

from conftest import APUS, BUILD, REPO

TEST_NODE = BUILD / "apus-test-node"
DYNAMIC = REPO / "Tests" / "DoraExamples" / "dynamic-add-remove"

TYPED = """
nodes:
  - id: sensor
    path: sensor.py
    inputs: { tick: apus/timer/millis/20 }
    outputs: [matrix, text, raw]
  - id: sink
    path: sink.py
    inputs: { matrix: sensor/matrix }
"""

SENSOR = """
import numpy as np
from apus import Node
node = Node()
seq = 0
for event in node:
    if event.type == "INPUT":
        seq += 1
        matrix = np.arange(6, dtype=np.float32).reshape(2, 3) + seq
        node.send_output("matrix", matrix, {"seq": seq, "frame": "cam0"})
        node.send_output("text", f"reading {seq}")
        node.send_output("raw", bytes([seq % 256, 255, 0]))
    elif event.type == "STOP":
        break
"""

SINK = """
from apus import Node
for event in Node():
    if event.type == "STOP":
        break
"""


def apus(*arguments, timeout=60):
    return subprocess.run([str(APUS), *arguments], capture_output=True, text=True, timeout=timeout)


def snapshot():
    shown = apus("top", "dataflow", "--once", "--json")
    assert shown.returncode == 0, shown.stderr
    return {node["id"]: node for node in json.loads(shown.stdout)["nodes"]}


def wait_until(condition, timeout=30, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except AssertionError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not hold within {timeout} s")


def running(*ids):
    return lambda: all(snapshot().get(id, {}).get("status") == "running" for id in ids)


def stop(dataflow):
    dataflow.process.send_signal(signal.SIGINT)
    return dataflow.wait()


def test_echo_prints_messages_with_their_type_shape_metadata_and_values(dataflow):
    dataflow.write("sensor.py", SENSOR).write("sink.py", SINK)
    dataflow.start(TYPED)
    wait_until(running("sensor", "sink"), what="the dataflow running")
    echoed = apus("topic", "echo", "dataflow", "sensor/matrix", "--count", "3", "--json")
    assert echoed.returncode == 0, echoed.stderr
    messages = [json.loads(line) for line in echoed.stdout.splitlines()]
    assert len(messages) == 3, echoed.stdout
    seqs = [message["metadata"]["seq"] for message in messages]
    assert seqs == list(range(seqs[0], seqs[0] + 3)), seqs
    for message, seq in zip(messages, seqs):
        assert message["topic"] == "sensor/matrix" and message["type"] == "float32" and message["shape"] == [2, 3]
        assert message["bytes"] == 24 and message["metadata"]["frame"] == "cam0" and message["timestamp"] > 0
        assert message["preview"] == [float(seq + i) for i in range(6)] and not message["truncated"], message
    text = apus("topic", "echo", "dataflow", "sensor/text", "--count", "1")
    assert text.returncode == 0, text.stderr
    header, values = text.stdout.splitlines()
    seq = values.strip().strip('"').split()[-1]
    assert header.startswith("sensor/text  t=") and header.endswith(f"  utf8  {len('reading ' + seq)} B"), text.stdout
    assert values.strip() == f'"reading {seq}"', text.stdout
    raw = apus("topic", "echo", "dataflow", "sensor/raw", "--count", "1", "--json")
    (message,) = [json.loads(line) for line in raw.stdout.splitlines()]
    assert message["type"] == "uint8" and message["preview"].endswith(" ff 00"), message
    # The inspectors have left: the sensor's outputs feed only the sink again.
    nodes = snapshot()
    assert not [id for id, node in nodes.items() if node["origin"] == "inspector"], nodes
    assert [output["subscribers"] for output in nodes["sensor"]["outputs"]] == [["sink/matrix"], [], []], nodes
    # Inspectors come and go without piling up: the coordinator's descriptors stay as they were.
    descriptors = len(os.listdir(f"/proc/{dataflow.process.pid}/fd"))
    for _ in range(8):
        assert apus("topic", "echo", "dataflow", "sensor/text", "--count", "1").returncode == 0
    assert len(os.listdir(f"/proc/{dataflow.process.pid}/fd")) <= descriptors + 1
    unknown = apus("topic", "echo", "dataflow", "sensor/nothing", "--count", "1")
    assert unknown.returncode != 0, unknown
    assert "the running dataflow has no output 'sensor/nothing' (outputs: sensor/matrix, sensor/text, sensor/raw)" in unknown.stderr
    malformed = apus("topic", "echo", "dataflow", "sensor", "--count", "1")
    assert malformed.returncode != 0 and "write NODE/OUTPUT" in malformed.stderr, malformed
    run = stop(dataflow)
    assert run.status == 0, run
    dataflow.expect_clean()


def test_topic_list_shows_every_output_with_type_shape_rate_and_subscribers(dataflow):
    dataflow.write("sensor.py", SENSOR).write("sink.py", SINK)
    dataflow.start(TYPED)
    wait_until(running("sensor", "sink"), what="the dataflow running")
    listed = apus("topic", "list", "dataflow", "--window", "2", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["topic"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == {"sensor/matrix", "sensor/text", "sensor/raw"}, rows
    assert rows["sensor/matrix"]["type"] == "float32" and rows["sensor/matrix"]["shape"] == [2, 3], rows
    assert rows["sensor/text"]["type"] == "utf8" and rows["sensor/matrix"]["subscribers"] == ["sink/matrix"], rows
    assert all(40 <= row["rate"] <= 60 for row in rows.values()), rows  # a 50 Hz timer
    table = apus("topic", "list", "dataflow", "--window", "0.5")
    assert table.stdout.splitlines()[0].split() == ["TOPIC", "TYPE", "SHAPE", "RATE", "SUBSCRIBERS"], table.stdout
    run = stop(dataflow)
    assert run.status == 0, run
    dataflow.expect_clean()


def test_hz_on_a_100_hz_timer_output_reports_100_hz_within_2_percent(dataflow):
    dataflow.start(f"""
nodes:
  - id: source
    path: {TEST_NODE}
    args: --send 100000 --on-tick
    inputs: {{ tick: apus/timer/millis/10 }}
    outputs: [out]
""")
    wait_until(running("source"), what="the source running")
    measured = apus("topic", "hz", "dataflow", "source/out", "--duration", "3.5", "--window", "200", "--json")
    assert measured.returncode == 0, measured.stderr
    reports = [json.loads(line) for line in measured.stdout.splitlines()]
    assert len(reports) >= 3, measured.stdout
    last = reports[-1]
    assert abs(last["rate"] - 100) <= 2, last
    assert last["messages"] == 200 and last["min_period"] <= 0.0101 <= last["max_period"] + 0.0002, last
    assert last["bytes_per_second"] > 0, last
    text = apus("topic", "hz", "dataflow", "source/out", "--duration", "1.5")
    assert "average rate: " in text.stdout and "std dev: " in text.stdout and "bandwidth: " in text.stdout, text.stdout
    run = stop(dataflow)
    assert run.status == 0, run
    dataflow.expect_clean()


def test_a_killed_inspector_gives_back_what_it_held_and_slows_nobody(dataflow):
    """A stopped inspector's drop_oldest queue fills without slowing the producer; SIGKILL then
    reclaims its queue and held samples: the producer's pools are all free again."""
    dataflow.write("producer.py", """
import numpy as np
from apus import Node
node = Node()
sent = 0
for event in node:
    if event.type == "INPUT" and sent < 300:
        node.send_output("frame", np.full(65536, sent % 256, dtype=np.uint8))
        sent += 1
        if sent == 300:
            print("sent all", flush=True)
    elif event.type == "STOP":
        break
""").write("sink.py", """
from apus import Node
count = 0
for event in Node():
    if event.type == "INPUT":
        count += 1
        event.release()  # holds nothing between messages: the pools empty when the producer stops
    elif event.type == "STOP":
        break
print(f"sink got {count}")
""")
    dataflow.start("""
nodes:
  - id: producer
    path: producer.py
    inputs: { tick: apus/timer/millis/5 }
    outputs: [frame]
  - id: sink
    path: sink.py
    inputs: { frame: { source: producer/frame, queue_policy: backpressure } }
""")
    wait_until(running("producer", "sink"), what="the dataflow running")
    echo = subprocess.Popen([str(APUS), "topic", "echo", "dataflow", "producer/frame", "--queue-size", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert echo.stdout.readline().startswith("producer/frame  t="), "the inspector printed no message"
    echo.send_signal(signal.SIGSTOP)  # a stuck inspector: its queue fills, the producer goes on
    time.sleep(0.5)
    inspector = [node for node in snapshot().values() if node["origin"] == "inspector" and node["status"] == "running"]
    assert len(inspector) == 1 and inspector[0]["inputs"][0]["queued"] == 8, inspector
    assert inspector[0]["inputs"][0]["dropped"] > 0, inspector  # its own drops, counted as its own
    echo.kill()
    echo.wait()
    wait_until(lambda: "sent all" in "".join(open(p).read() for p in glob.glob(str(dataflow.folder / "out/*/producer.log"))),
               what="the producer sending all 300")
    nodes = snapshot()
    wait_until(lambda: snapshot()["producer"]["pool_slots_in_use"] == 0, what="the producer's pools free")
    assert nodes["sink"]["inputs"][0]["dropped"] == 0, nodes
    left = [node for node in snapshot().values() if node["origin"] == "inspector"]
    assert left == [], left  # gone, its edge with it
    assert snapshot()["producer"]["outputs"][0]["subscribers"] == ["sink/frame"]
    run = stop(dataflow)
    assert run.status == 0, run
    assert "sink got 300" in run.lines("sink"), run
    dataflow.expect_clean()


def test_dora_dynamic_add_remove_with_other_nodes_counts_checked(dataflow):
    """dora's examples/dynamic-add-remove shape: a filter joins, its output is echoed by a later
    joiner, then it is removed. The receiver's backpressure input loses nothing."""
    shutil.copytree(DYNAMIC, dataflow.folder, dirs_exist_ok=True)
    dataflow.start((dataflow.folder / "dataflow.yml").read_text(), "--no-build")
    wait_until(running("sender", "receiver"), what="the dataflow running")
    added = apus("node", "add", "dataflow", str(dataflow.folder / "filter-node.yml"))
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("added node 'filter' to dataflow"), added.stdout
    wait_until(running("filter"), what="the filter running")
    echoed = apus("topic", "echo", "dataflow", "filter/output", "--count", "3", "--json")
    assert echoed.returncode == 0, echoed.stderr
    values = [json.loads(line)["preview"][0] for line in echoed.stdout.splitlines()]
    assert len(values) == 3 and all(value % 2 == 0 for value in values), values
    assert values == list(range(values[0], values[0] + 6, 2)), values
    assert snapshot()["sender"]["outputs"][0]["subscribers"] == ["receiver/value", "filter/input"]
    removed = apus("node", "remove", "dataflow", "filter")
    assert removed.returncode == 0 and removed.stdout.strip() == "removed node 'filter' from dataflow", removed
    nodes = snapshot()
    assert nodes["filter"]["status"] == "removed" and nodes["filter"]["origin"] == "added", nodes
    assert nodes["sender"]["outputs"][0]["subscribers"] == ["receiver/value"], nodes
    again = apus("node", "remove", "dataflow", "filter")
    assert again.returncode == 1 and "no running node 'filter'" in again.stderr, again
    run = dataflow.wait()
    assert run.status == 0, run
    assert "receiver: 250 values, none missing" in run.lines("receiver"), run
    (filtered,) = [line for line in run.lines("filter") if line.startswith("filter: first ")]
    first, passed, dropped = (int(word.rstrip(",")) for word in filtered.split()[2::2])
    assert first > 1 and passed >= 3 and abs(passed - dropped) <= 1, filtered  # joined late; took every value since
    assert "node 'filter' removed" in run.stderr and "failed" not in run.stderr, run
    dataflow.expect_clean()


def test_a_node_that_cannot_join_gets_file_line_errors(dataflow):
    shutil.copytree(DYNAMIC, dataflow.folder, dirs_exist_ok=True)
    dataflow.start((dataflow.folder / "dataflow.yml").read_text(), "--no-build")
    wait_until(running("sender", "receiver"), what="the dataflow running")
    cases = {
        "unknown-source.yml": ("id: filter\npath: filter.py\ninputs:\n  input: nobody/value\n",
                               "unknown-source.yml:4:10: node 'filter': input 'input': source 'nobody/value' names no node"),
        "duplicate.yml": ("id: receiver\npath: filter.py\n",
                          "duplicate.yml:1:5: node 'receiver': key 'id': duplicate id: the running dataflow already has a node 'receiver'"),
        "bad-key.yml": ("id: filter\npath: filter.py\ncolour: red\n", "bad-key.yml:3:1: node 'filter': unknown key 'colour'"),
        "missing-path.yml": ("id: filter\npath: nowhere.py\n", "missing-path.yml:2:7: node 'filter': key 'path':"),
        "list.yml": ("- id: filter\n", "list.yml:1:1: expected one node: a mapping with 'id' and 'path' at the top level"),
    }
    for name, (text, expected) in cases.items():
        (dataflow.folder / name).write_text(text)
        refused = apus("node", "add", "dataflow", str(dataflow.folder / name))
        assert refused.returncode == 1, refused
        assert expected in refused.stderr.replace(str(dataflow.folder) + "/", ""), refused.stderr
        assert refused.stderr.rstrip().endswith("the node was not added"), refused.stderr
    missing = apus("node", "add", "dataflow", str(dataflow.folder / "absent.yml"))
    assert missing.returncode == 1 and "absent.yml: no such file" in missing.stderr, missing
    # The same checks as `apus check`: nothing joined, and the run carries on to its end.
    assert set(snapshot()) == {"sender", "receiver"}
    run = dataflow.wait()
    assert run.status == 0 and "receiver: 250 values, none missing" in run.lines("receiver"), run
    dataflow.expect_clean()


def test_hostile_requests_on_the_run_socket_change_nothing(dataflow):
    shutil.copytree(DYNAMIC, dataflow.folder, dirs_exist_ok=True)
    dataflow.start((dataflow.folder / "dataflow.yml").read_text(), "--no-build")
    wait_until(running("sender", "receiver"), what="the dataflow running")
    (path,) = [p for p in glob.glob(f"/tmp/apus-{os.getuid()}/runs/*.sock") + glob.glob(
        f"{os.environ.get('XDG_RUNTIME_DIR', '/nonexistent')}/apus/runs/*.sock")
        if json.load(open(p[:-5] + ".json"))["name"] == "dataflow"]

    def frame(body):
        return struct.pack("<I", len(body)) + body

    def exactly(client, count):
        data = b""
        while len(data) < count and (chunk := client.recv(count - len(data))):
            data += chunk
        return data

    def receive(client):
        header = exactly(client, 4)
        return exactly(client, struct.unpack("<I", header)[0]) if len(header) == 4 else b""

    answers = []
    for request in (b"attach\n{not json", b"attach\n" + json.dumps({"name": "x", "sources": [], "queueSize": 4}).encode(),
                    b"attach\n" + json.dumps({"name": "x", "sources": ["sender/value"], "queueSize": 0}).encode(),
                    b"attach\n" + json.dumps({"name": "x", "sources": ["sender/value/../x"], "queueSize": 4}).encode(),
                    b"add\n" + json.dumps({"file": "f.yml", "directory": "/", "yaml": "\x00\xff: ["}).encode(),
                    b"remove\n\xff\xfe", b"remove\nsender/../x", b"launch\n{}", b"\xff" * 70):
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(path)
            client.sendall(frame(request))
            answers.append(receive(client).decode(errors="replace"))
    assert all(answer.startswith("error\n") for answer in answers), answers
    # An attach that is accepted, then hostile bytes in place of the node protocol: it is let go.
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(5)
        client.connect(path)
        client.sendall(frame(b"attach\n" + json.dumps({"name": "x", "sources": ["sender/value"], "queueSize": 4}).encode()))
        assert receive(client).startswith(b"ok\n")
        client.sendall(frame(b"\x63garbage") + b"\xff" * 100)
        time.sleep(0.3)
    wait_until(lambda: not any(node["origin"] == "inspector" for node in snapshot().values()),
               what="the hostile inspector let go")
    run = dataflow.wait()
    assert run.status == 0 and "receiver: 250 values, none missing" in run.lines("receiver"), run
    dataflow.expect_clean()


def test_a_dataflow_in_the_daemon_is_found_by_its_name(tmp_path):
    """`apus start --name demo`: topic, node and top find it as `demo`, like a foreground run."""
    shutil.copytree(DYNAMIC, tmp_path / "flow")
    environment = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path))
    shm_before = set(os.listdir("/dev/shm"))

    def daemon(*arguments):
        return subprocess.run([str(APUS), *arguments], capture_output=True, text=True, timeout=60, env=environment)

    assert daemon("up").returncode == 0
    try:
        started = daemon("start", str(tmp_path / "flow" / "dataflow.yml"), "--name", "demo")
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + 30
        while daemon("topic", "echo", "demo", "sender/value", "--count", "1", "--duration", "2").stdout == "":
            assert time.monotonic() < deadline, "the dataflow in the daemon never ran"
        echoed = daemon("topic", "echo", "demo", "sender/value", "--count", "2", "--json")
        assert echoed.returncode == 0 and len(echoed.stdout.splitlines()) == 2, echoed
        added = daemon("node", "add", "--from-yaml", str(tmp_path / "flow" / "filter-node.yml"), "--dataflow", "demo")
        assert added.returncode == 0, added.stderr
        deadline = time.monotonic() + 30
        while "filter/input" not in daemon("topic", "list", "demo", "--window", "0.3").stdout:
            assert time.monotonic() < deadline, "the filter never joined"
        removed = daemon("node", "remove", "demo", "filter")
        assert removed.returncode == 0, removed.stderr
        assert daemon("stop", "demo").returncode == 0
    finally:
        assert daemon("down").returncode == 0
    assert set(os.listdir("/dev/shm")) - shm_before == set()
