import json

from dora import Node

node = Node()
levels = {}
readings = 0
for event in node:
    if event["type"] != "INPUT":
        continue
    if event["id"] == "logs":
        entry = json.loads(event["value"][0].as_py())
        assert entry["node_id"] == "processor" and entry["message"] and entry["timestamp"].endswith("Z"), entry
        levels[entry["level"]] = levels.get(entry["level"], 0) + 1
    else:
        readings += 1
print(f"monitor: readings={readings} info={levels.get('info', 0)} warnings={levels.get('warn', 0)} errors={levels.get('error', 0)}")
