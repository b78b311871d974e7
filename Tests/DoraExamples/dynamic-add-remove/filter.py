"""Joins the running dataflow and passes on the even values."""
import pyarrow as pa
from dora import Node

node = Node()
passed = dropped = 0
first = None
for event in node:
    if event["type"] == "INPUT":
        values = event["value"].to_pylist()
        first = values[0] if first is None else first
        evens = [value for value in values if value % 2 == 0]
        if evens:
            node.send_output("output", pa.array(evens, type=pa.int64()))
        passed += len(evens)
        dropped += len(values) - len(evens)
    elif event["type"] == "STOP":
        break
print(f"filter: first {first}, passed {passed}, dropped {dropped}")
