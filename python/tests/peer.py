"""A Python peer for the tests, run in a guest domain (over vchan) by conftest.Host.

    peer.py sub PATTERN COUNT     prints READY once subscribed, then one line per message:
                                  topic|domid|name|local|sequence|data, and exits after COUNT
    peer.py pub TOPIC DATA...     publishes each DATA to TOPIC (asyncio API)
    peer.py bpub TOPIC DATA...    the same with the blocking API
"""

import asyncio
import sys

import vbus
import vbus.blocking


async def sub(pattern: str, count: int) -> None:
    async with vbus.connect() as bus:
        async with bus.subscribe(pattern) as s:
            await s.ready()
            print("READY", flush=True)
            n = 0
            async for m in s:
                print(f"{m.topic}|{m.sender.domid}|{m.sender.name}|{m.sender.local}|"
                      f"{m.sequence}|{m.data.decode()}", flush=True)
                n += 1
                if n == count:
                    break


async def pub(topic: str, data: list) -> None:
    async with vbus.connect() as bus:
        for d in data:
            await bus.publish(topic, d.encode())
        await bus.flush()


def bpub(topic: str, data: list) -> None:
    with vbus.blocking.connect() as bus:
        for d in data:
            bus.publish(topic, d.encode())
        bus.flush()


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "sub":
        asyncio.run(sub(sys.argv[2], int(sys.argv[3])))
    elif cmd == "pub":
        asyncio.run(pub(sys.argv[2], sys.argv[3:]))
    elif cmd == "bpub":
        bpub(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(f"peer.py: unknown command {cmd!r}")
