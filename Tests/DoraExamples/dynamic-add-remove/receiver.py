"""Counts the values and checks that none is missing or out of order."""
from dora import Node

node = Node()
received = []
for event in node:
    if event["type"] == "INPUT":
        received.extend(event["value"].to_pylist())
    elif event["type"] == "STOP":
        break
in_order = received == list(range(1, len(received) + 1))
print(f"receiver: {len(received)} values, {'none missing' if in_order else 'SOME MISSING OR OUT OF ORDER'}")
