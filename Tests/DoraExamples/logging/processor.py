import logging

import pyarrow as pa
from dora import Node

node = Node()
total = count = 0
for event in node:
    if event["type"] != "INPUT":
        continue
    value = event["value"][0].as_py()
    count += 1
    total += value
    logging.info("running average %.2f", total / count)
    if value > 25:
        logging.warning("reading %.1f is high", value)
    if count % 10 == 0:
        logging.error("checkpoint %d", count)
    node.send_output("result", pa.array([total / count]))
