"""Unpaced sender for bench/bench.py (dora-rs's Python API only: runs on dora-rs and Apus).
Sends $COUNT messages of $SIZE bytes as fast as it can, then prints when it started."""
import json
import os
import time

import numpy as np
import pyarrow as pa
from dora import Node

size, count = int(os.environ["SIZE"]), int(os.environ["COUNT"])
node = Node()
payload = pa.array(np.zeros(size, dtype=np.uint8))
start = time.time()
for _ in range(count):
    node.send_output("data", payload)
print(json.dumps({"sent": count, "start": start, "end": time.time()}), flush=True)
