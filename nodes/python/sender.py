"""sender: sends COUNT (default 10) numbered float64 arrays on `numbers`, one per tick."""
import os

import numpy as np
from apus import Node

count = int(os.environ.get("COUNT", "10"))
node = Node()
sent = 0
for event in node:
    if event.type == "INPUT" and sent < count:
        node.send_output("numbers", np.arange(4, dtype=np.float64) + sent, {"seq": sent})
        sent += 1
        if sent == count:
            break
print(f"sender: sent {sent} messages")
