"""The Python node API (python/apus) in real dataflows with C and Swift nodes."""
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

from conftest import APUS, BUILD, C_NODE_BUILD, MEMFD_MAPPING, REPO, ok_line

# `expect(kind, text, call)`: appends "ok" to `results` when call() raises a `kind` whose message
# has `text` in it, else what went wrong.
EXPECT = textwrap.dedent('''
    results = []
    def expect(kind, text, call):
        try:
            call()
            results.append(f"no error: {text}")
        except kind as error:
            results.append("ok" if text in str(error) else f"wrong message: {error}")
''')

# Every element type a Python node can send, with the values the checks expect back.
TYPED_SOURCE = textwrap.dedent('''
    import numpy as np
    from apus import Node

    DTYPES = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
              "float16", "float32", "float64", "bool"]

    def expected(dtype):
        if dtype == "bool":
            return np.array([[True, False, True], [False, True, False]])
        info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else np.finfo(dtype)
        return np.array([[info.min, 0, 1], [2, 3, info.max]], dtype=dtype)

    METADATA = {"flag": True, "count": -(1 << 62), "ratio": 0.25, "name": "caméra", "flags": [True, False],
                "numbers": [1, -2, 1 << 40], "reals": [0.5, -1.5], "words": ["a", "", "ünï"], "none": []}
''')

TYPED_SENDER = TYPED_SOURCE + textwrap.dedent('''
    node = Node()
    for dtype in DTYPES:
        node.send_output("out", expected(dtype), dict(METADATA, dtype=dtype))
    node.send_output("out", "text ✓", {"dtype": "str"})
    node.send_output("out", b"\\x00\\x01\\xff", {"dtype": "bytes"})
    node.send_output("out", memoryview(bytearray(b"view")), {"dtype": "memoryview"})
    print("sender: sent", len(DTYPES) + 3)
''')

TYPED_CHECKER = TYPED_SOURCE + textwrap.dedent('''
    import sys
    node = Node()
    seen, failures = [], []
    for event in node:
        if event.type != "INPUT":
            continue
        dtype, value, metadata = event.metadata["dtype"], event.value, event.metadata
        seen.append(dtype)
        if dtype == "str":
            ok = value == "text ✓"
        elif dtype in ("bytes", "memoryview"):
            ok = value.dtype == np.uint8 and bytes(value) == ({"bytes": b"\\x00\\x01\\xff", "memoryview": b"view"}[dtype])
        else:
            ok = value.dtype == np.dtype(dtype) and value.shape == (2, 3) and np.array_equal(value, expected(dtype))
            sent = dict(METADATA, dtype=dtype)
            ok = ok and metadata == sent and [type(metadata[k]) for k in sent] == [type(v) for v in sent.values()]
        if not ok:
            failures.append(f"{dtype}: {value!r} {metadata!r}")
    if seen != DTYPES + ["str", "bytes", "memoryview"] or failures:
        print("checker: failed", seen, failures)
        sys.exit(1)
    print("checker: ok", len(seen))
''')


def test_every_element_type_and_parameter_round_trips_python_to_c_to_swift_to_python(dataflow):
    dataflow.write("sender.py", TYPED_SENDER).write("checker.py", TYPED_CHECKER)
    run = dataflow.run(f"""
nodes:
  - id: sender
    path: sender.py
    outputs: [out]
  - id: echo
    build: {C_NODE_BUILD}
    path: ./api_test
    args: echo
    inputs: {{in: {{source: sender/out, queue_size: 32}}}}
    outputs: [out]
  - id: relay
    path: {BUILD / "relay"}
    inputs: {{in: {{source: echo/out, queue_size: 32}}}}
    outputs: [out]
  - id: checker
    path: checker.py
    inputs: {{in: {{source: relay/out, queue_size: 32}}}}
""")
    assert run.status == 0, run
    assert ok_line(run, "checker") == "checker: ok 15", run
    assert ok_line(run, "echo").startswith("echo: ok"), run
    dataflow.expect_clean()


ZERO_COPY_CONSUMER = textwrap.dedent('''
    import sys
    import numpy as np
    from apus import Node
''') + MEMFD_MAPPING + textwrap.dedent('''
    node = Node()
    checks = []
    for event in node:
        if event.type != "INPUT":
            continue
        value = event.value
        permissions, name = memfd_mapping(value.ctypes.data)
        checks.append(permissions == "r--s" and name.startswith("/memfd:"))
        checks.append(not value.flags.writeable)
        try:
            value[0, 0] = 1
            checks.append(False)
        except ValueError:
            checks.append(True)
        try:
            value.setflags(write=True)
            checks.append(False)
        except ValueError:
            checks.append(True)
        checks.append(bool(np.all(value == 7)))
        print("mapping:", permissions, name.split(" ")[0])
    print("consumer: ok" if checks and all(checks) else f"consumer: failed {checks}")
''')


def test_input_values_view_the_read_only_shared_mapping_without_a_copy(dataflow):
    dataflow.write("producer.py", textwrap.dedent('''
        import numpy as np
        from apus import Node
        node = Node()
        node.send_output("out", np.full((64, 64), 7, dtype=np.int32))
        with node.allocate("out", (256, 256), np.int32) as array:
            array[:] = 7
    ''')).write("consumer.py", ZERO_COPY_CONSUMER)
    run = dataflow.run("""
nodes:
  - id: producer
    path: producer.py
    outputs: [out]
  - id: consumer
    path: consumer.py
    inputs: {in: producer/out}
""")
    assert run.status == 0, run
    assert ok_line(run, "consumer") == "consumer: ok", run
    assert run.lines("consumer")[0].startswith("mapping: r--s /memfd:"), run
    dataflow.expect_clean()


def test_forty_mib_messages_arrive_whole(dataflow):
    dataflow.write("producer.py", textwrap.dedent('''
        import numpy as np
        from apus import Node
        node = Node()
        for i in range(3):
            with node.allocate("out", (40 << 20) // 8, np.float64, {"i": i}) as array:
                array[:] = np.arange(array.size) + i
        node.send_output("out", np.arange((40 << 20) // 8, dtype=np.float64) + 3, {"i": 3})
    ''')).write("consumer.py", textwrap.dedent('''
        import numpy as np
        from apus import Node
        node = Node()
        good = 0
        for event in node:
            if event.type == "INPUT":
                value, i = event.value, event.metadata["i"]
                good += value.nbytes == 40 << 20 and value[0] == i and value[-1] == value.size - 1 + i and value.sum() == value.size * (value.size - 1) / 2 + i * value.size
        print(f"consumer: {good} of 4 whole")
    '''))
    run = dataflow.run("""
nodes:
  - id: producer
    path: producer.py
    outputs: [out]
  - id: consumer
    path: consumer.py
    inputs: {in: {source: producer/out, queue_policy: backpressure}}
""")
    assert run.status == 0, run
    assert ok_line(run, "consumer") == "consumer: 4 of 4 whole", run
    dataflow.expect_clean()


CRASHER_TO_WATCHER = """
nodes:
  - id: crasher
    path: crasher.py
    outputs: [out]
  - id: watcher
    path: watcher.py
    inputs: {in: crasher/out}
"""


def test_a_python_node_that_raises_is_reported_with_its_traceback_and_its_consumer_told(dataflow):
    dataflow.write("crasher.py", textwrap.dedent('''
        from apus import Node
        node = Node()
        node.send_output("out", b"one")
        1 / 0
    ''')).write("watcher.py", textwrap.dedent('''
        from apus import Node
        for event in Node():
            print(event.type, event.id if event.type != "STOP" else "")
    '''))
    run = dataflow.run(CRASHER_TO_WATCHER)
    assert run.status == 1, run
    assert "node 'crasher' exited with status 1" in run.stderr, run
    assert "Traceback (most recent call last):" in run.stderr and "ZeroDivisionError: division by zero" in run.stderr, run
    assert run.lines("watcher") == ["INPUT in", "NODE_FAILED crasher", "INPUT_CLOSED in", "STOP "], run
    dataflow.expect_clean()


def test_what_a_node_sent_before_it_failed_comes_before_node_failed(dataflow):
    """The watcher looks only once the crasher is gone: its five messages wait in the inbox, and
    the daemon has already said the crasher failed. The messages come first, then NODE_FAILED."""
    dataflow.write("crasher.py", textwrap.dedent('''
        from apus import Node
        node = Node()
        for i in range(5):
            node.send_output("out", str(i))
        raise SystemExit(3)
    ''')).write("watcher.py", textwrap.dedent('''
        import time
        from apus import Node
        node = Node()
        time.sleep(1.5)
        for event in node:
            print(event.type, event.value if event.type == "INPUT" else event.id if event.type != "STOP" else "")
    '''))
    run = dataflow.run(CRASHER_TO_WATCHER)
    assert run.status == 1, run
    assert run.lines("watcher") == [f"INPUT {i}" for i in range(5)] + ["NODE_FAILED crasher", "INPUT_CLOSED in", "STOP "], run
    dataflow.expect_clean()


def test_a_python_node_ignoring_stop_is_terminated_after_the_grace_period(dataflow):
    dataflow.write("stubborn.py", textwrap.dedent('''
        import time
        from apus import Node
        for event in Node():
            pass
        print("stream ended; ignoring it", flush=True)
        while True:
            time.sleep(0.1)
    '''))
    run = dataflow.run("""
nodes:
  - id: stubborn
    path: stubborn.py
    inputs: {tick: apus/timer/millis/50}
""", "--stop-after", "0.5s", "--grace", "1s", timeout=30)
    assert run.status == 1, run
    assert "node 'stubborn' did not stop within the 1 s grace period; killed by signal 15 (SIGTERM)" in run.stderr, run
    assert run.lines("stubborn") == ["stream ended; ignoring it"], run
    dataflow.expect_clean()


def test_a_node_releasing_inputs_late_keeps_them_intact_and_holds_up_no_one(dataflow):
    dataflow.write("producer.py", textwrap.dedent('''
        import time
        import numpy as np
        from apus import Node
        node = Node()
        for i in range(200):
            node.send_output("out", np.full(16384, i, dtype=np.int32), {"i": i})
            time.sleep(0.002)
    ''')).write("hoarder.py", textwrap.dedent('''
        import time
        from apus import Node
        held = []
        for event in Node():
            if event.type == "INPUT":
                held.append(event)        # kept: its sample stays pinned
                time.sleep(0.005)
        intact = all(int(e.value[0]) == e.metadata["i"] and int(e.value[-1]) == e.metadata["i"] for e in held)
        print(f"hoarder: held {len(held)}, intact {intact}")
        for e in held:
            e.release()
    ''')).write("fast.py", textwrap.dedent('''
        from apus import Node
        received = []
        for event in Node():
            if event.type == "INPUT" and int(event.value[0]) == event.metadata["i"]:
                received.append(event.metadata["i"])
        print("fast: all in order" if received == list(range(200)) else f"fast: got {received}")
    '''))
    run = dataflow.run("""
nodes:
  - id: producer
    path: producer.py
    outputs: [out]
  - id: hoarder
    path: hoarder.py
    inputs: {in: {source: producer/out, queue_size: 4}}
  - id: fast
    path: fast.py
    inputs: {in: producer/out}
""")
    assert run.status == 0, run
    assert ok_line(run, "fast") == "fast: all in order", run
    held = ok_line(run, "hoarder")
    assert held.startswith("hoarder: held ") and held.endswith("intact True"), run
    assert int(held.split()[2].rstrip(",")) > 16, run
    dataflow.expect_clean()


def test_waiting_releases_the_gil_and_ctrl_c_ends_the_loop_cleanly(dataflow):
    dataflow.write("waiter.py", textwrap.dedent('''
        import os, threading, time
        from apus import Node
        node = Node()
        counter = [0]
        def count():
            while counter[0] >= 0:
                counter[0] += 1
        threading.Thread(target=count, daemon=True).start()
        before = counter[0]
        assert node.next(timeout=0.3) is None       # nothing comes: the wait times out
        print("other thread ran while waiting:", counter[0] - before > 1000, flush=True)
        print("pid", os.getpid(), flush=True)
        for event in node:                          # ended by SIGINT, not by an exception
            pass
        counter[0] = -1
        print("loop ended cleanly")
    '''))
    dataflow.start("""
nodes:
  - id: waiter
    path: waiter.py
    inputs: {never: {source: apus/timer/secs/3600}}
""")
    deadline = time.monotonic() + 60
    pid = None
    while pid is None and time.monotonic() < deadline:
        for line in open(dataflow.folder / "out" / sorted(os.listdir(dataflow.folder / "out"))[-1] / "waiter.log") \
                if (dataflow.folder / "out").exists() and os.listdir(dataflow.folder / "out") else []:
            if "pid " in line and line.split("pid ")[-1].strip().isdigit():
                pid = int(line.split("pid ")[-1])
        time.sleep(0.05)
    assert pid is not None, dataflow.wait(5)
    os.kill(pid, signal.SIGINT)
    run = dataflow.wait(60)
    assert run.status == 0, run
    assert run.lines("waiter") == ["other thread ran while waiting: True", f"pid {pid}", "loop ended cleanly"], run
    dataflow.expect_clean()


def test_outside_a_dataflow_node_raises_an_error_that_says_to_use_apus_run(dataflow):
    # A one-node run prepares the module; then the same module is imported outside any dataflow.
    dataflow.write("noop.py", "print('ran')\n")
    run = dataflow.run("nodes:\n  - id: noop\n    path: noop.py\n")
    assert run.status == 0, run
    cache = BUILD / "apus-python" / sys.implementation.cache_tag
    result = subprocess.run([sys.executable, "-c", textwrap.dedent('''
        from apus import Node, ApusError
        try:
            Node()
        except ApusError as error:
            print(error.status, "apus run" in str(error))
    ''')], env=dict(os.environ, PYTHONPATH=str(cache)), capture_output=True, text=True)
    assert result.stdout.strip() == "APUS_ERROR_NOT_IN_DATAFLOW True", result
    dataflow.expect_clean()


def test_bad_arguments_raise_python_errors_that_name_the_problem(dataflow):
    dataflow.write("checks.py", EXPECT + textwrap.dedent('''
        import numpy as np
        from apus import Node, ApusError
        node = Node()
        expect(ApusError, "output 'nope' is not declared", lambda: node.send_output("nope", b"x"))
        expect(TypeError, "cannot send dict", lambda: node.send_output("out", {}))
        expect(TypeError, "complex128", lambda: node.send_output("out", np.zeros(2, dtype=complex)))
        expect(TypeError, "metadata 'k': object", lambda: node.send_output("out", b"x", {"k": object()}))
        expect(TypeError, "only bools, only numbers, or only strs", lambda: node.send_output("out", b"x", {"k": [1, "a"]}))
        expect(OverflowError, "64-bit", lambda: node.send_output("out", b"x", {"k": 1 << 70}))
        expect(ValueError, "NUL", lambda: node.send_output("out", b"x", {"k": "a\\0b"}))
        expect(ValueError, "log level", lambda: node.log("loud", "x"))
        def inside():
            with node.allocate("out", 4, np.uint8) as array:
                raise RuntimeError("dropped")
        expect(RuntimeError, "dropped", inside)
        node.close_output("out")
        expect(ApusError, "was closed", lambda: node.send_output("out", b"x"))
        node.log("info", "logged from python")
        node.close()
        expect(ApusError, "the node was closed", lambda: node.next())
        print("checks:", "ok" if all(r == "ok" for r in results) else results)
    '''))
    run = dataflow.run("nodes:\n  - id: checks\n    path: checks.py\n    outputs: [out]\n")
    assert run.status == 0, run
    # The log line goes to stderr and "ok" to stdout: two pipes, read in either order.
    assert sorted(run.lines("checks")) == ["INFO  logged from python", "checks: ok"], run
    dataflow.expect_clean()


BATCH_SENDER = EXPECT + textwrap.dedent('''
    import numpy as np
    from apus import Node, ApusError
    node = Node()
    rows = np.arange(24, dtype=np.float32).reshape(6, 4)
    results.append("ok" if node.send_many("out", rows) == 6 else "rows not all sent")
    cubes = np.arange(12, dtype=np.int16).reshape(2, 2, 3)
    node.send_many("out", cubes, {"kind": "cube"})
    node.send_many("out", [b"ab", "text", np.array([1, 2], np.uint64)], [{"i": 0}, {"i": 1}, {"i": 2}])
    results.append("ok" if node.send_many("out", []) == 0 else "an empty batch sent something")
    expect(ValueError, "2 metadata dicts for 3 messages", lambda: node.send_many("out", [b"a"] * 3, [{}, {}]))
    expect(TypeError, "complex128", lambda: node.send_many("out", np.zeros((2, 2), dtype=complex)))
    expect(TypeError, "a dict or a list of dicts", lambda: node.send_many("out", [b"a"], "meta"))
    expect(ApusError, "output 'nope' is not declared", lambda: node.send_many("nope", [b"a"]))
    for n in range(1, 71):  # more element type and shape pairs than a node keeps described
        node.send_output("out", np.full((n, 1), n, np.uint8))
    node.send_output("out", b"")
    print("sender:", "ok" if all(r == "ok" for r in results) else results)
''')

BATCH_RECEIVER = textwrap.dedent('''
    import numpy as np
    from apus import Node
    node = Node()
    got, batches, kept = [], 0, None
    while (events := node.next_many(8)) is not None:
        batches += 1
        assert 1 <= len(events) <= 8, len(events)
        for event in events:
            if event.type == "INPUT":
                got.append((event.value, event.metadata, event.timestamp))
                if kept is None:
                    kept = event.value  # outlives its event and the batch: the array pins the sample
        del events, event
    values, metadata, stamps = zip(*got)
    rows = np.arange(24, dtype=np.float32).reshape(6, 4)
    checks = [len(got) == 6 + 2 + 3 + 70 + 1]
    checks += [v.dtype == np.float32 and v.shape == (4,) and np.array_equal(v, rows[i]) and m == {}
               for i, (v, m) in enumerate(zip(values[:6], metadata[:6]))]
    cubes = np.arange(12, dtype=np.int16).reshape(2, 2, 3)
    checks += [v.dtype == np.int16 and v.shape == (2, 3) and np.array_equal(v, cubes[i]) and m == {"kind": "cube"}
               for i, (v, m) in enumerate(zip(values[6:8], metadata[6:8]))]
    checks += [bytes(values[8]) == b"ab", values[9] == "text", values[10].dtype == np.uint64 and list(values[10]) == [1, 2]]
    checks += [[m["i"] for m in metadata[8:11]] == [0, 1, 2]]
    checks += [v.shape == (n, 1) and v.dtype == np.uint8 and bool(np.all(v == n)) for n, v in zip(range(1, 71), values[11:81])]
    checks += [values[81].shape == (0,)]
    checks += [list(stamps) == sorted(stamps), len(set(stamps[:6])) > 1]  # each message its own send time
    checks += [not kept.flags.writeable, np.array_equal(kept, rows[0])]
    print("receiver:", "ok" if all(checks) else [i for i, c in enumerate(checks) if not c], "batches", batches)
''')


def test_batches_send_and_receive_many_messages_each_with_its_own_description(dataflow):
    """send_many (rows of an array, a list with a dict each) and next_many, with the checks of
    what they refuse; the element type and shape descriptions a node keeps run out and still work."""
    dataflow.write("sender.py", BATCH_SENDER).write("receiver.py", BATCH_RECEIVER)
    run = dataflow.run("""
nodes:
  - id: sender
    path: sender.py
    outputs: [out]
  - id: receiver
    path: receiver.py
    inputs: {in: {source: sender/out, queue_policy: backpressure, queue_size: 16}}
""")
    assert run.status == 0, run
    assert ok_line(run, "sender") == "sender: ok", run
    receiver = ok_line(run, "receiver")
    assert receiver.startswith("receiver: ok batches "), run
    assert int(receiver.split()[-1]) < 82, run  # some calls took more than one event
    dataflow.expect_clean()


def test_pip_installs_the_package_from_the_header(tmp_path):
    target = tmp_path / "site"
    environment = dict(os.environ, APUS=str(APUS))
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
                              "--target", str(target), str(REPO / "python")],
                             env=environment, capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    probe = subprocess.run([sys.executable, "-c", "import apus, apus._native as n; print(apus.__version__, n.lib.apus_version() != n.ffi.NULL)"],
                           env=dict(os.environ, PYTHONPATH=str(target)), capture_output=True, text=True, cwd=tmp_path)
    header_version = re.search(r'#define APUS_VERSION "([^"]+)"', (REPO / "include" / "apus.h").read_text()).group(1)
    assert probe.stdout.strip() == f"{header_version} True", probe.stderr


def test_the_demo_dataflow_runs_c_python_and_swift_nodes_together(dataflow):
    environment = dict(os.environ, APUS_TEST_TAG=dataflow.tag)
    run = subprocess.run([str(APUS), "run", "dataflows/demo.yml", "--no-color", "--stop-after", "4s"], cwd=REPO,
                         env=environment, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    monitor = [line for line in lines if line.startswith("[monitor] monitor: frame: ")]
    assert monitor and " msg/s, latency p50 " in monitor[0] and "| boxes: " in monitor[0], run.stdout
    assert any(line.startswith("[sink] sink: boxes #") for line in lines), run.stdout
    assert any(line.startswith("[camera] camera: sent ") for line in lines), run.stdout
    assert any(line.startswith("[detector] detector: ") and line.endswith(" boxes") for line in lines), run.stdout
    dataflow.expect_clean()


def test_metadata_keys_are_capped_and_a_second_init_says_the_node_exists(dataflow):
    """8,000 keys took 2.9 s to set (each looked for among the others); a metadata object now
    holds at most 1024, set in constant time each. A second apus_node_init_from_env() said the
    variables were "not set"; it says the process joined already."""
    dataflow.write("probe.py", textwrap.dedent("""
        import time
        from apus._native import ffi, lib
        node = lib.apus_node_init_from_env()
        assert node != ffi.NULL, ffi.string(lib.apus_last_error()).decode()
        metadata = lib.apus_metadata_new()
        started = time.perf_counter()
        statuses = {lib.apus_metadata_set_int(metadata, f"key{i}".encode(), i) for i in range(1024)}
        elapsed = time.perf_counter() - started
        print("set 1024:", statuses, "fast" if elapsed < 1 else f"slow {elapsed:.2f} s")
        print("set again:", lib.apus_metadata_set_int(metadata, b"key7", 70))
        print("1025th:", lib.apus_metadata_set_int(metadata, b"one-more", 1), ffi.string(lib.apus_last_error()).decode())
        second = lib.apus_node_init_from_env()
        print("second init:", second == ffi.NULL, ffi.string(lib.apus_last_error()).decode())
        lib.apus_metadata_free(metadata)
        lib.apus_node_free(node)
    """))
    run = dataflow.run("nodes:\n  - id: probe\n    path: probe.py\n")
    assert run.status == 0, run
    lines = run.lines("probe")
    assert lines[0] == "set 1024: {0} fast", run
    assert lines[1] == "set again: 0", run
    assert lines[2].startswith("1025th: -2 apus_metadata_set_int: 'one-more' would be parameter 1025; metadata holds at most 1024"), run
    assert lines[3].startswith("second init: True apus_node_init_from_env: this process has already joined its dataflow"), run
    dataflow.expect_clean()
