"""The soak's sink: counts the sequence numbers it receives and checks they come in order."""
from apus import Node

node = Node()
received = 0
out_of_order = 0
expected = 0
for event in node:
    if event.type == "INPUT":
        seq = int(event.value[0])
        if seq != expected:
            out_of_order += 1
        expected = seq + 1
        received += 1
print(f"received {received} out_of_order {out_of_order}", flush=True)
