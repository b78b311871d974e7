"""dora.testing.MockNode: a node's logic tested with no dataflow running."""
import asyncio
import sys

import pyarrow as pa

from conftest import REPO

sys.path.insert(0, str(REPO / "python" / "compat"))
from dora.testing import MockNode  # noqa: E402


def doubler(node):
    for event in node:
        if event["type"] == "INPUT":
            node.send_output("doubled", pa.array([2 * v for v in event["value"].to_pylist()]), {"from": event["id"]})


def test_mock_node_replays_inputs_then_stop_and_keeps_outputs():
    node = MockNode([("a", pa.array([1, 2])), ("b", pa.array([5]))], metadata={"seq": 1})
    doubler(node)
    assert [array.to_pylist() for array in node.outputs["doubled"]] == [[2, 4], [10]]
    assert node.metadata_sent["doubled"] == [{"from": "a"}, {"from": "b"}]
    assert node.next() is None
    node.log_warn("careful")
    assert node.logs == [("warn", "careful")]


def test_mock_node_gives_stop_last_and_works_with_asyncio():
    node = MockNode([("tick", pa.array([0]))])

    async def consume():
        return [event async for event in node]

    events = asyncio.run(consume())
    assert [event["type"] for event in events] == ["INPUT", "STOP"]
    assert events[0]["metadata"] == {}


def test_outside_apus_run_dora_node_says_what_is_missing():
    import dora
    import pytest

    with pytest.raises(RuntimeError, match="apus run"):
        dora.Node()
