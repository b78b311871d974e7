from dora import Node

node = Node()
results = [(event["value"][0].as_py(), event["metadata"]["unit"]) for event in node if event["type"] == "INPUT"]
print(f"sink: {len(results)} results, first {results[0][0]} {results[0][1]}, last {results[-1][0]} {results[-1][1]}")
