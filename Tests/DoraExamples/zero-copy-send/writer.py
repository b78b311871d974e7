"""Writes each output straight into shared memory with send_output_raw: the context-manager
form for `block`, the by-hand form (as_memoryview, then send) for `image`."""
import numpy as np
from dora import Node

BLOCK = 64 * 1024
node = Node()
sent = 0
for event in node:
    if event["type"] != "INPUT":
        continue
    with node.send_output_raw("block", BLOCK) as buffer:
        values = np.asarray(buffer, dtype=np.uint8)
        values[:] = sent % 256
        del values
    sample = node.send_output_raw("image", 30 * 20 * 3, metadata={"width": 30, "height": 20})
    view = sample.as_memoryview()
    pixels = np.asarray(view, dtype=np.uint8).reshape(600, 3)
    pixels[:] = (sent, 64, 128)
    del pixels
    view.release()
    sample.send()
    sent += 1
    if sent == 10:
        break
print(f"writer: sent {sent} blocks and {sent} images")
