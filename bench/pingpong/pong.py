"""The other half of ping.py: sends every `ping` back on `pong`. dora-rs's Python API only."""
from dora import Node

node = Node()
for event in node:
    if event["type"] == "INPUT" and event["id"] == "ping":
        node.send_output("pong", event["value"])
