"""detector: finds the brightest blob in each camera frame, with numpy, without copying the frame.

Input `frame`: uint8 H×W×3 RGB frames (read in place from the camera's shared memory).
Output `boxes`: float32 [x, y, width, height] of the bright region, with the frame number and
capture time passed on in the metadata. THRESHOLD (default 200) is the luma that counts as bright.
"""
import os

import numpy as np
from apus import Node

threshold = int(os.environ.get("THRESHOLD", "200"))
node = Node()
frames = 0
for event in node:
    if event.type != "INPUT":
        continue
    frame = event.value                                   # read-only view of shared memory
    luma = frame[..., 0] * 0.299 + frame[..., 1] * 0.587 + frame[..., 2] * 0.114
    ys, xs = np.nonzero(luma >= threshold)
    box = np.zeros(4, dtype=np.float32)
    if xs.size:
        box[:] = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    node.send_output("boxes", box, {"frame": event.metadata.get("frame", -1),
                                    "captured_ns": event.metadata.get("captured_ns", event.timestamp)})
    frames += 1
print(f"detector: {frames} frames, sent {frames} boxes")
