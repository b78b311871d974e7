"""A sensor: 50 frames of 256 float32 samples, frame k holding k * 1000 + 0, 1, ..., 255."""
import numpy as np
from apus import Node

FRAMES, LENGTH = 50, 256

node = Node()
frame = 0
for event in node:
    if event.type == "INPUT" and event.id == "tick":
        node.send_output("samples", (frame * 1000 + np.arange(LENGTH)).astype(np.float32))
        frame += 1
        if frame == FRAMES:
            break
