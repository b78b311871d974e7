"""dora-rs's Python node API, provided by Apus so nodes written for dora run unchanged under `apus run`.

    from dora import Node
    import pyarrow as pa

    node = Node()
    for event in node:                                  # ends after STOP
        if event["type"] == "INPUT":
            values = event["value"]                     # a pyarrow.Array
            node.send_output("out", pa.array([1, 2]), {"seq": 1})

`apus run` puts this package first on its Python nodes' path (turn it off with `apus run
--no-dora-python` or APUS_DORA_PYTHON=0); it is never installed into an environment.

How values travel:
- bytes, and primitive Arrow arrays (integers, floats, booleans) without nulls travel as Apus
  element types: they arrive as Arrow arrays over the sender's shared memory, with no copy (booleans
  are copied once, as Arrow packs them in bits), and Apus-native nodes see them as typed arrays.
- Every other Arrow array (strings, structs, lists, arrays with nulls, ...) travels as Arrow IPC and
  arrives as the same type and values. Apus-native nodes see its bytes, with the metadata
  parameter `apus.arrow` = "ipc".
- Messages from Apus-native nodes arrive as flat Arrow arrays of their element type (UInt8Array
  for bytes, a one-element StringArray for text); timer ticks carry an empty NullArray, as in dora.
"""

import datetime
import json
import logging
import os
import time

try:
    import pyarrow as pa
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the dora module of Apus needs pyarrow, which this Python does not have: "
        "python3 -m pip install pyarrow (Apus-native nodes use `from apus import Node` without it)"
    ) from error

import numpy as np

try:
    from apus.node import ApusError
    from apus.node import Node as _ApusNode
except ImportError as _missing:  # outside `apus run`: DoraStatus and dora.testing still work
    _ApusNode = None
    _APUS_MISSING = _missing

    class ApusError(Exception):
        pass

__all__ = ["Node", "DoraStatus"]


def __getattr__(name):
    # dora's ROS 2 bridge and tensor pool are not part of Apus: say so instead of "cannot import name".
    if name.startswith("Ros2") or name in ("TensorPool", "tensor_pool"):
        raise ImportError(f"dora.{name}: Apus does not provide dora's ROS 2 bridge or tensor pool "
                          "(a node can use rclpy itself, next to `from dora import Node`)")
    raise AttributeError(f"module 'dora' has no attribute {name!r}")
__version__ = "1.1.0"  # the dora-rs API this module follows

_ARROW_KEY = "apus.arrow"


class DoraStatus:
    """dora's operator status values, for code that imports them."""

    CONTINUE = 0
    STOP = 1
    STOP_ALL = 2


def _failure(error):
    return RuntimeError(str(error))


class _LogHandler(logging.Handler):
    """Python `logging` records into the node's log, as dora bridges them."""

    _LEVELS = {"CRITICAL": "error", "ERROR": "error", "WARNING": "warn", "INFO": "info", "DEBUG": "debug"}

    def __init__(self, node):
        super().__init__()
        self._node = node

    def emit(self, record):
        try:
            self._node.log(self._LEVELS.get(record.levelname, "info"), self.format(record))
        except Exception:
            self.handleError(record)


def _arrow(array):
    """An Arrow array over a numpy array's memory (no copy for numbers; bools are bit-packed)."""
    return pa.array(np.ravel(array))


# Arrow arrays of numbers, by class: (Apus element type, bytes per element). Without nulls they go
# from their Arrow buffer straight into shared memory.
_FLAT = {array: (code, size) for code, (array, size) in enumerate((
    (pa.UInt8Array, 1), (pa.UInt16Array, 2), (pa.UInt32Array, 4), (pa.UInt64Array, 8), (pa.Int8Array, 1),
    (pa.Int16Array, 2), (pa.Int32Array, 4), (pa.Int64Array, 8), (pa.HalfFloatArray, 2), (pa.FloatArray, 4),
    (pa.DoubleArray, 8)))}


def _payload(data):
    """(what apus.Node.send_output takes, extra metadata) for dora's `data`."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return data, None
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks()
    if isinstance(data, pa.Array):
        kind = data.type
        if data.null_count == 0 and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            return data.to_numpy(zero_copy_only=True), None
        if data.null_count == 0 and pa.types.is_boolean(kind):
            return data.to_numpy(zero_copy_only=False), None
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, pa.schema([("value", kind)])) as writer:
            writer.write_batch(pa.record_batch([data], names=["value"]))
        return memoryview(sink.getvalue()), {_ARROW_KEY: "ipc"}
    if isinstance(data, np.ndarray):
        return data, None
    raise RuntimeError(f"invalid `data` type {type(data).__name__}: send bytes or a pyarrow.Array")


class _InputEvent(dict):
    """dora's INPUT event dict. `value` and `metadata` are made on first access, so an event that is
    only counted or routed by its id costs no conversion; the sample stays pinned while it lives."""

    __slots__ = ("_node", "_event")

    def __init__(self, node, event):
        super().__init__(type="INPUT", id=event.id, kind="dora", value=None, metadata=None)
        self._node, self._event = node, event

    def _resolve(self):
        event = self._event
        if event is None:
            return
        self._event = None
        node = self._node
        parameters = dict(event.metadata)
        encoded = parameters.pop(_ARROW_KEY, None)
        timestamp = datetime.datetime.fromtimestamp(
            (event.timestamp + node._epoch_offset_ns) / 1e9, tz=datetime.timezone.utc)
        value = event.value
        if encoded == "ipc":
            value = pa.ipc.open_stream(pa.py_buffer(value)).read_next_batch().column(0)
        elif isinstance(value, str):
            value = pa.array([value], type=pa.string())
        elif dict.__getitem__(self, "id") in node._timers and value.size == 0:
            value = pa.nulls(0)
        else:
            value = _arrow(value)
        dict.__setitem__(self, "value", value)
        dict.__setitem__(self, "metadata", {"timestamp": timestamp, **parameters})

    def __getitem__(self, key):
        if key in ("value", "metadata"):
            self._resolve()
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        if key in ("value", "metadata"):
            self._resolve()
        return dict.get(self, key, default)

    def items(self):
        self._resolve()
        return dict.items(self)

    def values(self):
        self._resolve()
        return dict.values(self)

    def copy(self):
        self._resolve()
        return dict(self)

    def pop(self, key, *default):
        self._resolve()
        return dict.pop(self, key, *default)

    def __eq__(self, other):
        self._resolve()
        return dict.__eq__(self, other)

    __hash__ = None

    def __repr__(self):
        self._resolve()
        return dict.__repr__(self)


class _LevelLogging:
    """dora's log_<level> functions, each a `log(level, message)`."""

    def log_error(self, message):
        self.log("error", message)

    def log_warn(self, message):
        self.log("warn", message)

    def log_info(self, message):
        self.log("info", message)

    def log_debug(self, message):
        self.log("debug", message)

    def log_trace(self, message):
        self.log("trace", message)


class _RawSample:
    """What `send_output_raw` gives: a context manager over the sample's buffer, or `as_memoryview`
    and `send` by hand."""

    def __init__(self, reservation, parameters):
        self._reservation = reservation
        self._parameters = parameters

    def as_memoryview(self):
        return self._reservation.buffer

    def send(self):
        try:
            self._reservation.send(self._parameters)
        except ApusError as error:
            raise _failure(error) from None

    def __enter__(self):
        return self._reservation.buffer

    def __exit__(self, kind, error, trace):
        if kind is None:
            self.send()
        else:
            self._reservation.discard()


class Node(_LevelLogging):
    """A dora node: `Node()` joins the dataflow `apus run` started this process in."""

    def __init__(self, node_id=None, daemon_port=None, _apus_node=None):
        # _apus_node: a Python operator's view of its runtime node (apus.operators makes it).
        if _ApusNode is None and _apus_node is None:
            raise RuntimeError(f"dora.Node needs Apus's apus module ({_APUS_MISSING}): run the node with `apus run`, "
                               "or `pip install ./python` from the Apus tree")
        try:
            self._node = _ApusNode() if _apus_node is None else _apus_node
        except ApusError as error:
            raise _failure(error) from None
        if node_id is not None and node_id != self._node.id:
            raise RuntimeError(f"Node({node_id!r}): this process runs node {self._node.id!r} of its dataflow "
                               "(Apus has no dynamic nodes)")
        self._timers = {input_id for input_id, source in zip(self._node.inputs, self._node.sources)
                        if "/timer/" in source}
        self._sources = dict(zip(self._node.inputs, self._node.sources))
        self._closed = set()
        # CLOCK_MONOTONIC → UTC, for metadata["timestamp"] as dora gives it.
        self._epoch_offset_ns = time.time_ns() - time.monotonic_ns()
        root = logging.getLogger()
        if not root.handlers:
            handler = _LogHandler(self._node)
            handler.setFormatter(logging.Formatter("%(message)s"))
            root.addHandler(handler)
            if root.level == logging.WARNING:
                root.setLevel(logging.INFO)

    # Receiving

    def _event(self, event):
        kind = event.type
        if kind == "INPUT":
            return _InputEvent(self, event)
        if kind == "INPUT_CLOSED":
            self._closed.add(event.id)
            return {"type": "INPUT_CLOSED", "id": event.id, "kind": "dora"}
        if kind == "STOP":
            cause = "ALL_INPUTS_CLOSED" if self._sources and self._closed >= set(self._sources) else "MANUAL"
            return {"type": "STOP", "id": cause, "kind": "dora"}
        if kind == "NODE_FAILED":
            failed = event.id
            affected = [i for i, source in self._sources.items() if source.split("/", 1)[0] == failed]
            return {"type": "NODE_FAILED", "source_node_id": failed, "affected_input_ids": affected,
                    "error": event.message, "kind": "dora"}
        return {"type": "ERROR", "error": event.message, "kind": "dora"}

    def next(self, timeout=None):
        """The next event as a dict; None after `timeout` seconds without one, or once the stream
        has ended (after STOP)."""
        try:
            event = self._node.next(timeout)
        except ApusError as error:
            raise _failure(error) from None
        return None if event is None else self._event(event)

    recv = next

    def try_recv(self):
        """The next event if one is waiting, else None; never blocks."""
        return self.next(0)

    def drain(self):
        """Every event waiting now, as a list; never blocks."""
        events = []
        try:
            while batch := self._node.next_many(256, 0):
                events.extend(self._event(event) for event in batch)
        except ApusError as error:
            raise _failure(error) from None
        return events

    def __iter__(self):
        return self

    def __next__(self):
        try:
            event = self.next()
        except KeyboardInterrupt:
            raise StopIteration from None
        if event is None:
            raise StopIteration
        return event

    # Sending

    def send_output(self, output_id, data, metadata=None):
        """Sends `data` (bytes or a pyarrow.Array) on `output_id` with `metadata` (a dict of bool,
        int, float, str and lists of those; a `timestamp` key is replaced by the send time)."""
        parameters = {k: v for k, v in metadata.items() if k != "timestamp"} if metadata else None
        flat = _FLAT.get(type(data))
        if flat is not None and not parameters and data.null_count == 0:
            code, size = flat
            buffer = data.buffers()[1]
            try:
                self._node._send_flat(output_id, b"" if buffer is None else buffer, data.offset * size, len(data) * size,
                                      code)
            except ApusError as error:
                raise _failure(error) from None
            return
        payload, extra = _payload(data)
        parameters = parameters or {}
        if extra:
            parameters.update(extra)
        try:
            self._node.send_output(output_id, payload, parameters)
        except ApusError as error:
            raise _failure(error) from None

    def log(self, level, message, target=None, fields=None):
        text = str(message)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        self._node.log("debug" if level == "trace" else level, text)

    def send_output_raw(self, output_id, data_length, metadata=None):
        """A sample of `data_length` bytes of `output_id` in shared memory to write into and send
        with no copy: `with node.send_output_raw("out", n) as buffer:` (a writable memoryview; sent
        on leaving the block), or `sample.as_memoryview()` then `sample.send()`. Delete every numpy
        array or memoryview made from the buffer before it is sent."""
        parameters = {k: v for k, v in (metadata or {}).items() if k != "timestamp"}
        try:
            return _RawSample(self._node.reserve(output_id, data_length), parameters)
        except ApusError as error:
            raise _failure(error) from None

    async def recv_async(self, timeout=None):
        """`next(timeout)` for asyncio: waits in a worker thread (the GIL released), so the event
        loop runs on meanwhile. None after `timeout` seconds without an event, or at the end."""
        import asyncio  # here, not at the top: importing it costs every node 20 ms at start-up

        return await asyncio.get_running_loop().run_in_executor(None, self.next, timeout)

    def dataflow_descriptor(self):
        """The dataflow file this node runs in, parsed: a dict, as in the YAML."""
        path = os.environ.get("APUS_DATAFLOW_JSON")
        if not path:
            raise RuntimeError("dataflow_descriptor(): this node was not started by `apus run` (no APUS_DATAFLOW_JSON)")
        with open(path, encoding="utf-8") as file:
            return json.load(file)

    def node_config(self):
        """This node's entry of the dataflow file (a dict: its id, path, inputs, outputs, ...)."""
        for node in self.dataflow_descriptor().get("nodes", []):
            if isinstance(node, dict) and node.get("id") == self._node.id:
                return node
        return {}

    def restart_count(self):
        """How many times `apus run` has restarted this node (restart_policy): 0 at first."""
        return int(os.environ.get("APUS_RESTART_COUNT", "0"))

    def is_restart(self):
        """Whether this run of the node is a restart."""
        return self.restart_count() > 0

    def dataflow_id(self):
        return os.environ.get("APUS_RUN_ID", "")

    def __repr__(self):
        return f"<dora Node {self._node.id!r} (Apus)>"
