"""RPC: typed calls (kvstore.proto) from Python to the C server and from the C client to a
Python server; cancellation reaching the server; deadlines; failures as statuses; streaming."""

import asyncio
import os
import subprocess
import sys

import kvstore_pb2 as pb
import pytest

import vbus
import vbus.blocking
import vbus.protobuf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import kvstore_server  # noqa: E402

STORE = pb.DESCRIPTOR.services_by_name["Store"]


async def test_python_calls_c_server(host):
    """Python (local) -> kvstore-server (C, in a guest): Put/Get/Delete typed, Scan streamed,
    a failure status chosen by the C implementation, and not-found once the server is gone."""
    sd = host.guest("kv-server")
    ready = host.log("ready")
    srv = host.bg(sd, [os.path.join(host.examples, "kvstore-server"), "--ready", ready],
                  name="cserver")
    await asyncio.to_thread(host.wait_file, ready, "kvstore-server never became active")
    async with vbus.connect(host.url) as bus:
        store = vbus.protobuf.Client(bus, STORE, timeout=5)
        assert (await store.Get(pb.GetRequest(key="colour"))).found is False
        assert (await store.Put(pb.PutRequest(key="colour", value=b"blue"))).replaced is False
        assert (await store.Put(pb.PutRequest(key="colour", value=b"green"))).replaced is True
        r = await store.Get(pb.GetRequest(key="colour"))
        assert (r.found, r.value) == (True, b"green")
        await store.Put(pb.PutRequest(key="column", value=b"3"))
        await store.Put(pb.PutRequest(key="size", value=b"L"))
        entries = {e.key: e.value async for e in store.Scan(pb.ScanRequest(prefix="col"))}
        assert entries == {"colour": b"green", "column": b"3"}
        with pytest.raises(vbus.InvalidArgument) as ei:
            await store.Put(pb.PutRequest(key="", value=b"x"))
        assert ei.value.message == "the key is empty"
        with pytest.raises(vbus.InvalidArgument):
            await store.Get(pb.PutRequest(key="wrong type"))  # refused before sending
        assert (await store.Delete(pb.DeleteRequest(key="colour"))).found is True
        out = await asyncio.to_thread(srv.wait_for, "Get key=colour caller local")
        assert "Delete key=colour" in out
        srv.proc.kill()
        srv.wait()
        # Until the broker has seen the server go: unavailable for a call that raced with the
        # kill, then not-found (no responders).
        with pytest.raises(vbus.NotFound):
            for _ in range(200):
                try:
                    await store.Get(pb.GetRequest(key="colour"))
                except vbus.Unavailable:
                    pass
                await asyncio.sleep(0.05)


async def test_c_calls_python_server(host):
    """kvstore-client (C, in a guest) -> the Python server (local, examples/kvstore_server.py):
    the C client's calls work unchanged, and the Python handler sees the C guest's identity
    and deadline."""
    cd = host.guest("kv-client")
    impl = kvstore_server.Store()
    seen = []

    class Recording(kvstore_server.Store):
        pass

    async with vbus.connect(host.url) as bus:
        rec = Recording()
        rec.data = impl.data
        orig_get = rec.Get

        async def get(request, req):
            seen.append((req.caller, req.deadline is not None and req.time_remaining() > 0))
            return await orig_get(request, req)
        rec.Get = get
        server = vbus.protobuf.serve(bus, STORE, rec)
        await server.ready()
        kv = os.path.join(host.examples, "kvstore-client")

        async def run(*args, rc=0):
            r = await asyncio.to_thread(host.run, cd, [kv, *args], False, 60, False)
            assert r.returncode == rc, (args, r.stdout, r.stderr)
            return (r.stdout + r.stderr).strip()

        for mode in ([], ["--sync"]):
            assert await run(*mode, "get", "colour", rc=1) == "not found"
            assert await run(*mode, "put", "colour", "blue") == "ok (new)"
            assert await run(*mode, "put", "colour", "red") == "ok (replaced)"
            assert await run(*mode, "get", "colour") == "red"
            assert await run(*mode, "delete", "colour") == "deleted"
        r = await asyncio.to_thread(host.run, cd, [kv, "put", "", "x"], False, 60, False)
        assert r.returncode == 3 and "invalid-argument: the key is empty" in r.stderr
        await run("put", "k1", "v1")
        await run("put", "k2", "v2")
        out = await run("scan", "k")
        assert sorted(out.splitlines()) == ["2 entries", "k1=v1", "k2=v2"]
        assert len(seen) == 4  # two gets per mode
        for caller, has_deadline in seen:
            assert (caller.domid, caller.name, caller.local) == (cd, "kv-client", False)
            assert has_deadline


async def test_cancel_reaches_server(host):
    """Cancelling the task that awaits a call cancels the call: the server's handler is
    cancelled (and sees req.cancelled)."""
    started = asyncio.Event()
    cancelled = asyncio.Event()
    seen = {}

    async def handler(req: vbus.Request) -> bytes:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen["cancelled_flag"] = req.cancelled
            cancelled.set()
            raise
        return b"never"

    async with vbus.connect(host.url) as sbus, vbus.connect(host.url) as cbus:
        server = sbus.serve("test.v1.Slow", handler)
        await server.ready()
        task = asyncio.create_task(cbus.call("test.v1.Slow/Wait", b"x", timeout=600))
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(cancelled.wait(), 30)
        assert seen["cancelled_flag"] is True
        # The server goes on serving.
        async def echo(req):
            return req.data
        server.close()
        server2 = sbus.serve("test.v1.Echo", echo)
        await server2.ready()
        assert await cbus.call("test.v1.Echo/Say", b"still here", timeout=10) == b"still here"


async def test_deadline_exceeded(host):
    """A call whose deadline passes raises DeadlineExceeded; the handler saw the deadline and
    was cancelled."""
    cancelled = asyncio.Event()
    deadlines = []

    async def handler(req: vbus.Request) -> bytes:
        deadlines.append(req.time_remaining())
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return b""

    async with vbus.connect(host.url) as sbus, vbus.connect(host.url) as cbus:
        server = sbus.serve("test.v1.Late", handler)
        await server.ready()
        with pytest.raises(vbus.DeadlineExceeded):
            await cbus.call("test.v1.Late/Wait", b"", timeout=0.3)
        await asyncio.wait_for(cancelled.wait(), 30)
        assert len(deadlines) == 1 and deadlines[0] is not None and deadlines[0] <= 0.3


async def test_failures_are_statuses(host):
    """Handler exceptions become statuses; no responders is NotFound; headers and the caller's
    identity reach the handler; the blocking API gets the same."""
    async def handler(req: vbus.Request) -> bytes:
        if req.method == "Boom":
            raise RuntimeError("exploded")
        if req.method == "Deny":
            raise vbus.PermissionDenied("not you")
        if req.method == "Big":
            return bytes(vbus.MESSAGE_MAX + 1)
        return repr((req.caller.local, req.caller.uid, req.headers)).encode()

    async with vbus.connect(host.url) as sbus, vbus.connect(host.url) as cbus:
        sbus._loop.set_exception_handler(lambda loop, ctx: None)  # the RuntimeError is expected
        server = sbus.serve("test.v1.Errors", handler)
        await server.ready()
        with pytest.raises(vbus.ApplicationError) as ei:
            await cbus.call("test.v1.Errors/Boom", timeout=10)
        assert ei.value.message == "RuntimeError: exploded"
        with pytest.raises(vbus.PermissionDenied) as ei:
            await cbus.call("test.v1.Errors/Deny", timeout=10)
        assert ei.value.message == "not you"
        with pytest.raises(vbus.Internal):
            await cbus.call("test.v1.Errors/Big", timeout=10)
        out = await cbus.call("test.v1.Errors/Who", timeout=10,
                              headers=[("trace-id", b"abc"), ("k", "v")])
        assert out == repr((True, os.getuid(), [("trace-id", b"abc"), ("k", b"v")])).encode()
        with pytest.raises(vbus.NotFound):
            await cbus.call("nobody.v1.Here/X", timeout=10)
        with vbus.blocking.connect(host.url) as b:
            with pytest.raises(vbus.NotFound):
                b.call("nobody.v1.Here/X", timeout=10)
            # The blocking call needs the server's loop to run meanwhile.
            r = await asyncio.to_thread(b.call, "test.v1.Errors/Who", b"", timeout=10)
            assert r.startswith(b"(True")


async def test_streams_both_ways(host):
    """A bidirectional streaming method served from Python: every message is echoed in order,
    and a consumer slower than the sender holds it back through flow control (bounded queue)."""
    async def echo(req: vbus.Request, stream: vbus.ServerStream) -> None:
        async for m in stream:
            await stream.send(m.upper())

    async with vbus.connect(host.url) as sbus, vbus.connect(host.url) as cbus:
        server = sbus.serve("test.v1.Echo", None, stream_methods={"Chat": echo})
        await server.ready()
        n = 2000
        async with cbus.stream("test.v1.Echo/Chat", timeout=60) as s:
            async def sender():
                for i in range(n):
                    await s.send(b"msg-%d" % i)
                await s.close_send()
            t = asyncio.create_task(sender())
            got = []
            async for m in s:
                got.append(m)
                if len(got) % 100 == 0:
                    await asyncio.sleep(0.001)  # a slow consumer
                assert len(s._queue) - s._head <= s._max_queue + 64
            await t
        assert got == [b"MSG-%d" % i for i in range(n)]
        # The unary handler is missing: unsupported.
        with pytest.raises(vbus.Unsupported):
            await cbus.call("test.v1.Echo/Other", timeout=10)


async def test_flooding_caller_is_refused(host):
    """A server runs at most max_inflight calls; the call beyond is refused at once with
    resource-exhausted (the caller that floods pays), and the server goes on."""
    release = asyncio.Event()
    running = 0

    async def handler(req: vbus.Request) -> bytes:
        nonlocal running
        running += 1
        await release.wait()
        return b"done"

    async with vbus.connect(host.url) as sbus, vbus.connect(host.url) as cbus:
        server = sbus.serve("test.v1.Busy", handler, max_inflight=2)
        await server.ready()
        t1 = asyncio.create_task(cbus.call("test.v1.Busy/A", timeout=30))
        t2 = asyncio.create_task(cbus.call("test.v1.Busy/B", timeout=30))
        while running < 2:
            await asyncio.sleep(0.01)
        with pytest.raises(vbus.ResourceExhausted) as ei:
            await cbus.call("test.v1.Busy/C", timeout=30)
        assert "busy" in ei.value.message
        release.set()
        assert await t1 == b"done" and await t2 == b"done"
        assert server.inflight == 0
        assert await cbus.call("test.v1.Busy/D", timeout=30) == b"done"


async def test_typed_server_refuses_garbage(host):
    """Bytes that do not parse as the method's input give invalid-argument; the typed Python
    server goes on serving; a method of another service is not-found."""
    async with vbus.connect(host.url) as sbus, vbus.connect(host.url) as cbus:
        server = vbus.protobuf.serve(sbus, STORE, kvstore_server.Store())
        await server.ready()
        with pytest.raises(vbus.InvalidArgument):
            await cbus.call("storage.v1.Store/Get", b"\xff\xff\xff\xff", timeout=10)
        with pytest.raises(vbus.NotFound):
            await cbus.call("storage.v1.Store/Nope", b"", timeout=10)
        store = vbus.protobuf.Client(cbus, STORE, timeout=10)
        assert (await store.Put(pb.PutRequest(key="k", value=b"v"))).replaced is False
        assert (await store.Get(pb.GetRequest(key="k"))).value == b"v"


async def test_python_cancel_reaches_c_server(host):
    """A Python caller cancels a call to the C kvstore-server (answering late with --delay):
    the C server sees the call cancelled."""
    sd = host.guest("kv-server")
    ready = host.log("ready")
    srv = host.bg(sd, [os.path.join(host.examples, "kvstore-server"), "--ready", ready,
                       "--delay", "3000"], name="cserver")
    await asyncio.to_thread(host.wait_file, ready, "kvstore-server never became active")
    async with vbus.connect(host.url) as bus:
        store = vbus.protobuf.Client(bus, STORE, timeout=60)
        t = asyncio.create_task(store.Get(pb.GetRequest(key="slow")))
        # The server logs a deferred call only when it answers it: wait until the broker has
        # routed the call (its calls in flight, as `vbusctl services` reports them).
        while True:
            r = await asyncio.to_thread(subprocess.run, [host.vbusctl, "--url", host.url,
                                                         "services", "--json",
                                                         "storage.v1.Store"],
                                        capture_output=True, text=True, env=host.env)
            if '"calls_in_flight":1' in r.stdout:
                break
            await asyncio.sleep(0.05)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        await asyncio.to_thread(srv.wait_for, "cancelled Get")


async def test_stream_cancel_and_deadline(host):
    """Leaving a streaming call early cancels it: the server's handler is cancelled. A
    streaming call whose deadline passes raises DeadlineExceeded in the caller's iteration,
    and its handler is cancelled too."""
    cancelled = asyncio.Queue()

    async def ticker(req: vbus.Request, stream: vbus.ServerStream) -> None:
        try:
            i = 0
            while True:
                await stream.send(b"tick %d" % i)
                i += 1
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            await cancelled.put(req.method)
            raise

    async with vbus.connect(host.url) as sbus, vbus.connect(host.url) as cbus:
        server = sbus.serve("test.v1.Ticker", None,
                            stream_methods={"Ticks": ticker, "Slow": ticker})
        await server.ready()
        got = []
        async with cbus.call_stream("test.v1.Ticker/Ticks", b"", timeout=60) as replies:
            async for m in replies:
                got.append(m)
                if len(got) == 3:
                    break  # then leaving the async with cancels the call
        assert got == [b"tick 0", b"tick 1", b"tick 2"]
        assert replies.status == vbus.Cancelled.STATUS
        assert await asyncio.wait_for(cancelled.get(), 30) == "Ticks"
        with pytest.raises(vbus.DeadlineExceeded):
            async for _ in cbus.call_stream("test.v1.Ticker/Slow", b"", timeout=0.3):
                pass
        assert await asyncio.wait_for(cancelled.get(), 30) == "Slow"
        assert server.inflight == 0
