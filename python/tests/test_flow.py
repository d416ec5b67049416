"""Slow consumers: BLOCK loses nothing (100 000 messages to a slow asyncio consumer), DROP
counts what it loses; a broker restart mid-subscription is reported as a gap and the
iteration goes on."""

import asyncio

import vbus
import vbus.blocking

N_BLOCK = 100_000


async def test_block_slow_consumer_gets_everything(host):
    """A BLOCK subscriber that sleeps now and then receives all 100 000 messages, in order,
    none dropped: its bounded queue stops the connection from reading and the broker holds
    the publisher back (the publisher's await is where it waits)."""
    async with vbus.connect(host.url) as sbus, vbus.connect(host.url) as pbus:
        sub = sbus.subscribe("flow.block", policy=vbus.BLOCK, max_queue=256)
        await sub.ready()
        held = 0

        # 128-byte messages: the broker also bounds a BLOCK publisher by the count of its
        # messages held (publish_window / 64, vchand's per-item charge), which messages under
        # 64 bytes reach before the byte credit holds the publisher back (the publisher is then
        # reset with resource-exhausted: reported to the lead, see docs/python.md).
        pad = bytes(124)

        async def publisher():
            for i in range(N_BLOCK):
                await pbus.publish("flow.block", i.to_bytes(4, "little") + pad)
            await pbus.flush()

        t = asyncio.create_task(publisher())
        for i in range(N_BLOCK):
            m = await sub.get(60)
            assert int.from_bytes(m.data[:4], "little") == i
            assert m.sequence == i + 1 and m.dropped == 0 and not m.gap
            if sbus._held_by:
                held += 1
            if i % 1000 == 0:
                await asyncio.sleep(0.002)  # the slow part
            # Bounded: the queue's bound plus what one processing step can deliver: the credit
            # outstanding when it started and the credit libvbus returns during it, at most two
            # windows of 1 MiB (each message counted with a fixed 64-byte cost).
            assert len(sub._queue) <= 256 + 2 * (1 << 20) // 64
        await t
        # The consumer was slower than the publisher: its queue reached the bound.
        assert held > 0


async def test_drop_counts_what_is_lost(host):
    """A DROP subscriber that does not read while 20 000 messages are published loses some;
    every message is either received or counted in a later message's dropped."""
    n = 20_000
    with vbus.blocking.connect(host.url) as sbus, vbus.blocking.connect(host.url) as pbus:
        sub = sbus.subscribe("flow.drop", policy=vbus.DROP, max_queue=100)
        sub.ready()
        # sbus is not processed while this runs: the broker's queue for it overflows.
        for i in range(n):
            pbus.publish("flow.drop", b"data")
        pbus.flush()
        received = dropped = markers = 0
        while True:
            pbus.publish("flow.drop", b"end")
            pbus.flush()
            markers += 1
            try:
                while True:
                    m = sub.get(1.0)
                    dropped += m.dropped
                    if m.data == b"end":
                        break
                    received += 1
                break
            except vbus.DeadlineExceeded:
                continue
        assert dropped > 0
        assert received + dropped + 1 == n + markers


async def test_broker_restart_mid_subscription(host):
    """The broker is killed and restarted during an `async for`: the iteration goes on, the
    first message after the restart has gap=True and its sequence restarts at 1."""
    async with vbus.connect(host.url) as sbus, vbus.connect(host.url) as pbus:
        sub = sbus.subscribe("restart.>", policy=vbus.BLOCK)
        await sub.ready()
        await pbus.publish("restart.a", b"before")
        got = []
        async for m in sub:
            got.append(m)
            if len(got) == 1:
                assert (m.data, m.gap) == (b"before", False)
                await asyncio.to_thread(host.broker_kill9)
                await asyncio.to_thread(host.broker_start)
                # Publish until the new broker routes to the resubscribed subscription.
                while not (sbus.ready and sub.active):
                    await asyncio.sleep(0.05)
                while True:
                    try:
                        await pbus.publish("restart.b", b"after")
                        break
                    except vbus.Unavailable:
                        await asyncio.sleep(0.05)
            else:
                break
        assert got[1].data == b"after" and got[1].gap is True and got[1].sequence == 1
        assert sbus.reconnects >= 1


async def test_drop_queue_bounded_in_bytes(host):
    """A DROP subscription's queue is bounded in bytes too: 64 messages of 16 KiB published
    while the consumer does not read leave at most 64 KiB queued; everything is received or
    counted as dropped."""
    n, size, bound = 64, 16 << 10, 64 << 10
    with vbus.blocking.connect(host.url) as sbus, vbus.blocking.connect(host.url) as pbus:
        sub = sbus.subscribe("flow.big", policy=vbus.DROP, max_queue_bytes=bound)
        sub.ready()
        for _ in range(n):
            pbus.publish("flow.big", bytes(size))
        pbus.flush()
        received = dropped = markers = 0
        most = 0
        done = False
        while not done:  # markers until one arrives (a marker may be dropped too)
            pbus.publish("flow.big", b"end")
            pbus.flush()
            markers += 1
            try:
                while True:
                    sbus.wait(0.1)
                    most = max(most, sub._qbytes)
                    m = sub.get(1.0)
                    dropped += m.dropped
                    if m.data == b"end":
                        done = True
                        break
                    received += 1
            except vbus.DeadlineExceeded:
                pass
        assert most <= bound + size  # the bound, and at most the one message that crossed it
        assert dropped > 0 and received + dropped + 1 == n + markers
