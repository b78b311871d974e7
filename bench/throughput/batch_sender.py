"""Unpaced batching sender for bench/bench.py (Apus's Python API: `send_many`): sends $COUNT
messages of $SIZE bytes, $BATCH at a time (the rows of one array), then prints when it started."""
import json
import os
import time

import numpy as np
from apus import Node

size, count, batch = int(os.environ["SIZE"]), int(os.environ["COUNT"]), int(os.environ["BATCH"])
node = Node()
rows = np.zeros((batch, size), dtype=np.uint8)
start = time.time()
for _ in range(count // batch):
    node.send_many("data", rows)
print(json.dumps({"sent": count // batch * batch, "start": start, "end": time.time()}), flush=True)
