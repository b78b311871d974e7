"""Sends one message and exits (bench/bench.py start-up; dora-rs's Python API)."""
import pyarrow as pa
from dora import Node

Node().send_output("data", pa.array([1, 2, 3]))
