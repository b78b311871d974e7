"""A node's `wait` key: how it waits for its inputs. Checked without timing: a node that waits
asleep makes one voluntary context switch (/proc/PID/status) per message it did not find already
there; one that spins (up to 200 µs, AdaptiveSpin.maximumNanoseconds) makes none while its peer
answers within that. A Python ping-pong's peer answers in about 10 µs."""
import re
import time

# For node sources: this process's voluntary context switches so far (/proc/self/status).
SWITCHES = """
def switches():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("voluntary_ctxt_switches"))
"""

PING_PONG = SWITCHES + """
import sys
from apus import Node

role, rounds, warmup = sys.argv[1], 2000, 100
node = Node()
if role == "ping":
    for round_ in range(warmup + rounds):
        if round_ == warmup:
            before = switches()
        node.send_output("ping", b"12345678")
        while (event := node.next()) is not None and event.type != "INPUT":
            pass
    print(f"ping: {switches() - before} voluntary context switches in {rounds} round trips", flush=True)
else:
    count = 0
    for event in node:
        if event.type == "INPUT":
            count += 1
            if count == warmup + 1:
                before = switches()
            node.send_output("pong", b"12345678")
            if count == warmup + rounds:
                print(f"pong: {switches() - before} voluntary context switches in {rounds} round trips", flush=True)
"""

FLOW = """
nodes:
  - id: ping
    path: pingpong.py
    args: ping
    wait: {mode}
    inputs: {{ pong: pong/pong }}
    outputs: [ping]
  - id: pong
    path: pingpong.py
    args: pong
    wait: {mode}
    inputs: {{ ping: ping/ping }}
    outputs: [pong]
"""


def switches(run):
    found = {}
    for node in ("ping", "pong"):
        (line,) = [line for line in run.lines(node) if "voluntary context switches" in line]
        found[node] = int(re.search(r": (\d+) voluntary", line).group(1))
    return found


def test_spinning_nodes_do_not_sleep_between_the_hops_of_a_python_ping_pong(dataflow):
    # N = 200 in 2,000 round trips: a tenth of the hops may find the peer late (preempted,
    # collecting garbage) without failing; measured 0 to 2 on a quiet 2-CPU VM.
    dataflow.write("pingpong.py", PING_PONG)
    run = dataflow.run(FLOW.format(mode="spin"))
    assert run.status == 0, run
    spun = switches(run)
    assert spun["ping"] < 200 and spun["pong"] < 200, (spun, run)
    # The same measure sees the difference: asleep, most hops are a context switch (not every
    # one: a peer that answers before the node has gone to sleep saves it one, and one that runs
    # on the same CPU may preempt it instead; measured 1,386 to 2,000 here).
    run = dataflow.run(FLOW.format(mode="sleep"))
    assert run.status == 0, run
    slept = switches(run)
    assert slept["ping"] > 500 and slept["pong"] > 500, (slept, run)
    dataflow.expect_clean()


IDLE = """
import time
from apus import Node

# The waiting thread's CPU: the process's also counts what numpy's BLAS threads, started by the
# import, still do meanwhile (8-44 ms, which once failed the bound below).
def cpu():
    return time.thread_time()

node = Node()
before = cpu()
event = node.next(timeout=2.0)  # nothing comes: the source waits for STOP
print(f"idle: waited {event}, {cpu() - before:.3f} s of CPU", flush=True)
"""

QUIET = """
from apus import Node
for event in Node():
    pass
"""


def test_a_spinning_node_with_nothing_to_receive_uses_no_cpu(dataflow):
    dataflow.write("idle.py", IDLE).write("quiet.py", QUIET)
    started = time.monotonic()
    run = dataflow.run("""
nodes:
  - id: quiet
    path: quiet.py
    inputs: { tick: apus/timer/secs/60 }
    outputs: [nothing]
  - id: idle
    path: idle.py
    wait: spin
    inputs: { nothing: quiet/nothing }
""", "--stop-after", "3s")
    assert run.status == 0, run
    (line,) = [line for line in run.lines("idle") if line.startswith("idle: ")]
    cpu = float(re.search(r", ([\d.]+) s of CPU", line).group(1))
    # One spin of at most 200 µs, then asleep; two seconds of spinning would be 2 s.
    assert "waited None" in line and cpu < 0.05, line
    assert time.monotonic() - started < 30
    dataflow.expect_clean()


SATURATING_SENDER = SWITCHES + """
import numpy as np
from apus import Node

node = Node()
rows = np.zeros((1000, 8), dtype=np.uint8)
node.send_many("data", rows)  # the receiver is running and taking
before = switches()
for _ in range(20):
    node.send_many("data", rows)
print(f"sender: {switches() - before} voluntary context switches in 20000 messages", flush=True)
"""

SLOWER_RECEIVER = """
from apus import Node
count = sum(1 for event in Node() if event.type == "INPUT")
print(f"receiver: {count}", flush=True)
"""


def test_a_sender_faster_than_its_backpressure_consumer_is_not_woken_per_message(dataflow):
    # The sender (batches of 1,000 in one call) outruns a Python receiver, so its ring of 10 is
    # full all along. Woken for every entry taken, it slept once per message or few (2,200 in
    # 20,000 measured: a system call per message on both sides); it spins briefly for room and
    # once asleep is woken only when half the ring is free: 11 to 34 measured.
    dataflow.write("sender.py", SATURATING_SENDER).write("receiver.py", SLOWER_RECEIVER)
    run = dataflow.run("""
nodes:
  - id: sender
    path: sender.py
    outputs: [data]
  - id: receiver
    path: receiver.py
    inputs: { data: { source: sender/data, queue_policy: backpressure } }
""")
    assert run.status == 0, run
    assert "receiver: 21000" in run.lines("receiver"), run
    (line,) = [line for line in run.lines("sender") if "voluntary context switches" in line]
    assert int(re.search(r": (\d+) voluntary", line).group(1)) < 500, run
    dataflow.expect_clean()
