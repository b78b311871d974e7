"""The soak's restarting node: reads the source on a backpressure edge, and fails on purpose
after 30 s, so that restart_policy brings it back again and again. Each incarnation says how
many messages it took, so the soak can check that a restart loses none of them."""
import sys
import time

from apus import Node

node = Node()
started = time.monotonic()
received = 0
for event in node:
    if event.type == "INPUT":
        received += 1
    if time.monotonic() - started > 30:
        print(f"received {received}", flush=True)
        print("failing on purpose after 30 s", file=sys.stderr, flush=True)
        sys.exit(1)
print(f"received {received}", flush=True)
