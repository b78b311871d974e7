"""Counts what bench/throughput/batch_sender.py sends, taking what is ready in one call
(Apus's Python API: `next_many`), until its input closes."""
import json
import os
import time

from apus import Node

node = Node()
received, last = 0, None
limit = int(os.environ["BATCH"])
while (events := node.next_many(limit)) is not None:
    received += sum(1 for event in events if event.type == "INPUT")
    last = time.time()
print(json.dumps({"received": received, "last": last}), flush=True)
