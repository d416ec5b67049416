"""The Python side of bench/python/run: the same roles as bench/pubsub and bench/rpc's C
programs, with the asyncio API. A benchmark: it prints figures and asserts nothing.

    pybench.py pub TOPIC COUNT SIZE                (prints start_ns=, as pubsub-bench)
    pybench.py sub PATTERN COUNT READY_FILE        (BLOCK; prints received=, dropped=, last_ns=)
    pybench.py serve SERVICE READY_FILE            (echo)
    pybench.py call SERVICE/METHOD COUNT INFLIGHT  (64-byte requests; prints calls/s)
"""

import asyncio
import sys
import time

import vbus


async def pub(topic: str, count: int, size: int) -> None:
    data = bytes(size)
    async with vbus.connect() as bus:
        start = time.monotonic_ns()  # CLOCK_MONOTONIC, as the C programs' start_ns
        for _ in range(count):
            await bus.publish(topic, data)
        await bus.flush(60)
        print(f"pub sent={count} start_ns={start} end_ns={time.monotonic_ns()}")


async def sub(pattern: str, count: int, ready: str) -> None:
    async with vbus.connect() as bus:
        s = bus.subscribe(pattern, policy=vbus.BLOCK)
        await s.ready()
        open(ready, "w").close()
        n = dropped = 0
        first = 0
        async for m in s:
            if n == 0:
                first = time.monotonic_ns()
            n += 1
            dropped += m.dropped
            if n == count:
                break
        print(f"sub received={n} dropped={dropped} first_ns={first} "
              f"last_ns={time.monotonic_ns()}")


async def serve(service: str, ready: str) -> None:
    async def echo(req: vbus.Request) -> bytes:
        return req.data
    async with vbus.connect() as bus:
        srv = bus.serve(service, echo)
        await srv.ready()
        open(ready, "w").close()
        await asyncio.Event().wait()


async def call(method: str, count: int, inflight: int) -> None:
    data = bytes(64)
    async with vbus.connect() as bus:
        for _ in range(100):
            await bus.call(method, data, timeout=10)
        left = count

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await bus.call(method, data, timeout=10)
        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(inflight)))
        dt = time.monotonic() - t0
        print(f"calls={count} inflight={inflight} calls/s={count / dt:.0f}")


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "pub":
        asyncio.run(pub(a[1], int(a[2]), int(a[3])))
    elif a[0] == "sub":
        asyncio.run(sub(a[1], int(a[2]), a[3]))
    elif a[0] == "serve":
        asyncio.run(serve(a[1], a[2]))
    elif a[0] == "call":
        asyncio.run(call(a[1], int(a[2]), int(a[3])))
    else:
        sys.exit(__doc__)
