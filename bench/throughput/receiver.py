"""Counts what bench/throughput/sender.py sends until its input closes (dora-rs's Python API)."""
import json
import time

from dora import Node

node = Node()
received, last = 0, None
for event in node:
    if event["type"] == "INPUT":
        received += 1
        last = time.time()
print(json.dumps({"received": received, "last": last}), flush=True)
