"""Receives with `await node.recv_async(...)` and sends from the event loop."""
import asyncio

import pyarrow as pa
from dora import Node


async def main():
    node = Node()
    received = []
    ticks = 0

    async def heartbeat():  # the loop keeps running while recv_async waits
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    while (event := await node.recv_async(timeout=2.0)) is not None:
        if event["type"] == "INPUT":
            values = event["value"].to_pylist()
            received += values
            node.send_output("echoed", pa.array(values, type=pa.int64()))
        elif event["type"] == "STOP":
            break
    beat.cancel()
    assert received == list(range(20)), received
    assert ticks > 5, ticks
    print(f"echo: received and echoed {len(received)} values, the loop ran meanwhile")


asyncio.run(main())
