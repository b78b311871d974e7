import pyarrow as pa
from dora import Node

node = Node()
count = 0
for event in node:
    if event["type"] == "INPUT":
        node.send_output("values", pa.array([count], type=pa.int64()))
        count += 1
        if count == 20:
            break
