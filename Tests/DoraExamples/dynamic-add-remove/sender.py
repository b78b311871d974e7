"""Sends 1, 2, 3, ... on each tick, 250 in all."""
import pyarrow as pa
from dora import Node

node = Node()
counter = 0
for event in node:
    if event["type"] == "INPUT" and event["id"] == "tick":
        counter += 1
        node.send_output("value", pa.array([counter], type=pa.int64()))
        if counter == 250:
            break
print(f"sender: sent {counter}")
