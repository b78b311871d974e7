"""Checks every value: frame k's scaled samples are (k * 1000 + i) / 2, and its summary their sum."""
import sys

import numpy as np
from apus import Node

FRAMES, LENGTH = 50, 256

node = Node()
scaled = summaries = 0
for event in node:
    if event.type != "INPUT":
        continue
    if event.id == "scaled":
        expected = ((scaled * 1000 + np.arange(LENGTH)) * 0.5).astype(np.float32)
        if event.value.dtype != np.float32 or not np.array_equal(event.value, expected):
            sys.exit(f"sink: scaled frame {scaled} is wrong: {event.value[:4]}...")
        scaled += 1
    else:
        k = summaries
        expected = float(((k * 1000 + np.arange(LENGTH)) * 0.5).astype(np.float32).sum())
        peak = (k * 1000 + LENGTH - 1) * 0.5
        if event.value.tolist() != [expected] or event.metadata != {"frame": k, "peak": peak}:
            sys.exit(f"sink: summary {k} is wrong: {event.value.tolist()} {event.metadata}")
        summaries += 1
if (scaled, summaries) != (FRAMES, FRAMES):
    sys.exit(f"sink: got {scaled} scaled frames and {summaries} summaries of {FRAMES}")
print(f"sink: all {FRAMES} frames and summaries as expected")
