"""A Python operator in dora's shape: it pairs each raw frame with its scaled copy (state kept across
events), checks the gain, and sends the scaled frame's sum with the frame number and peak."""
import numpy as np
import pyarrow as pa
from dora import DoraStatus


class Operator:
    def __init__(self):
        self.raw = []
        self.frame = 0

    def on_event(self, dora_event, send_output):
        if dora_event["type"] == "STOP":
            print(f"stats: summarised {self.frame} frames")
            return DoraStatus.STOP
        if dora_event["type"] != "INPUT":
            return DoraStatus.CONTINUE
        values = dora_event["value"].to_numpy()
        if dora_event["id"] == "raw":
            self.raw.append(values.copy())
            return DoraStatus.CONTINUE
        raw = self.raw.pop(0)
        if not np.array_equal(values, raw * np.float32(0.5)):
            raise ValueError(f"frame {self.frame}: the gain did not halve the samples")
        send_output("summary", pa.array([float(values.sum())]), {"frame": self.frame, "peak": float(values.max())})
        self.frame += 1
        return DoraStatus.CONTINUE
