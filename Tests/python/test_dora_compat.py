"""Nodes written for dora-rs (its C API, its Python API, its dataflow subset) under `apus run`,
alone and mixed with Apus-native C, Python and Swift nodes."""
import textwrap

from conftest import BUILD, C_NODE_BUILD, MEMFD_MAPPING, REPO, ok_line

DORA_C = REPO / "Tests" / "CNodes" / "dora"
# dora's C nodes include "node_api.h": Apus's copy of it is include/dora/node_api.h.
DORA_C_FLAGS = "-std=c99 -Wall -Wextra -Werror -I$(apus config --include-dir)/dora"
# The dora C node (Tests/CNodes/dora/node.c): 20 ticks, a counter byte and a message on each.
DORA_TICKER = f"""  - id: ticker
    build: gcc {DORA_C_FLAGS} -o dora_node {DORA_C}/node.c $(apus config --libs)
    path: ./dora_node
    inputs:
      tick: dora/timer/millis/10
    outputs: [counter, message]
"""


def test_dora_c_nodes_run_unchanged_with_an_apus_native_python_node(dataflow):
    dataflow.write("native.py", textwrap.dedent('''
        import sys
        from apus import Node

        node = Node()
        for i in range(10):
            node.send_output("out", f"native {i}".encode())
        node.close_output("out")
        counters = []
        for event in node:
            if event.type == "INPUT":
                assert event.value.dtype.name == "uint8" and event.value.shape == (1,), event.value
                counters.append(int(event.value[0]))
        if counters != list(range(1, 21)):
            print("native: wrong counters", counters)
            sys.exit(1)
        print("native: ok", len(counters))
    '''))
    run = dataflow.run(f"""
nodes:
{DORA_TICKER}  - id: native
    path: native.py
    inputs:
      counter: {{source: ticker/counter, queue_size: 32}}
    outputs: [out]
  - id: sink
    build: gcc {DORA_C_FLAGS} -DAPUS_MISUSE_CHECKS -o dora_sink {DORA_C}/sink.c $(apus config --libs)
    path: ./dora_sink
    inputs:
      counter: {{source: ticker/counter, queue_size: 32}}
      message: {{source: ticker/message, queue_size: 32}}
      native: {{source: native/out, queue_size: 32}}
""")
    assert run.status == 0, run
    # Its log line goes to stderr and this to stdout: two pipes, so their order is not fixed.
    assert "node: ok 20" in run.lines("ticker"), run
    assert ok_line(run, "native") == "native: ok 20", run
    sink = run.lines("sink")
    assert "sink: counter 20, message 20, native 10, closed 3, stop 1, other 0" in sink, run
    assert "misuse checks done" in sink and "sink: ok" in sink, run
    assert "[ticker] INFO  sent 20 ticks" in run.stdout, run
    assert "[sink] WARN  still logging" in run.stdout, run
    # Misuse is refused with a message, never a crash.
    for refusal in ["dora_send_output: output 'nope' is not declared by this node", "dora_send_output: the node is NULL",
                    "dora_send_output: the output id is NULL but its length is 3",
                    "dora_send_output: the data is NULL but its length is 1",
                    "dora_send_output: the output id has length 18446744073709551615",
                    "dora_log: log level 'loud' is not one of error, warn, info, debug, trace",
                    "dora_log: the message is not valid UTF-8", "read_dora_event_type: the event is NULL",
                    "read_dora_input_data: out_ptr is NULL", "read_dora_input_timestamp: not a live event",
                    "free_dora_event: not a live event", "free_dora_context: not a live node",
                    "dora_next_event: not a live node"]:
        assert f"[sink] apus: {refusal}" in run.stdout, (refusal, run)
    dataflow.expect_clean()


# A dora Python node sending the kinds of values dora users send, with metadata.
DORA_SENDER = textwrap.dedent('''
    import pyarrow as pa
    from dora import Node

    node = Node()
    sent = 0
    for event in node:
        if event["type"] != "INPUT":
            continue
        assert event["id"] == "tick" and len(event["value"]) == 0, event
        i = sent
        metadata = {"i": i, "name": "dora", "ratio": 0.5, "flags": [True, False], "sizes": [1, 2]}
        node.send_output("ints", pa.array([i, -i, 1 << 40], type=pa.int64()), metadata)
        node.send_output("floats", pa.array([0.5 * i, None, 2.0], type=pa.float32()), metadata)
        node.send_output("bools", pa.array([True, i % 2 == 0]), metadata)
        node.send_output("strings", pa.array(["a" * i, "é", ""]), metadata)
        node.send_output("structs", pa.array([{"x": i, "y": "s"}, {"x": -1, "y": None}]), metadata)
        node.send_output("lists", pa.array([[i], [], [1, 2, 3]]), metadata)
        node.send_output("buffer", bytes(range(i)), metadata)
        node.send_output("halfs", pa.array([1.5, i], type=pa.float16()), metadata)
        sent += 1
        if sent == 10:
            break
    print("sender: ok", sent)
''')

DORA_RECEIVER = MEMFD_MAPPING + textwrap.dedent('''
    import logging
    import sys
    import time
    import datetime
    import numpy as np
    import pyarrow as pa
    from dora import Node

    def expected(input_id, i):
        return {
            "ints": pa.array([i, -i, 1 << 40], type=pa.int64()),
            "floats": pa.array([0.5 * i, None, 2.0], type=pa.float32()),
            "bools": pa.array([True, i % 2 == 0]),
            "strings": pa.array(["a" * i, "é", ""]),
            "structs": pa.array([{"x": i, "y": "s"}, {"x": -1, "y": None}]),
            "lists": pa.array([[i], [], [1, 2, 3]]),
            "buffer": pa.array(list(range(i)), type=pa.uint8()),
            "halfs": pa.array(np.array([1.5, i], dtype=np.float16)),
        }[input_id.removeprefix("echoed_")]

    def in_shared_memory(array):
        permissions, file = memfd_mapping(array.buffers()[1].address)
        return permissions == "r--s" and "/memfd:" in file

    node = Node()
    logging.info("receiver logging works")
    logging.debug("not shown: below INFO")
    counts = {}
    closed = []
    polls = 0
    stop = None
    while stop is None:
        event = node.try_recv()
        if event is None:
            polls += 1
            time.sleep(0.001)
            continue
        if event["type"] == "INPUT":
            metadata = event["metadata"]
            i = metadata["i"]
            assert isinstance(metadata["timestamp"], datetime.datetime), metadata
            age = datetime.datetime.now(datetime.timezone.utc) - metadata["timestamp"]
            assert datetime.timedelta(0) <= age < datetime.timedelta(seconds=30), age
            rest = {k: v for k, v in metadata.items() if k != "timestamp"}
            assert rest == {"i": i, "name": "dora", "ratio": 0.5, "flags": [True, False], "sizes": [1, 2]}, rest
            value, want = event["value"], expected(event["id"], i)
            assert isinstance(value, pa.Array), type(value)
            assert value.type == want.type and value.equals(want), (event["id"], value, want)
            if event["id"] in ("ints", "halfs") or (event["id"] == "buffer" and i > 0):
                assert in_shared_memory(value), (event["id"], "not a view of the sender's shared memory")
            assert i == counts.get(event["id"], 0), (event["id"], i, counts)
            counts[event["id"]] = i + 1
        elif event["type"] == "INPUT_CLOSED":
            closed.append(event["id"])
        elif event["type"] == "STOP":
            stop = event
        else:
            raise RuntimeError(f"unexpected event {event}")
    assert node.next() is None and node.try_recv() is None and node.drain() == []
    if stop["id"] != "ALL_INPUTS_CLOSED" or sorted(closed) != sorted(counts) or set(counts.values()) != {10}:
        print("receiver: wrong", stop, closed, counts)
        sys.exit(1)
    print("receiver: ok", len(counts), "inputs", sum(counts.values()), "values", "polled" if polls else "never polled")
''')

# An Apus-native Python node reading what the dora node sent.
NATIVE_CHECKER = textwrap.dedent('''
    import sys
    import numpy as np
    from apus import Node

    node = Node()
    seen = 0
    for event in node:
        if event.type != "INPUT":
            continue
        i = event.metadata["i"]
        if event.id == "ints":
            assert event.value.dtype == np.int64 and event.value.tolist() == [i, -i, 1 << 40], event.value
        elif event.id == "bools":
            assert event.value.dtype == np.bool_ and event.value.tolist() == [True, i % 2 == 0], event.value
        elif event.id == "structs":
            assert event.metadata["apus.arrow"] == "ipc" and event.value.dtype == np.uint8, event.metadata
        seen += 1
    print("checker: ok", seen)
''')

SENDER_OUTPUTS = "[ints, floats, bools, strings, structs, lists, buffer, halfs]"


def test_dora_python_nodes_send_every_kind_of_value_through_apus_native_c_and_swift_nodes(dataflow):
    dataflow.write("sender.py", DORA_SENDER).write("receiver.py", DORA_RECEIVER).write("checker.py", NATIVE_CHECKER)
    inputs = "\n".join(f"      {name}: {{source: sender/{name}, queue_size: 64}}"
                       for name in SENDER_OUTPUTS.strip("[]").split(", "))
    run = dataflow.run(f"""
nodes:
  - id: sender
    path: sender.py
    inputs:
      tick: dora/timer/millis/20
    outputs: {SENDER_OUTPUTS}
  - id: echo
    build: {C_NODE_BUILD}
    path: ./api_test
    args: echo
    inputs:
      in: {{source: sender/structs, queue_size: 64}}
    outputs: [out]
  - id: relay
    path: {BUILD / "relay"}
    inputs:
      in: {{source: echo/out, queue_size: 64}}
    outputs: [out]
  - id: receiver
    path: receiver.py
    inputs:
{inputs}
      echoed_structs: {{source: relay/out, queue_size: 64}}
  - id: checker
    path: checker.py
    inputs:
      ints: sender/ints
      bools: sender/bools
      structs: sender/structs
""")
    assert run.status == 0, run
    assert ok_line(run, "sender") == "sender: ok 10", run
    assert ok_line(run, "receiver") == "receiver: ok 9 inputs 90 values polled", run
    assert ok_line(run, "checker") == "checker: ok 30", run
    assert "[receiver] INFO  receiver logging works" in run.stdout, run
    assert "below INFO" not in run.stdout, run
    dataflow.expect_clean()


def test_dora_c_and_python_nodes_alone(dataflow):
    """Only nodes written for dora: a C ticker and sink, a Python sender and receiver."""
    dataflow.write("sender.py", DORA_SENDER).write("receiver.py", DORA_RECEIVER)
    inputs = "\n".join(f"      {name}: sender/{name}" for name in SENDER_OUTPUTS.strip("[]").split(", "))
    run = dataflow.run(f"""
nodes:
{DORA_TICKER}  - id: sink
    build: gcc {DORA_C_FLAGS} -o dora_sink {DORA_C}/sink.c $(apus config --libs)
    path: ./dora_sink
    args: 0
    inputs:
      counter: ticker/counter
      message: ticker/message
  - id: sender
    path: sender.py
    inputs:
      tick: dora/timer/millis/20
    outputs: {SENDER_OUTPUTS}
  - id: receiver
    path: receiver.py
    inputs:
{inputs}
""")
    assert run.status == 0, run
    # Its log line goes to stderr and this to stdout: two pipes, so their order is not fixed.
    assert "node: ok 20" in run.lines("ticker"), run
    assert "sink: counter 20, message 20, native 0, closed 2, stop 1, other 0" in run.lines("sink"), run
    assert ok_line(run, "sink") == "sink: ok", run
    assert ok_line(run, "sender") == "sender: ok 10", run
    assert ok_line(run, "receiver") == "receiver: ok 8 inputs 80 values polled", run
    dataflow.expect_clean()


NUMERIC_TYPES = "uint8 uint16 uint32 uint64 int8 int16 int32 int64 float16 float32 float64".split()


def test_dora_numeric_arrays_go_straight_from_their_arrow_buffer_with_their_type(dataflow):
    """Arrow arrays of numbers without nulls (the dora module sends them from their Arrow buffer,
    without numpy): every type, a slice (an offset into its buffer), an empty one, and one whose
    only metadata is a timestamp (replaced by the send time); an Apus-native node sees the types."""
    dataflow.write("sender.py", textwrap.dedent(f'''
        import numpy as np
        import pyarrow as pa
        from dora import Node
        node = Node()
        for name in {NUMERIC_TYPES!r}:
            values = pa.array(np.arange(10).astype(name))
            node.send_output("out", values)
            node.send_output("out", values.slice(3, 4), {{"timestamp": 5}})
            node.send_output("out", values.slice(10, 0))
        print("sender: ok")
    ''')).write("receiver.py", textwrap.dedent(f'''
        import numpy as np
        import pyarrow as pa
        from dora import Node
        node = Node()
        got = [(e["value"], e["metadata"]) for e in node if e["type"] == "INPUT"]
        checks = [len(got) == 3 * len({NUMERIC_TYPES!r})]
        for index, name in enumerate({NUMERIC_TYPES!r}):
            whole, part, empty = got[3 * index: 3 * index + 3]
            kind = pa.from_numpy_dtype(np.dtype(name))
            checks.append(whole[0].type == kind and whole[0].to_pylist() == list(range(10)))
            checks.append(part[0].type == kind and part[0].to_pylist() == [3, 4, 5, 6])
            checks.append(part[1]["timestamp"].year > 2000 and set(part[1]) == {{"timestamp"}})
            checks.append(empty[0].type == kind and len(empty[0]) == 0)
        print("receiver:", "ok" if all(checks) else [i for i, c in enumerate(checks) if not c])
    ''')).write("native.py", textwrap.dedent(f'''
        import numpy as np
        from apus import Node
        seen = [e.value.dtype.name for e in Node() if e.type == "INPUT"]
        print("native:", "ok" if seen == [name for name in {NUMERIC_TYPES!r} for _ in range(3)] else seen)
    '''))
    run = dataflow.run("""
nodes:
  - id: sender
    path: sender.py
    outputs: [out]
  - id: receiver
    path: receiver.py
    inputs: {in: {source: sender/out, queue_size: 64}}
  - id: native
    path: native.py
    inputs: {in: {source: sender/out, queue_size: 64}}
""")
    assert run.status == 0, run
    assert ok_line(run, "receiver") == "receiver: ok", run
    assert ok_line(run, "native") == "native: ok", run
    dataflow.expect_clean()


def test_the_dora_module_can_be_turned_off_and_says_when_pyarrow_is_missing(dataflow):
    dataflow.write("which.py", textwrap.dedent('''
        try:
            import dora
            print("which: dora from", dora.__file__)
        except ImportError as error:
            print("which: no dora:", error)
    '''))
    (dataflow.folder / "nopyarrow" / "pyarrow").mkdir(parents=True)
    (dataflow.folder / "nopyarrow" / "pyarrow" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'pyarrow'\")\n")
    dataflow.write("needs.py", "from dora import Node\nNode()\n")
    flow = """
nodes:
  - id: provided
    path: which.py
  - id: off
    path: which.py
    env: {APUS_DORA_PYTHON: 0}
  - id: needs
    path: needs.py
    env: {PYTHONPATH: nopyarrow}
"""
    run = dataflow.run(flow)
    assert run.status == 1, run
    assert ok_line(run, "provided") == f"which: dora from {REPO}/python/compat/dora/__init__.py", run
    assert ok_line(run, "off") == "which: no dora: No module named 'dora'", run
    assert "the dora module of Apus needs pyarrow" in run.stdout, run
    assert "python3 -m pip install pyarrow" in run.stdout, run
    dataflow.expect_clean()

    run = dataflow.run(flow.replace("    env: {APUS_DORA_PYTHON: 0}\n", ""), "--no-dora-python")
    assert ok_line(run, "provided") == "which: no dora: No module named 'dora'", run
    assert ok_line(run, "off") == "which: no dora: No module named 'dora'", run
    dataflow.expect_clean()


def test_the_benchmarks_python_ping_pong_files_run_on_apus(dataflow):
    """bench/pingpong's node files, written against dora's API, also run on dora-rs 1.1.0 in
    bench/bench.py --vs-dora; here they must run on Apus and report sane latencies."""
    import json
    pingpong = REPO / "bench" / "pingpong"
    run = dataflow.run(f"""
env: {{SIZES: "8,65536", ROUNDS: 30, WARMUP: 5}}
nodes:
  - id: ping
    path: {pingpong}/ping.py
    inputs: {{pong: pong/pong}}
    outputs: [ping]
  - id: pong
    path: {pingpong}/pong.py
    inputs: {{ping: ping/ping}}
    outputs: [pong]
""")
    assert run.status == 0, run
    rows = [json.loads(line) for line in run.lines("ping")]
    assert [row["size"] for row in rows] == [8, 65536], run
    assert all(row["rounds"] == 30 and 0 < row["p50_us"] <= row["p90_us"] <= row["p99_us"] for row in rows), rows
    dataflow.expect_clean()
