"""The Python operator of the comparison (dora's shape): float32 samples times 0.5, with numpy."""
import numpy as np
import pyarrow as pa
from dora import DoraStatus


class Operator:
    def on_event(self, dora_event, send_output):
        if dora_event["type"] == "INPUT":
            samples = dora_event["value"].to_numpy().view(np.float32)
            send_output("out", pa.array(samples * np.float32(0.5)))
        return DoraStatus.CONTINUE
