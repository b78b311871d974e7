"""Receives one message and exits (bench/bench.py start-up; dora-rs's Python API)."""
from dora import Node

node = Node()
for event in node:
    if event["type"] == "INPUT":
        assert event["value"].to_pylist() == [1, 2, 3]
        break
