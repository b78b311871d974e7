"""The soak's restarting node: reads the source like any consumer, and fails on purpose after
30 s, so that restart_policy brings it back again and again."""
import sys
import time

from apus import Node

node = Node()
started = time.monotonic()
for event in node:
    if time.monotonic() - started > 30:
        print("failing on purpose after 30 s", file=sys.stderr, flush=True)
        sys.exit(1)
