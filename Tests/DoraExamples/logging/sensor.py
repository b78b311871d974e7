import logging

import pyarrow as pa
from dora import Node

node = Node()
for count, event in enumerate(node):
    if event["type"] != "INPUT":
        continue
    temperature = 20.0 + count % 7
    print(f"raw print {count}")  # below min_log_level info: dropped
    logging.debug("sensor debug %d", count)  # dropped too
    logging.info("sensor reading %d: %.1f C", count, temperature)
    if temperature > 25:
        logging.warning("high temperature %.1f C", temperature)
    node.send_output("reading", pa.array([temperature]))
    if count == 99:
        break
