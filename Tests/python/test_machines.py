"""Dataflows across machines: each "machine" is a network namespace with its own `apus daemon
--machine NAME`, joined to the others through a bridge in a namespace of its own, and the
dataflow is started with `apus run` in one of them. Real Cyclone DDS over real veth links."""
import json
import os
import re
import signal
import subprocess
import textwrap
import time
import uuid

import pytest

from conftest import APUS, BUILD, REPO, Dataflow

CYCLONE = "/usr/lib/x86_64-linux-gnu/libddsc.so.0debian"


def ip(*arguments):
    subprocess.run(["ip", *arguments], check=True, capture_output=True, text=True)


class Machines:
    """Network namespaces, one per machine name, on one bridge; a daemon in each but the first
    (the machine `apus run` runs on, `local`)."""

    def __init__(self, folder, names):
        self.folder, self.names = folder, names
        self.tag = uuid.uuid4().hex[:6]
        self.test_tag = f"apus-pytest-{uuid.uuid4()}"
        self.spaces = {}
        self.daemons = {}
        self.env = {}
        self.switch = f"apus-{self.tag}-switch"
        try:
            ip("netns", "add", self.switch)
        except (OSError, subprocess.CalledProcessError) as error:
            pytest.skip(f"network namespaces cannot be made here (root and iproute2 needed): {error}")
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")
        for index, name in enumerate(names):
            space = f"apus-{self.tag}-{name}"
            ip("netns", "add", space)
            self.spaces[name] = space
            inside, outside = f"m{self.tag}{index}", f"s{self.tag}{index}"
            ip("link", "add", inside, "type", "veth", "peer", "name", outside)
            ip("link", "set", inside, "netns", space)
            ip("link", "set", outside, "netns", self.switch)
            ip("-n", self.switch, "link", "set", outside, "master", "br0")
            ip("-n", self.switch, "link", "set", outside, "up")
            ip("-n", space, "addr", "add", f"10.213.0.{index + 1}/24", "dev", inside)
            ip("-n", space, "link", "set", inside, "up")
            ip("-n", space, "link", "set", "lo", "up")

    def cut(self, name, seconds, during=None):
        """Takes `name`'s link down for `seconds`: a network partition that heals. `during` is
        called once the link is down."""
        index = self.names.index(name)
        ip("-n", self.spaces[name], "link", "set", f"m{self.tag}{index}", "down")
        if during:
            during()
        time.sleep(seconds)
        ip("-n", self.spaces[name], "link", "set", f"m{self.tag}{index}", "up")

    def environment(self, name):
        runtime = self.folder / f"xdg-{name}"
        runtime.mkdir(exist_ok=True, mode=0o700)
        return dict(os.environ, XDG_RUNTIME_DIR=str(runtime), APUS_TEST_TAG=self.test_tag, **self.env)

    def start_daemon(self, name, *arguments, machine=None):
        log = open(self.folder / f"daemon-{name}.log", "w")
        self.daemons[name] = subprocess.Popen(
            ["ip", "netns", "exec", self.spaces[name], str(APUS), "daemon", "--machine", machine or name, *arguments],
            env=self.environment(name),
            stdout=log, stderr=subprocess.STDOUT)
        return self.daemons[name]

    def daemon_log(self, name):
        return (self.folder / f"daemon-{name}.log").read_text()

    def start_run(self, name, file):
        """`apus run file` on machine `name`, running on (pipes for its output)."""
        return subprocess.Popen(["ip", "netns", "exec", self.spaces[name], str(APUS), "run", file, "--no-color"],
                                cwd=self.folder, env=self.environment(name), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def apus(self, name, *arguments, timeout=120):
        """`apus ARGUMENTS...` on machine `name`, to its end."""
        return subprocess.run(["ip", "netns", "exec", self.spaces[name], str(APUS), *arguments], cwd=self.folder,
                              env=self.environment(name), capture_output=True, text=True, timeout=timeout)

    def run(self, name, file, *arguments, timeout=120):
        result = subprocess.run(["ip", "netns", "exec", self.spaces[name], str(APUS), "run", file, "--no-color", *arguments],
                                cwd=self.folder, env=self.environment(name), capture_output=True, text=True, timeout=timeout)
        return result

    def survivors(self):
        return Dataflow.survivors(self)

    def close(self):
        for process in self.daemons.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for pid in self.survivors():
            os.kill(pid, signal.SIGKILL)
        for space in list(self.spaces.values()) + [self.switch]:
            subprocess.run(["ip", "netns", "del", space], capture_output=True)


@pytest.fixture
def machines(tmp_path):
    if not os.path.exists(CYCLONE):
        pytest.fail("Cyclone DDS is not installed (apt-get install libddsc0debian cyclonedds-tools, as scripts/test does)")
    made = []

    def make(*names):
        made.append(Machines(tmp_path, list(names)))
        return made[-1]

    yield make
    for group in made:
        group.close()
    assert not any(group.survivors() for group in made), "processes of the run are left"


def lines(output, prefix):
    return [line[len(prefix):] for line in output.splitlines() if line.startswith(prefix)]


PRODUCER = textwrap.dedent('''
    import numpy as np
    import sys
    from apus import Node
    node = Node()
    count = int(sys.argv[1])
    for i in range(count):
        node.send_output("out", np.arange(6, dtype=np.float32).reshape(2, 3) + i, {"i": i, "name": "camera"})
    print("producer: sent", count)
''')

CHECKER = textwrap.dedent('''
    import numpy as np
    import sys
    import time
    from apus import Node
    count, got, bad, events, last = int(sys.argv[1]), 0, 0, [], 0
    pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0  # seconds per message, for the first 200
    for event in Node():
        if event.type == "INPUT":
            if got < 200:
                time.sleep(pause)
            value = event.value
            expected = np.arange(6, dtype=np.float32).reshape(2, 3) + got
            # Sent on another machine, in this clock: not in the future, in order.
            age, last, previous = time.monotonic_ns() - event.timestamp, event.timestamp, last
            bad += not (value.dtype == np.float32 and value.shape == (2, 3) and np.array_equal(value, expected)
                        and event.metadata == {"i": got, "name": "camera"} and 0 <= age < 5_000_000_000
                        and previous <= event.timestamp)
            got += 1
        else:
            events.append(event.type)
    print("checker:", "ok" if got == count and bad == 0 else "failed", got, bad, events)
''')


def producer_and_checker(folder, count, deploy, extra="", file="flow.yml"):
    """Writes `file`: PRODUCER here sending `count` typed arrays to CHECKER, placed by `deploy`,
    on a backpressure edge; `extra` adds nodes."""
    (folder / "producer.py").write_text(PRODUCER)
    (folder / "checker.py").write_text(CHECKER)
    (folder / file).write_text(f"""
nodes:
  - id: producer
    path: producer.py
    args: "{count}"
    outputs: [out]
  - id: checker
    deploy: {deploy}
    path: checker.py
    args: "{count}"
    inputs: {{in: {{source: producer/out, queue_policy: backpressure}}}}
{extra}""")


def test_two_machines_typed_arrays_and_metadata_every_message(machines, tmp_path):
    group = machines("A", "B")
    producer_and_checker(tmp_path, 20000, "{machine: B}")
    group.start_daemon("B")
    started = time.monotonic()
    run = group.run("A", "flow.yml")
    assert run.returncode == 0, run
    assert "checker: ok 20000 0 ['INPUT_CLOSED', 'STOP']" in lines(run.stdout, "[B/checker] "), run
    assert "producer: sent 20000" in lines(run.stdout, "[producer] "), run
    assert time.monotonic() - started < 60


def test_labels_choose_the_machine_a_node_runs_on(machines, tmp_path):
    group = machines("A", "B", "C")
    producer_and_checker(tmp_path, 500, "{labels: {gpu: true, arch: x86_64}}")
    (tmp_path / "tpu.yml").write_text((tmp_path / "flow.yml").read_text().replace("gpu: true", "gpu: tpu"))
    group.start_daemon("B", "--label", "gpu=false", "--label", "arch=x86_64")
    group.start_daemon("C", "--label", "gpu=true", "--label", "arch=x86_64")
    # Only C has both labels.
    run = group.run("A", "flow.yml")
    assert run.returncode == 0, run
    assert "apus: node 'checker' runs on machine 'C' (its labels)" in run.stderr, run
    assert "checker: ok 500 0 ['INPUT_CLOSED', 'STOP']" in lines(run.stdout, "[C/checker] "), run
    # This machine has them too: the node runs here, and no other machine is asked.
    run = group.run("A", "flow.yml", "--label", "gpu=true", "--label", "arch=x86_64")
    assert run.returncode == 0, run
    assert "checker: ok 500 0 ['INPUT_CLOSED', 'STOP']" in lines(run.stdout, "[checker] "), run
    assert group.daemon_log("C").count("started its part") == 1 and "started its part" not in group.daemon_log("B")
    # No machine has them: the run says what each has, before anything starts.
    run = group.run("A", "tpu.yml", "--discovery-timeout", "2s")
    assert run.returncode == 1, run
    assert ("node 'checker': no machine has labels {arch=x86_64, gpu=tpu} "
            "(machines: 'local' {}, 'B' {arch=x86_64, gpu=false}, 'C' {arch=x86_64, gpu=true}); nothing was started") in run.stderr, run
    bad = group.run("A", "flow.yml", "--label", "gpu")
    assert bad.returncode != 0 and "--label 'gpu': expected KEY=VALUE" in bad.stderr, bad


def test_background_daemons_start_list_and_show_the_logs_of_a_dataflow_across_machines(machines, tmp_path):
    group = machines("A", "B")
    producer_and_checker(tmp_path, 300, '{labels: {gpu: "true"}}')
    try:
        assert group.apus("A", "up").returncode == 0
        up = group.apus("B", "up", "--machine", "B", "--label", "gpu=true")
        assert up.returncode == 0, up
        started = group.apus("A", "start", "flow.yml", "--name", "demo", "--machine", "A", "--attach")
        assert started.returncode == 0, started
        assert "checker: ok 300 0 ['INPUT_CLOSED', 'STOP']" in lines(started.stdout, "[B/checker] "), started
        # Where it was started: the dataflow, and every machine's lines, by node.
        listed = json.loads(group.apus("A", "list", "--json").stdout)
        assert [(d["name"], d["status"], d["nodes"]) for d in listed] == [("demo", "finished", 2)], listed
        logs = group.apus("A", "logs", "demo", "checker")
        assert logs.stdout.splitlines() == ["checker: ok 300 0 ['INPUT_CLOSED', 'STOP']"], logs
        assert "producer: sent 300" in group.apus("A", "logs", "demo").stdout
        # On B: its part, named after the run and the machine that started it, with its own log.
        listed = json.loads(group.apus("B", "list", "--json").stdout)
        assert [(d["name"], d["status"], d["nodes"]) for d in listed] == [("demo@A", "finished", 1)], listed
        assert group.apus("B", "logs", "demo@A", "checker").stdout.splitlines() == ["checker: ok 300 0 ['INPUT_CLOSED', 'STOP']"]
        assert "needs --machine" in group.apus("B", "up", "--label", "gpu=true").stderr
    finally:
        for name in ("A", "B"):
            group.apus(name, "down", "--force")


def test_a_run_across_machines_is_recorded_whole_where_it_started(machines, tmp_path):
    from mcap.reader import make_reader
    group = machines("A", "B")
    # B's own producer is read by no node: only the recorder, on A, takes its messages.
    producer_and_checker(tmp_path, 300, "{machine: B}", extra="""  - id: far
    deploy: {machine: B}
    path: producer.py
    args: "250"
    outputs: [out]
""")
    group.start_daemon("B")
    run = group.run("A", "flow.yml", "--record", "run.mcap")
    assert run.returncode == 0, run
    assert "checker: ok 300 0 ['INPUT_CLOSED', 'STOP']" in lines(run.stdout, "[B/checker] "), run
    with open(tmp_path / "run.mcap", "rb") as file:
        reader = make_reader(file, validate_crcs=True)
        summary = reader.get_summary()
        topics = {channel.id: channel.topic for channel in summary.channels.values()}
        counts = {topics[id]: count for id, count in summary.statistics.channel_message_counts.items()}
        assert counts == {"producer/out": 300, "far/out": 250}, counts
        # In order, each with its metadata, as sent on B.
        seen = [json.loads(message.data)["values"][0] for _, _, message in reader.iter_messages(topics=["far/out"])]
        assert seen == [float(i) for i in range(250)], seen[:5]


def test_two_daemons_announcing_one_machine_fail_the_run_before_anything_starts(machines, tmp_path):
    group = machines("A", "B", "C")
    (tmp_path / "checker.py").write_text(CHECKER)
    (tmp_path / "flow.yml").write_text("""
nodes:
  - id: checker
    deploy: {machine: B}
    path: checker.py
    args: "0"
""")
    group.start_daemon("B")
    group.start_daemon("C", machine="B")
    time.sleep(2)
    run = group.run("A", "flow.yml")
    assert run.returncode == 1, run
    assert "2 daemons announce machine 'B' on DDS domain 0: each would start its part; stop all but one" in run.stderr, run
    assert "nothing was started" in run.stderr, run
    assert "another daemon announces machine 'B' too" in group.daemon_log("B") + group.daemon_log("C")
    assert "started its part" not in group.daemon_log("B") + group.daemon_log("C")


def test_machines_find_each_other_on_a_domain_through_peers_without_multicast(machines, tmp_path):
    group = machines("A", "B")
    # Cyclone's own configuration, as on a network without multicast: each machine names the others,
    # and each process takes a participant index (its ports), which is where the peers look.
    group.env["CYCLONEDDS_URI"] = ("<General><AllowMulticast>false</AllowMulticast></General>"
                                   "<Discovery><ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>50</MaxAutoParticipantIndex>"
                                   "<Peers><Peer Address='10.213.0.1'/><Peer Address='10.213.0.2'/></Peers></Discovery>")
    producer_and_checker(tmp_path, 100, "{machine: B}", file="my flow.yml")
    group.start_daemon("B", "--dds-domain", "7")
    run = group.run("A", "my flow.yml", "--dds-domain", "7")
    assert run.returncode == 0, run
    assert "checker: ok 100 0 ['INPUT_CLOSED', 'STOP']" in lines(run.stdout, "[B/checker] "), run
    assert "started its part 'my_flow@local'" in group.daemon_log("B")  # a name the daemon lists
    # Another domain is another network: B is not there.
    run = group.run("A", "my flow.yml", "--dds-domain", "8", "--discovery-timeout", "2s")
    assert run.returncode == 1 and "no daemon for machine 'B' on DDS (waited 2.0 s)" in run.stderr, run


def test_a_machine_without_a_daemon_fails_the_run_before_anything_starts(machines, tmp_path):
    group = machines("A", "B")
    (tmp_path / "checker.py").write_text(CHECKER)
    (tmp_path / "started.py").write_text("open('started', 'w').write('yes')\n")
    (tmp_path / "flow.yml").write_text("""
nodes:
  - id: here
    path: started.py
  - id: checker
    deploy: {machine: gpu}
    path: checker.py
    args: "1"
    inputs: {in: here/nothing}
""".replace("inputs: {in: here/nothing}", "inputs: {}"))
    started = time.monotonic()
    run = group.run("A", "flow.yml", "--discovery-timeout", "2s")
    assert run.returncode == 1, run
    assert "no daemon for machine 'gpu' on DDS (waited 2.0 s): start `apus daemon --machine NAME` there" in run.stderr, run
    assert "nothing was started" in run.stderr, run
    assert not (tmp_path / "started").exists()
    assert time.monotonic() - started < 20



def test_a_machine_whose_part_fails_stops_the_run_at_once_saying_why(machines, tmp_path):
    # B cannot start its part (the working_dir is missing there): the producer here would wait
    # for a reader that never comes; the run stops at once instead, naming the machine and why.
    group = machines("A", "B")
    producer_and_checker(tmp_path, 100, "{machine: B, working_dir: /nonexistent/apus-test}")
    group.start_daemon("B")
    started = time.monotonic()
    run = group.run("A", "flow.yml")
    assert run.returncode == 1, run
    reason = "cannot write the dataflow into /nonexistent/apus-test (it must exist on this machine too)"
    assert f"[B] apus: machine 'B': {reason}" in run.stdout, run
    assert "apus: stopping: machine 'B': its part exited with status 1" in run.stdout + run.stderr, run
    assert "apus: machine 'B': its part exited with status 1" in run.stderr, run
    assert "Usage" not in run.stdout + run.stderr, run
    assert time.monotonic() - started < 15, run
    assert reason in group.daemon_log("B")


def test_hostile_requests_over_dds_are_refused_and_the_daemon_goes_on(machines, tmp_path):
    # A broken or hostile host on the network sends B's daemon what no run would: bytes that are
    # no request, a request for another daemon of B, and well-formed requests with an option for a
    # machine name, a relative path, a placement that is no NODE=MACHINE. Each is logged and
    # refused; nothing is written or started; a real run then passes.
    group = machines("A", "B")
    producer_and_checker(tmp_path, 100, "{machine: B}")
    group.start_daemon("B")
    deadline = time.monotonic() + 10
    while not (found := re.search(r"as daemon ([0-9a-f-]+)", group.daemon_log("B"))):
        assert time.monotonic() < deadline, group.daemon_log("B")
        time.sleep(0.1)
    start = {"kind": "start", "yaml": "nodes: [{id: x, path: /bin/true, deploy: {machine: B}}]", "file": str(tmp_path / "evil.yml"),
             "instance": found.group(1)}
    requests = {
        "garbage": b"\xff\x00 not json",
        "elsewhere": dict(start, run="e0", local="A", instance="1-a"),
        "option": dict(start, run="e1", local="--record"),
        "relative": dict(start, run="e2", local="A", file="evil.yml"),
        "placement": dict(start, run="e3", local="A", placements="x=-B"),
    }
    for name, request in requests.items():
        (tmp_path / name).write_bytes(request if isinstance(request, bytes) else json.dumps(request).encode())
    send = subprocess.run(["ip", "netns", "exec", group.spaces["A"], str(BUILD / "apus-dds-send"), "0", "B", *requests],
                          cwd=tmp_path, env=group.environment("A"), capture_output=True, text=True, timeout=60)
    assert send.returncode == 0, send
    deadline = time.monotonic() + 10
    while group.daemon_log("B").count("refused the request to start its part") < 3:
        assert time.monotonic() < deadline, group.daemon_log("B")
        time.sleep(0.1)
    log = group.daemon_log("B")
    assert "ignored a malformed request of 11 bytes" in log, log
    assert "run e0: ignored a start request for another daemon of machine 'B' (1-a)" in log
    assert "run e1: refused the request to start its part: the machine that started it, '--record', is not a machine name" in log
    assert "run e2: refused the request to start its part: the dataflow's path 'evil.yml'" in log
    assert "run e3: refused the request to start its part: its placements are not NODE=MACHINE lines" in log
    assert "started its part" not in log
    assert not list(tmp_path.glob(".evil.yml.*"))
    run = group.run("A", "flow.yml")
    assert run.returncode == 0, run
    assert "checker: ok 100 0 ['INPUT_CLOSED', 'STOP']" in lines(run.stdout, "[B/checker] "), run


ENDLESS = textwrap.dedent('''
    import time
    from apus import Node
    node = Node()
    i = 0
    while True:
        node.send_output("out", str(i))
        i += 1
        time.sleep(0.01)
''')

def wait_for_log(folder, node, text, seconds=30):
    """Waits until the log file of `node` in a run in `folder` (any machine's) has `text`."""
    deadline = time.monotonic() + seconds
    while not (folder / "out").exists() or text not in "".join(
            path.read_text() for path in (folder / "out").glob(f"*/{node}.log")):
        assert time.monotonic() < deadline, f"{node} never printed {text!r}"
        time.sleep(0.1)


WATCHER = textwrap.dedent('''
    import time
    from apus import Node
    got, failed = 0, None
    for event in Node():
        if event.type == "INPUT":
            got += 1
            if got == 20:
                print("watcher: receiving", flush=True)
        elif event.type == "NODE_FAILED":
            failed = time.monotonic()
            print("watcher: NODE_FAILED", event.id, event.message, flush=True)
        elif event.type == "INPUT_CLOSED":
            print("watcher: INPUT_CLOSED", event.id, flush=True)
    print("watcher: done", got)
''')


def test_killing_a_machines_daemon_fails_its_nodes_on_the_others_and_ends_the_run(machines, tmp_path):
    group = machines("A", "B")
    (tmp_path / "endless.py").write_text(ENDLESS)
    (tmp_path / "watcher.py").write_text(WATCHER)
    (tmp_path / "flow.yml").write_text("""
nodes:
  - id: source
    deploy: {machine: B}
    path: endless.py
    outputs: [out]
  - id: watcher
    path: watcher.py
    inputs: {in: source/out}
""")
    daemon = group.start_daemon("B")
    process = group.start_run("A", "flow.yml")
    wait_for_log(tmp_path, "watcher", "watcher: receiving")
    killed = time.monotonic()
    daemon.send_signal(signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=60)
    ended = time.monotonic() - killed
    # The stand-in for `source` fails, saying why; its consumers get NODE_FAILED, then INPUT_CLOSED.
    assert "[source] apus: machine 'B' lost: 'source/out' has no live writer (DDS liveliness lost" in stdout, (stdout, stderr)
    assert "watcher: NODE_FAILED source node 'source' exited with status 1" in stdout, (stdout, stderr)
    assert "watcher: INPUT_CLOSED in" in stdout, (stdout, stderr)
    assert "apus: machine 'B': lost" in stderr, (stdout, stderr)
    assert process.returncode == 1
    # The DDS lease is 2 s; the run's end follows within the grace period.
    assert ended < 20, ended


TICKER = textwrap.dedent('''
    from apus import Node
    node = Node()
    sent = 0
    for event in node:
        if event.type == "INPUT":
            node.send_output("out", str(sent))
            sent += 1
    print("ticker: stopped after", sent, flush=True)
''')


def test_a_machine_lost_while_only_sent_to_ends_the_run_and_its_restarted_daemon_starts_nothing_of_it(machines, tmp_path):
    # Only A sends to B: nothing here reads from B, so no stand-in fails. The run still ends, 2 s
    # after the machine is seen lost, and B's daemon, restarted at once, does not start the run's
    # part again from the request still on the network (it was for the daemon that died).
    group = machines("A", "B")
    (tmp_path / "ticker.py").write_text(TICKER)
    (tmp_path / "watcher.py").write_text(WATCHER)
    (tmp_path / "flow.yml").write_text("""
nodes:
  - id: ticker
    path: ticker.py
    inputs: {tick: apus/timer/millis/5}
    outputs: [out]
  - id: watcher
    deploy: {machine: B}
    path: watcher.py
    inputs: {in: ticker/out}
""")
    daemon = group.start_daemon("B")
    process = group.start_run("A", "flow.yml")
    wait_for_log(tmp_path, "watcher", "watcher: receiving")
    daemon.send_signal(signal.SIGKILL)
    daemon.wait()
    killed = time.monotonic()
    (tmp_path / "daemon-B.log").rename(tmp_path / "daemon-B-killed.log")
    group.start_daemon("B")
    stdout, stderr = process.communicate(timeout=60)
    ended = time.monotonic() - killed
    assert process.returncode == 1, (stdout, stderr)
    assert "apus: stopping: machine 'B': lost: its daemon stopped answering (DDS liveliness)" in stderr, (stdout, stderr)
    assert "ticker: stopped after" in stdout, (stdout, stderr)
    assert "apus: machine 'B': lost: its daemon stopped answering" in stderr, (stdout, stderr)
    assert ended < 15, ended
    log = group.daemon_log("B")
    assert "ignored a start request for another daemon of machine 'B'" in log, log
    assert "started its part" not in log, log


SLOW = textwrap.dedent('''
    import time
    from apus import Node
    got = 0
    for event in Node():
        if event.type == "INPUT":
            got += 1
            time.sleep(0.002)
    print("slow: got", got)
''')


def test_a_slow_reader_of_a_backpressure_edge_gets_every_message_in_order(machines, tmp_path):
    # B's stand-in passes messages on from Cyclone's receive thread while the reader's queue (2)
    # has room, and from its own thread, waiting, while it is full; the reader is slow for 200
    # messages, then fast: switching both ways loses, repeats and reorders nothing.
    group = machines("A", "B")
    (tmp_path / "producer.py").write_text(PRODUCER)
    (tmp_path / "checker.py").write_text(CHECKER)
    (tmp_path / "flow.yml").write_text("""
nodes:
  - id: producer
    path: producer.py
    args: "2000"
    outputs: [out]
  - id: checker
    deploy: {machine: B}
    path: checker.py
    args: "2000 0.002"
    inputs: {in: {source: producer/out, queue_policy: backpressure, queue_size: 2}}
""")
    group.start_daemon("B")
    run = group.run("A", "flow.yml")
    assert run.returncode == 0, run
    assert "checker: ok 2000 0" in lines(run.stdout, "[B/checker] ")[-1], run
    assert "dropped" not in run.stdout + run.stderr, run


def test_a_drop_oldest_edge_reports_what_it_dropped(machines, tmp_path):
    group = machines("A", "B")
    (tmp_path / "producer.py").write_text(PRODUCER)
    (tmp_path / "slow.py").write_text(SLOW)
    (tmp_path / "flow.yml").write_text("""
nodes:
  - id: producer
    path: producer.py
    args: "3000"
    outputs: [out]
  - id: slow
    deploy: {machine: B}
    path: slow.py
    inputs:
      in: {source: producer/out, queue_size: 4}
""")
    group.start_daemon("B")
    run = group.run("A", "flow.yml")
    assert run.returncode == 0, run
    (got,) = [int(line.split()[-1]) for line in lines(run.stdout, "[B/slow] ") if line.startswith("slow: got")]
    reported = [int(number) for number in re.findall(r"(\d+) messages? dropped", run.stdout + run.stderr)]
    assert got < 3000 and reported, run
    assert got + sum(reported) == 3000, (got, reported, run)


STATUS_SINK = textwrap.dedent('''
    import sys
    from dora import Node
    seen = []
    for event in Node():
        if event["type"] == "INPUT":
            seen.append(bytes(event["value"].to_numpy()).decode())
    expected = [f"The current counter value is {n}" for n in range(1, 21)]
    print(sys.argv[1] + ":", "ok" if seen == expected else f"failed {seen}")
''')


def test_doras_multiple_daemons_topology_with_c_and_python_nodes(machines, tmp_path):
    """dora's examples/multiple-daemons, its Rust nodes written in C and Python: a node and a
    runtime node (a C operator) on A, and a sink on B taking the operator's output, which a sink
    on A takes too; every message checked on both."""
    group = machines("A", "B")
    dora = REPO / "Tests" / "CNodes" / "dora"
    flags = "-std=c99 -Wall -Wextra -Werror -I$(apus config --include-dir)/dora"
    (tmp_path / "sink.py").write_text(STATUS_SINK)
    # Machine B runs in its working_dir, where its sink.py is found.
    (tmp_path / "b-side").mkdir()
    (tmp_path / "b-side" / "sink.py").write_text(STATUS_SINK.replace('"ok"', '"ok from b-side"'))
    (tmp_path / "flow.yml").write_text(f"""
nodes:
  - id: c-node
    _unstable_deploy: {{machine: A, local: true}}
    build: gcc {flags} -o dora_node {dora}/node.c $(apus config --libs)
    path: ./dora_node
    inputs: {{tick: dora/timer/millis/10}}
    outputs: [counter, message]
  - id: runtime-node
    _unstable_deploy: {{machine: A, local: true}}
    operators:
      - id: c-operator
        build: gcc {flags} -shared -fPIC -o liboperator.so {dora}/operator.c
        shared-library: ./operator
        inputs: {{message: c-node/message}}
        outputs: [counter]
  - id: sink
    _unstable_deploy: {{machine: B, working_dir: {tmp_path / "b-side"}}}
    path: sink.py
    args: remote
    inputs: {{status: {{source: runtime-node/c-operator/counter, queue_policy: backpressure}}}}
  - id: local-sink
    path: sink.py
    args: local
    inputs: {{status: {{source: runtime-node/c-operator/counter, queue_policy: backpressure}}}}
""")
    group.start_daemon("B")
    run = group.run("A", "flow.yml", timeout=180)
    assert run.returncode == 0, run
    assert "remote: ok from b-side" in lines(run.stdout, "[B/sink] "), run
    assert "local: ok" in lines(run.stdout, "[local-sink] "), run


RELAY = textwrap.dedent('''
    from apus import Node
    node = Node()
    for event in node:
        if event.type == "INPUT":
            node.send_output("out", event.value, dict(event.metadata, via="B"))
''')

BOTH = textwrap.dedent('''
    import numpy as np
    from apus import Node
    got = {"direct": 0, "relayed": 0}
    bad = 0
    for event in Node():
        if event.type == "INPUT":
            i = got[event.id]
            expected = {"i": i, "name": "camera"} | ({"via": "B"} if event.id == "relayed" else {})
            value = event.value
            bad += not (value.dtype == np.float32 and value.shape == (2, 3) and value[0, 0] == i
                        and event.metadata == expected)
            got[event.id] += 1
    print("both:", "ok" if got == {"direct": 500, "relayed": 500} and bad == 0 else f"failed {got} {bad}")
''')


def test_three_machines_with_typed_arrays_and_metadata(machines, tmp_path):
    group = machines("A", "B", "C")
    for name, text in (("producer.py", PRODUCER), ("relay.py", RELAY), ("both.py", BOTH)):
        (tmp_path / name).write_text(text)
    (tmp_path / "flow.yml").write_text("""
nodes:
  - id: producer
    path: producer.py
    args: "500"
    outputs: [out]
  - id: relay
    deploy: {machine: B}
    path: relay.py
    inputs: {in: {source: producer/out, queue_policy: backpressure}}
    outputs: [out]
  - id: both
    deploy: {machine: C}
    path: both.py
    inputs:
      direct: {source: producer/out, queue_policy: backpressure}
      relayed: {source: relay/out, queue_policy: backpressure}
""")
    group.start_daemon("B")
    group.start_daemon("C")
    run = group.run("A", "flow.yml")
    assert run.returncode == 0, run
    assert "both: ok" in lines(run.stdout, "[C/both] "), run


BATCHES = textwrap.dedent('''
    import numpy as np
    from apus import Node
    node = Node()
    rows = np.zeros((1000, 8), dtype=np.uint64)
    for batch in range(100):
        rows[:, 0] = np.arange(batch * 1000, batch * 1000 + 1000)
        node.send_many("out", rows)
    print("batches: sent 100000")
''')

COUNTER = textwrap.dedent('''
    from apus import Node
    node = Node()
    expected = 0
    while (events := node.next_many(256)) is not None:
        for event in events:
            if event.type == "INPUT":
                if int(event.value[0]) != expected:
                    print("counter: out of order at", expected, int(event.value[0]))
                    raise SystemExit(1)
                expected += 1
    print("counter: got", expected)
''')


def test_a_backpressure_edge_loses_nothing_in_100000_messages(machines, tmp_path):
    group = machines("A", "B")
    (tmp_path / "batches.py").write_text(BATCHES)
    (tmp_path / "counter.py").write_text(COUNTER)
    (tmp_path / "flow.yml").write_text("""
nodes:
  - id: batches
    path: batches.py
    outputs: [out]
  - id: counter
    deploy: {machine: B}
    path: counter.py
    inputs: {in: {source: batches/out, queue_policy: backpressure, queue_size: 256}}
""")
    group.start_daemon("B")
    started = time.monotonic()
    run = group.run("A", "flow.yml", timeout=300)
    assert run.returncode == 0, run
    assert "counter: got 100000" in lines(run.stdout, "[B/counter] "), run
    assert "dropped" not in run.stdout + run.stderr, run
    print(f"100,000 messages across machines in {time.monotonic() - started:.1f} s")


def test_apus_declarations_of_cyclone_dds_match_its_headers():
    """Apus loads libddsc at run time with its own declarations (Sources/CApusDDS): the C compiler
    checks their layouts and constants against Cyclone's headers (Tests/CNodes/dds_abi.c)."""
    if not os.path.exists("/usr/include/dds/dds.h"):
        pytest.fail("Cyclone DDS's headers are missing (apt-get install cyclonedds-dev, as scripts/test does)")
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-fsyntax-only", f"-I{REPO}/Sources/CApusDDS/include",
                    str(REPO / "Tests" / "CNodes" / "dds_abi.c")], check=True)


def test_only_a_dataflow_across_machines_needs_cyclone_dds_and_says_how_to_get_it(dataflow):
    """Apus loads libddsc when a dataflow names another machine, not before: with the library
    missing, a dataflow without deploy runs, and one with deploy says how to install it."""
    dataflow.write("hello.py", "print('hello: ok')\n")
    missing = {"APUS_DDS_LIBRARY": "/nonexistent/libddsc.so"}
    os.environ.update(missing)
    try:
        run = dataflow.run("nodes:\n  - id: hello\n    path: hello.py\n")
        assert run.status == 0 and "hello: ok" in run.lines("hello"), run
        run = dataflow.run("nodes:\n  - id: hello\n    path: hello.py\n    deploy: {machine: elsewhere}\n")
    finally:
        del os.environ["APUS_DDS_LIBRARY"]
    assert run.status == 1, run
    assert "Eclipse Cyclone DDS (libddsc) is not installed" in run.stderr, run
    assert "apt-get install libddsc0debian" in run.stderr and "nothing was started" in run.stderr, run
    dataflow.expect_clean()


PACED = textwrap.dedent('''
    import time
    from apus import Node
    node = Node()
    for i in range(300):
        node.send_output("out", str(i))
        time.sleep(0.01)
    print("paced: sent 300")
''')

IN_ORDER = textwrap.dedent('''
    from apus import Node
    seen = [event.value for event in Node() if event.type == "INPUT"]
    print("in-order:", "ok" if seen == [str(i) for i in range(300)] else f"failed {len(seen)}")
''')


def test_a_partition_shorter_than_the_lease_heals_without_losing_a_message(machines, tmp_path):
    """A link down for 1 s (under the 2 s liveliness lease): DDS resends what was lost on the
    wire once it is back, so every message arrives, in order, and the run ends cleanly. (One
    longer than the lease is a lost machine: the test of a killed daemon.)"""
    group = machines("A", "B")
    (tmp_path / "paced.py").write_text(PACED)
    (tmp_path / "in_order.py").write_text(IN_ORDER)
    (tmp_path / "flow.yml").write_text("""
nodes:
  - id: paced
    path: paced.py
    outputs: [out]
  - id: in-order
    deploy: {machine: B}
    path: in_order.py
    inputs: {in: {source: paced/out, queue_policy: backpressure}}
""")
    group.start_daemon("B")
    process = group.start_run("A", "flow.yml")
    time.sleep(1.5)
    group.cut("B", 1.0)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, (stdout, stderr)
    assert "in-order: ok" in lines(stdout, "[B/in-order] "), (stdout, stderr)


CRASHING = textwrap.dedent('''
    import os
    import signal
    import time
    from pathlib import Path
    from apus import Node
    node = Node()
    for i in range(100):
        node.send_output("out", str(i))
        time.sleep(0.005)
    Path("sent").write_text("")
    while not Path("cut").exists():
        time.sleep(0.01)
    for i in range(100, 120):
        node.send_output("out", str(i))
    os.kill(os.getpid(), signal.SIGKILL)
''')

UNTIL_FAILED = textwrap.dedent('''
    from apus import Node
    seen = []
    for event in Node():
        if event.type == "INPUT":
            seen.append(event.value)
        elif event.type == "NODE_FAILED":
            ok = seen == [str(i) for i in range(120)]
            print("until-failed:", "ok" if ok else f"failed {len(seen)} {seen[-3:]}", flush=True)
''')


def test_what_a_node_sent_before_it_crashed_in_a_partition_arrives_once_it_heals(machines, tmp_path):
    """The producer writes its messages to DDS itself, and the bridge-out keeps each until B has
    passed it on. 20 sent while B's link is down, then the producer dies (SIGKILL): its own
    copies die with it, and B asks the bridge-out for them once the link is back. B's reader gets
    all 120, in order, before NODE_FAILED."""
    group = machines("A", "B")
    (tmp_path / "crashing.py").write_text(CRASHING)
    (tmp_path / "until_failed.py").write_text(UNTIL_FAILED)
    (tmp_path / "flow.yml").write_text("""
nodes:
  - id: crashing
    path: crashing.py
    outputs: [out]
  - id: until-failed
    deploy: {machine: B}
    path: until_failed.py
    inputs: {in: {source: crashing/out, queue_policy: backpressure, queue_size: 64}}
""")
    group.start_daemon("B")
    process = group.start_run("A", "flow.yml")
    deadline = time.monotonic() + 60
    while not (tmp_path / "sent").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    group.cut("B", 1.0, during=lambda: (tmp_path / "cut").write_text(""))
    stdout, stderr = process.communicate(timeout=120)
    assert "until-failed: ok" in lines(stdout, "[B/until-failed] "), (stdout, stderr)
    assert "crashing" in stdout + stderr and process.returncode != 0, (stdout, stderr)


LARGE = textwrap.dedent('''
    import numpy as np
    import time
    from apus import Node
    node = Node()
    start = time.monotonic()
    for i in range(5):
        with node.allocate("out", 40 << 20, np.uint8) as array:
            array[:] = i
            array[-1] = 255 - i
    print(f"large: sent 5 in {time.monotonic() - start:.2f} s")
''')

LARGE_CHECK = textwrap.dedent('''
    import numpy as np
    from apus import Node
    ok = []
    for event in Node():
        if event.type == "INPUT":
            value, i = event.value, len(ok)
            ok.append(value.size == 40 << 20 and int(value[0]) == i and int(value[-2]) == i and int(value[-1]) == 255 - i)
    print("large-check:", "ok" if ok == [True] * 5 else ok)
''')


def test_forty_mib_messages_cross_machines_whole(machines, tmp_path):
    group = machines("A", "B")
    (tmp_path / "large.py").write_text(LARGE)
    (tmp_path / "large_check.py").write_text(LARGE_CHECK)
    (tmp_path / "flow.yml").write_text("""
nodes:
  - id: large
    path: large.py
    outputs: [out]
  - id: large-check
    deploy: {machine: B}
    path: large_check.py
    inputs: {in: {source: large/out, queue_policy: backpressure, queue_size: 2}}
""")
    group.start_daemon("B")
    started = time.monotonic()
    run = group.run("A", "flow.yml", timeout=300)
    assert run.returncode == 0, run
    assert "large-check: ok" in lines(run.stdout, "[B/large-check] "), run
    print(f"5 messages of 40 MiB across machines in {time.monotonic() - started:.1f} s")
