"""dora's test helper: `MockNode` stands in for `dora.Node` in a unit test of a node's logic, with no
dataflow running. It replays the given inputs as INPUT events, then STOP, and keeps what the node
sends.

    from dora.testing import MockNode
    import pyarrow as pa

    node = MockNode([("tick", pa.array([0])), ("tick", pa.array([1]))])
    run_my_node(node)
    assert node.outputs["result"][0].to_pylist() == [42]
"""

from . import _LevelLogging

__all__ = ["MockNode"]


class MockNode(_LevelLogging):
    """Events from `inputs` ((input id, value) pairs, each with its own copy of `metadata`), then
    STOP; `outputs` maps each output id to what was sent on it, in order (`metadata_sent` to the
    metadata that went with it)."""

    def __init__(self, inputs, metadata=None):
        self._events = [{"type": "INPUT", "id": input_id, "value": value, "metadata": dict(metadata or {})}
                        for input_id, value in inputs]
        self._events.append({"type": "STOP", "id": "MANUAL"})
        self._position = 0
        self.outputs = {}
        self.metadata_sent = {}
        self.logs = []

    def next(self, timeout=None):
        """The next event, or None once they are all given out (`timeout` is accepted and unused)."""
        if self._position == len(self._events):
            return None
        self._position += 1
        return self._events[self._position - 1]

    recv = next

    def try_recv(self):
        return self.next()

    async def recv_async(self, timeout=None):
        return self.next()

    def __iter__(self):
        return self

    def __next__(self):
        event = self.next()
        if event is None:
            raise StopIteration
        return event

    def __aiter__(self):
        return self

    async def __anext__(self):
        event = self.next()
        if event is None:
            raise StopAsyncIteration
        return event

    def send_output(self, output_id, data, metadata=None):
        self.outputs.setdefault(output_id, []).append(data)
        self.metadata_sent.setdefault(output_id, []).append(dict(metadata or {}))

    def log(self, level, message, target=None, fields=None):
        self.logs.append((level, str(message)))

    def dataflow_id(self):
        return "mock"

    def __repr__(self):
        return f"<dora MockNode, {len(self._events) - self._position} events left>"
