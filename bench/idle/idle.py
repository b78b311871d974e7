"""A node that only waits on a 1 Hz timer (bench/bench.py idle CPU; dora-rs's Python API)."""
from dora import Node

for event in Node():
    pass
