"""Asks the node what it runs in; fails once so that it is restarted, and says so."""
import sys

from dora import Node

node = Node()
descriptor = node.dataflow_descriptor()
config = node.node_config()
print(f"curious: {len(descriptor['nodes'])} node(s); mine has args {config['args']!r} and outputs {config['outputs']}")
print(f"curious: restart {node.restart_count()}, is_restart {node.is_restart()}, dataflow id set: {bool(node.dataflow_id())}")
if not node.is_restart():
    sys.exit(1)
try:
    from dora import Ros2Context  # noqa: F401
except ImportError as error:
    print(f"curious: {error}")
