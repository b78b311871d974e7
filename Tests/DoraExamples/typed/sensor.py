import pyarrow as pa
from dora import Node

node = Node()
for count, event in enumerate(node):
    if event["type"] == "INPUT":
        node.send_output("reading", pa.array([20.0 + count / 4]))
        if count == 9:
            break
