from dora import Node

node = Node()
blocks = images = 0
for event in node:
    if event["type"] != "INPUT":
        continue
    data = event["value"].to_numpy()
    if event["id"] == "block":
        assert len(data) == 65536 and (data == blocks % 256).all(), data[:4]
        blocks += 1
    else:
        meta = event["metadata"]
        assert (meta["width"], meta["height"]) == (30, 20), meta
        assert list(data[:3]) == [images, 64, 128] and len(data) == 1800, data[:6]
        images += 1
print(f"checker: {blocks} blocks and {images} images as written")
