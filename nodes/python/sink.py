"""sink: prints what arrives, once a second at most per input: value summary and metadata."""
import time

import numpy as np
from apus import Node

node = Node()
last = {}
counts = {}
for event in node:
    if event.type == "INPUT":
        counts[event.id] = counts.get(event.id, 0) + 1
        now = time.monotonic()
        if now - last.get(event.id, 0) >= 1:
            last[event.id] = now
            value = event.value
            shown = value if isinstance(value, str) else np.array2string(value, precision=1, threshold=8)
            print(f"sink: {event.id} #{counts[event.id]}: {shown} {event.metadata}")
    elif event.type in ("INPUT_CLOSED", "NODE_FAILED"):
        print(f"sink: {event.type.lower().replace('_', ' ')}: {event.id}")
print("sink: received " + ", ".join(f"{count} on {input}" for input, count in sorted(counts.items())))
