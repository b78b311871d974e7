import pyarrow as pa
from dora import Node

node = Node()
for event in node:
    if event["type"] == "INPUT":
        celsius = event["value"][0].as_py()
        node.send_output("result", pa.array([f"{celsius:.2f}"]), {"unit": "C"})
