"""The asyncio API: ``async with vbus.connect() as bus``.

The connection's fd is registered with the running loop (``loop.add_reader``, and
``loop.add_writer`` while libvbus has output waiting), and a ``loop.call_at`` timer follows the
timeout libvbus asks for; each event runs one ``vbus_conn_process()``. There is no thread and
no polling: between events the program sleeps in the loop's selector. The C callbacks only
record what arrived; the tasks that wait on a call, a subscription or a stream are woken after
the processing step, and servers' handlers run as tasks of their own.
"""

from __future__ import annotations

import asyncio
import errno as _errno
import select
from typing import Any, Awaitable, Callable, Dict, Optional

from ._core import (BLOCK, DROP, SERVER_INFLIGHT_DEFAULT, STREAM_HANDLERS,
                    STREAM_QUEUE_BYTES, STREAM_QUEUE_DEFAULT, SUBSCRIPTION_QUEUE_BYTES_DEFAULT,
                    SUBSCRIPTION_QUEUE_DEFAULT, Bytes, CallBase, CallOptions, ConnBase, Headers,
                    Message, Request, SubscriptionBase, check_data, check_name, failure_of,
                    request_from_c, _str)
from ._vbus_cffi import ffi, lib
from .errors import (DeadlineExceeded, Error, InvalidArgument, Unavailable, error_for_errno,
                     error_for_status)

__all__ = ["Bus", "connect", "Subscription", "Server", "CallStream", "ServerStream"]

Handler = Callable[[Request], Awaitable[Bytes]]
StreamHandler = Callable[[Request, "ServerStream"], Awaitable[None]]

_UINT64_MAX = (1 << 64) - 1


class Bus(ConnBase):
    """A connection to the broker, driven by the running asyncio loop.

    Use :func:`connect`; all methods must be called from the loop's thread.
    """

    def __init__(self, url: Optional[str] = None) -> None:
        self._loop = asyncio.get_running_loop()
        super().__init__(url)
        self._fd = -1
        self._writing = False
        self._reading = False
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_when: Optional[int] = None
        self._progress: Optional[asyncio.Future] = None
        self._held_by: set = set()  # BLOCK subscriptions over their queue bound
        self._tasks: set = set()
        self._kick_pending = False
        self._tbuf = ffi.new("uint64_t *")
        self._update()

    # the loop -------------------------------------------------------------------------------
    def _update(self) -> None:
        """Makes the loop's registrations match what libvbus wants now."""
        c = self._c
        if c is None:
            return
        fd = lib.vbus_conn_get_fd(c)
        if fd != self._fd:
            self._unregister()
            self._fd = fd
        want_read = fd >= 0 and not self._held_by
        want_write = fd >= 0 and bool(lib.vbus_conn_get_events(c) & select.POLLOUT)
        if want_read != self._reading:
            if want_read:
                self._loop.add_reader(fd, self._on_event)
            else:
                self._loop.remove_reader(fd)
            self._reading = want_read
        if want_write != self._writing:
            if want_write:
                self._loop.add_writer(fd, self._on_event)
            else:
                self._loop.remove_writer(fd)
            self._writing = want_write
        t = self._tbuf
        when = None
        if lib.vbus_conn_get_timeout(c, t) == 0 and t[0] != _UINT64_MAX:
            when = int(t[0])
        # A timer already due earlier is kept: firing early costs one processing step, which
        # brings the timer up to date; rescheduling on every change (over a vchan the timeout
        # moves with every call: "now + 1 s") would cost a timer per API call.
        if when is not None and (self._timer_when is None or when < self._timer_when):
            if self._timer is not None:
                self._timer.cancel()
            self._timer_when = when
            # loop.time() is time.monotonic(): CLOCK_MONOTONIC, the clock of libvbus.
            self._timer = self._loop.call_at(when / 1e6, self._on_timer)

    def _after_api(self) -> None:
        """After an API call that may have queued output: registrations, and one processing
        step soon. libvbus sends the vchan's event to the peer only from vbus_conn_process();
        its timeout says so (it is "now" while an event may be owed), but the timer kept above
        is the earlier one only, so a step is asked for here directly. One step per burst: the
        scheduled step is not scheduled twice."""
        self._update()
        if not self._kick_pending and self._c is not None:
            self._kick_pending = True
            self._loop.call_soon(self._on_kick)

    def _on_kick(self) -> None:
        self._kick_pending = False
        if not self._held_by:
            self._on_event()

    def _unregister(self) -> None:
        if self._fd >= 0:
            if self._reading:
                self._loop.remove_reader(self._fd)
            if self._writing:
                self._loop.remove_writer(self._fd)
        self._reading = self._writing = False
        self._fd = -1

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_when = None
        if self._held_by:
            return  # reading is held back for a BLOCK subscription: _hold() resumes it
        self._on_event()

    def _on_event(self) -> None:
        if self._c is None:
            return
        try:
            self._process_once()
        except BaseException as e:  # the loop's callbacks must not raise
            self._loop.call_exception_handler({"message": "vbus: processing failed",
                                               "exception": e})
        self._update()
        self._wake()

    def _wake(self) -> None:
        p = self._progress
        if p is not None:
            self._progress = None
            if not p.done():
                p.set_result(None)

    async def _wait_progress(self) -> None:
        """Waits for the next processing step (or the connection's end)."""
        if self._c is None:
            raise Unavailable("the connection is closed")
        if self._progress is None:
            self._progress = self._loop.create_future()
        await asyncio.shield(self._progress)
        if self._c is None:
            raise Unavailable("the connection is closed")

    def _hold(self, sub: "Subscription", held: bool) -> None:
        if held:
            self._held_by.add(sub)
        else:
            self._held_by.discard(sub)
            if not self._held_by and self._c is not None:
                # Catch up at once on what (and any timer) waited while held.
                self._loop.call_soon(self._on_event)
        self._update()

    # life -----------------------------------------------------------------------------------
    async def wait_ready(self, timeout: Optional[float] = 10.0) -> None:
        """Waits until the link to the broker is up; raises :class:`Unavailable` with the reason
        (no broker at that socket, ...) when @timeout (seconds, None for ever) passes first."""
        deadline = None if timeout is None else self._loop.time() + timeout
        while not self.ready:
            left = None if deadline is None else deadline - self._loop.time()
            if left is not None and left <= 0:
                err = lib.vbus_conn_get_last_error(self._conn())
                why = _errno.errorcode.get(-err, str(err)) if err else "no answer"
                raise Unavailable(f"could not reach the broker within {timeout} s ({why})")
            try:
                await asyncio.wait_for(self._wait_progress(), left)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        """Stops the servers' handlers, fails what is in flight, and closes the connection."""
        if self._c is None:
            return
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        lib.vbus_conn_flush(self._c, 200000)
        self._unregister()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._close_objects()
        self._free_conn()
        self._wake()

    async def __aenter__(self) -> "Bus":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task:
        t: asyncio.Task = self._loop.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    # publish --------------------------------------------------------------------------------
    async def publish(self, topic: str, data: Bytes) -> None:
        """Publishes one message to @topic.

        Waits while the broker holds this publisher back (a BLOCK subscriber is slow, or the
        link is full). Raises :class:`InvalidArgument` for a bad topic and
        :class:`MessageTooLarge` over :data:`vbus.MESSAGE_MAX` before anything is sent,
        :class:`Unavailable` while the link to the broker is down, and the broker's status if it
        refused the topic.
        """
        b = check_data(data)
        while not self._publish_try(topic, b):
            await self._wait_progress()
        self._after_api()

    async def flush(self, timeout: float = 10.0) -> None:
        """Waits until everything published so far was handed to the transport (at most
        @timeout seconds: :class:`DeadlineExceeded`)."""
        deadline = self._loop.time() + timeout
        while True:
            rc = lib.vbus_conn_flush(self._conn(), 0)  # 0: only tells whether unsent is left
            if rc == 0:
                return
            if rc != -_errno.ETIMEDOUT:
                raise error_for_errno(rc, "flush")
            if self._loop.time() > deadline:
                raise DeadlineExceeded(f"flush: data still queued after {timeout} s")
            self._after_api()
            await self._wait_progress()

    # subscribe ------------------------------------------------------------------------------
    def subscribe(self, pattern: str, *, policy: str = DROP,
                  max_queue: int = SUBSCRIPTION_QUEUE_DEFAULT,
                  max_queue_bytes: int = SUBSCRIPTION_QUEUE_BYTES_DEFAULT) -> "Subscription":
        """Subscribes to @pattern ("sensors.>", "a.*.c"); iterate the result with ``async for``.

        @policy: :data:`vbus.DROP` (a bounded queue: messages the consumer is too slow for are
        dropped and counted in the next message's ``dropped``) or :data:`vbus.BLOCK` (lossless:
        when @max_queue messages wait, the connection stops reading, so the broker holds the
        publishers back; note that this also pauses everything else on this connection until
        the consumer catches up). @max_queue_bytes bounds the same queue in bytes of data.
        Raises :class:`InvalidArgument` for a bad pattern.
        """
        sub = Subscription(self, pattern, policy, max_queue, max_queue_bytes)
        self._after_api()
        return sub

    # calls ----------------------------------------------------------------------------------
    async def call(self, method: str, data: Bytes = b"", *, timeout: Optional[float] = None,
                   headers: Headers = None) -> bytes:
        """Calls "service/Method" with @data and returns the reply's bytes.

        @timeout: the deadline in seconds (None: none), enforced by the broker, which tells the
        server. Raises the status as an exception: :class:`NotFound` (no responders),
        :class:`DeadlineExceeded`, :class:`Unavailable` (the server or the link went away),
        :class:`ApplicationError` and so on. Cancelling the awaiting task cancels the call, and
        the server is told.
        """
        b = check_data(data, "request")
        opts = CallOptions(timeout, headers)
        call = _Call(self)
        deadline = None if timeout is None else self._loop.time() + timeout
        while True:
            rc = call._start(method, b, opts)
            if rc == 0:
                break
            if rc == -_errno.EAGAIN:  # still connecting
                if deadline is not None and self._loop.time() >= deadline:
                    raise DeadlineExceeded(f"{method}: the connection was not ready in time")
                await self._wait_progress()
                continue
            if rc == -_errno.EINVAL:
                raise InvalidArgument(f"invalid method {method!r} (service/Method) or headers")
            raise error_for_errno(rc, f"call {method!r}")
        self._after_api()
        try:
            await asyncio.shield(call.future)
        except asyncio.CancelledError:
            if call.outcome is None:
                call._cancel()
                self._after_api()
            raise
        return call.result()

    def stream(self, method: str, *, timeout: Optional[float] = None,
               headers: Headers = None,
               max_queue: int = STREAM_QUEUE_DEFAULT) -> "CallStream":
        """Opens a streaming call: ``await s.send(data)``, ``await s.close_send()``, and
        ``async for reply in s``. Use it as ``async with`` so it is cancelled if left early."""
        return CallStream(self, method, timeout, headers, max_queue)

    def call_stream(self, method: str, data: Bytes = b"", *, timeout: Optional[float] = None,
                    headers: Headers = None,
                    max_queue: int = STREAM_QUEUE_DEFAULT) -> "CallStream":
        """A server-streaming call: sends @data, closes this side, and yields each reply::

            async with bus.call_stream("svc/Scan", req) as replies:
                async for r in replies:
                    ...

        Leaving the ``async with`` cancels the call if it has not ended (the server is told).
        A bare ``async for`` that breaks out early leaves the call running until it ends or
        its deadline passes (Python does not close an iterator on ``break``): call
        ``cancel()`` then, or use ``async with``.
        """
        b = check_data(data, "request")
        return CallStream(self, method, timeout, headers, max_queue, request=b)

    # serve ----------------------------------------------------------------------------------
    def serve(self, service: str, handler: Optional[Handler] = None, *,
              stream_methods: Optional[Dict[str, StreamHandler]] = None,
              max_inflight: int = SERVER_INFLIGHT_DEFAULT) -> "Server":
        """Serves @service (such as "storage.v1.Store").

        @handler: ``async def handler(req: vbus.Request) -> bytes`` for every unary method
        (dispatch on ``req.method``); it sees the caller (``req.caller``) and the deadline
        (``req.deadline``); its task is cancelled when the caller cancels, the deadline passes
        or the caller goes away. Raising :class:`vbus.Error` answers with its status, any other
        exception with ``application``.
        @stream_methods: method name -> ``async def h(req, stream: ServerStream)`` for streaming
        methods: the request messages come from ``async for m in stream``, replies go with
        ``await stream.send()``, and returning ends the call OK.
        @max_inflight: calls run at once; one more is answered ``resource-exhausted`` at once.
        """
        srv = Server(self, service, handler, stream_methods or {}, max_inflight)
        self._after_api()
        return srv


async def _connect(url: Optional[str], timeout: Optional[float]) -> Bus:
    bus = Bus(url)
    try:
        await bus.wait_ready(timeout)
    except BaseException:
        await bus.close()
        raise
    return bus


class _Connecting:
    """What ``vbus.connect()`` returns: awaitable, and an async context manager."""

    def __init__(self, url: Optional[str], timeout: Optional[float]) -> None:
        self._args = (url, timeout)
        self._bus: Optional[Bus] = None

    def __await__(self) -> Any:
        return _connect(*self._args).__await__()

    async def __aenter__(self) -> Bus:
        self._bus = await _connect(*self._args)
        return self._bus

    async def __aexit__(self, *exc: Any) -> None:
        if self._bus is not None:
            await self._bus.close()


def connect(url: Optional[str] = None, *, timeout: Optional[float] = 10.0) -> _Connecting:
    """Connects to the broker; ``async with vbus.connect() as bus`` (or ``bus = await
    vbus.connect()``, then ``await bus.close()``).

    Waits until the link is up, at most @timeout seconds (then :class:`Unavailable` with the
    reason). @url: "unix:/path" or "vchan:<domid>"; None means $VBUS_URL, else the local broker
    socket if present, else vchan to domain 0 (as libvbus). Once up, the link reconnects by
    itself if the broker goes away (subscriptions continue, their next message has ``gap``).
    """
    return _Connecting(url, timeout)


class _Call(CallBase):
    def __init__(self, bus: Bus) -> None:
        super().__init__(bus)
        self.future: asyncio.Future = bus._loop.create_future()

    def _done(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


class Subscription(SubscriptionBase):
    """A subscription: ``async for msg in sub`` yields :class:`vbus.Message` objects.

    Also an async context manager (unsubscribes on exit); :meth:`close` unsubscribes.
    """

    _bus: Bus

    async def ready(self, timeout: Optional[float] = 10.0) -> None:
        """Waits until the broker accepted the subscription (messages published from then on
        reach it); raises its status if the broker refused it."""
        deadline = None if timeout is None else self._bus._loop.time() + timeout
        while not self.active:
            self._check_status()
            if deadline is not None and self._bus._loop.time() > deadline:
                raise DeadlineExceeded(f"subscription to {self.pattern!r} not active in time")
            try:
                await asyncio.wait_for(self._bus._wait_progress(),
                                       None if deadline is None else
                                       max(0.0, deadline - self._bus._loop.time()))
            except asyncio.TimeoutError:
                pass

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Message:
        while not self._queue:
            if self._ptr is None:
                raise StopAsyncIteration
            self._check_status()
            await self._bus._wait_progress()
        msg = self._pop()
        if self.policy == BLOCK and self in self._bus._held_by and \
                len(self._queue) <= self.max_queue // 2 and \
                self._qbytes <= self.max_queue_bytes // 2:
            self._bus._hold(self, False)
        return msg

    def _on_message(self, m: Any) -> None:
        super()._on_message(m)
        if self.policy == BLOCK and self._full():
            self._bus._held_by.add(self)  # _update() after processing stops the reader

    async def get(self, timeout: Optional[float] = None) -> Message:
        """The next message; :class:`DeadlineExceeded` if none came within @timeout seconds."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except asyncio.TimeoutError:
            raise DeadlineExceeded(f"no message on {self.pattern!r} within {timeout} s") from None

    def close(self) -> None:
        """Unsubscribes; iteration then ends."""
        self._close()
        if self in self._bus._held_by:
            self._bus._hold(self, False)
        self._bus._after_api()
        self._bus._wake()

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class Server:
    """A served service; :meth:`close` (or leaving ``async with``) stops serving."""

    def __init__(self, bus: Bus, service: str, handler: Optional[Handler],
                 stream_methods: Dict[str, StreamHandler],
                 max_inflight: int = SERVER_INFLIGHT_DEFAULT) -> None:
        if not isinstance(max_inflight, int) or max_inflight < 1:
            raise InvalidArgument(f"max_inflight must be a positive int, not {max_inflight!r}")
        self.max_inflight = max_inflight
        self.inflight = 0  # handlers running now
        self._bus = bus
        self.service = service
        self._handler = handler
        self._stream_methods = dict(stream_methods)
        self._ptr: Any = None
        self._handle = ffi.new_handle(self)
        self._stream_entries: Dict[str, Any] = {}
        s = check_name(service, "service")
        p = ffi.new("vbus_server **")
        rc = lib.vbus_serve(bus._conn(), s, lib._vbus_on_request, self._handle, p)
        if rc < 0:
            if rc == -_errno.EINVAL:
                raise InvalidArgument(f"invalid service name {service!r}")
            raise error_for_errno(rc, f"serve {service!r}")
        self._ptr = p[0]
        bus._live.add(self)
        for name, h in self._stream_methods.items():
            entry = _StreamMethod(self, h)
            rc = lib.vbus_server_stream_method(self._ptr, check_name(name, "method"),
                                               lib._vbus_on_request, entry._handle)
            if rc < 0:
                self.close()
                raise InvalidArgument(f"invalid method name {name!r}")
            self._stream_entries[name] = entry

    @property
    def active(self) -> bool:
        """True once the broker routes calls to this server."""
        return self._ptr is not None and bool(lib.vbus_server_is_active(self._ptr))

    def _check_status(self) -> None:
        if self._ptr is None:
            raise Unavailable("the server is closed")
        msg = ffi.new("char **")
        status = lib.vbus_server_get_status(self._ptr, ffi.cast("const char **", msg))
        if status > 0:
            raise error_for_status(status, _str(msg[0]) or f"serving {self.service!r} refused")

    async def ready(self, timeout: Optional[float] = 10.0) -> None:
        """Waits until the broker routes calls here; raises its status if it refused."""
        deadline = None if timeout is None else self._bus._loop.time() + timeout
        while not self.active:
            self._check_status()
            if deadline is not None and self._bus._loop.time() > deadline:
                raise DeadlineExceeded(f"serving {self.service!r}: not active in time")
            try:
                await asyncio.wait_for(self._bus._wait_progress(),
                                       None if deadline is None else
                                       max(0.0, deadline - self._bus._loop.time()))
            except asyncio.TimeoutError:
                pass

    def _on_request(self, req_c: Any) -> None:
        try:
            req = request_from_c(req_c)
        except BaseException:
            lib.vbus_request_fail(req_c, lib.VBUS_STATUS_INTERNAL, b"the Python binding failed")
            raise
        req._owner = self
        self._bus._requests.add(req)
        if self._handler is None:
            req._answer(None, lib.VBUS_STATUS_UNSUPPORTED, f"{req.full_method}: not implemented")
            return
        if self.inflight >= self.max_inflight:
            req._answer(None, lib.VBUS_STATUS_RESOURCE_EXHAUSTED,
                        f"the server is busy: {self.inflight} calls in flight")
            return
        self.inflight += 1
        req._task = self._bus._spawn(self._run(req))  # type: ignore[attr-defined]
        dl = req.deadline
        if dl is not None:
            req._timer = self._bus._loop.call_at(  # type: ignore[attr-defined]
                dl, self._on_deadline, req)

    def _on_deadline(self, req: Request) -> None:
        req._deadline_passed = True  # type: ignore[attr-defined]
        self._on_cancelled(req)

    def _on_cancelled(self, req: Request) -> None:
        req._cancelled = True
        t = getattr(req, "_task", None)
        if t is not None and not t.done():
            t.cancel()

    async def _run(self, req: Request) -> None:
        try:
            assert self._handler is not None
            out = await self._handler(req)
            try:
                data = check_data(out if out is not None else b"", "reply")
            except Error as e:
                req._answer(None, lib.VBUS_STATUS_INTERNAL, e.message)
            else:
                req._answer(data)
        except asyncio.CancelledError:
            # Usually discarded (the caller is gone); it matters when this side saw the deadline
            # pass before the broker did, or when the server is closed under the handler.
            if getattr(req, "_deadline_passed", False):
                req._answer(None, lib.VBUS_STATUS_DEADLINE_EXCEEDED, "deadline exceeded")
            elif req._cancelled:
                req._answer(None, lib.VBUS_STATUS_CANCELLED, "cancelled")
            else:
                req._answer(None, lib.VBUS_STATUS_UNAVAILABLE, "the server stopped")
        except BaseException as e:
            status, message = failure_of(e)
            req._answer(None, status, message)
            if not isinstance(e, Error):
                self._bus._loop.call_exception_handler({
                    "message": f"vbus: handler of {req.full_method} raised", "exception": e})
        finally:
            self.inflight -= 1
            t = getattr(req, "_timer", None)
            if t is not None:
                t.cancel()
            self._bus._requests.discard(req)
            self._bus._after_api()

    def _detach(self) -> None:
        self._ptr = None

    def close(self) -> None:
        """Stops serving; calls in flight are cancelled and answered ``unavailable``."""
        for req in list(self._bus._requests):
            if req._owner is self:
                t = getattr(req, "_task", None)
                if t is not None:
                    t.cancel()
        if self._ptr is not None:
            lib.vbus_server_free(self._ptr)
            self._ptr = None
        self._bus._live.discard(self)
        self._bus._after_api()

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class _StreamBase:
    """What the caller's and the server's side of a streaming call share."""

    def __init__(self, bus: Bus, max_queue: int) -> None:
        self._bus = bus
        self._ptr: Any = None
        self._handle = ffi.new_handle(self)
        self._queue: list = []
        self._head = 0
        self._qbytes = 0
        self._max_queue = max(1, max_queue)
        self._paused = False
        self._closed_by_peer = False  # the other end has no more messages
        self.status: Optional[int] = None
        self.message = ""

    def _on_message(self, data: Any, size: int) -> None:
        if data == ffi.NULL:
            self._closed_by_peer = True
            return
        self._queue.append(bytes(ffi.buffer(data, size)) if size else b"")
        self._qbytes += size
        if (len(self._queue) - self._head >= self._max_queue or
                self._qbytes >= STREAM_QUEUE_BYTES) and not self._paused:
            lib.vbus_stream_set_paused(self._ptr, True)
            self._paused = True

    def _on_end(self, status: int, message: Any) -> None:
        self.status = int(status)
        self.message = _str(message)
        self._ptr = None  # freed by libvbus when on_end returns
        self._bus._live.discard(self)
        self._ended()

    def _ended(self) -> None:
        pass

    def _on_writable(self) -> None:
        pass

    def _detach(self) -> None:
        self._ptr = None
        if self.status is None:
            self.status = lib.VBUS_STATUS_CANCELLED
            self.message = "the connection was closed"
            self._ended()

    def _take(self) -> Optional[bytes]:
        if self._head < len(self._queue):
            m = self._queue[self._head]
            self._queue[self._head] = b""
            self._head += 1
            self._qbytes -= len(m)
            if self._head > 256 and self._head * 2 > len(self._queue):
                del self._queue[:self._head]
                self._head = 0
            if self._paused and self._ptr is not None and \
                    len(self._queue) - self._head <= self._max_queue // 2 and \
                    self._qbytes <= STREAM_QUEUE_BYTES // 2:
                lib.vbus_stream_set_paused(self._ptr, False)
                self._paused = False
                self._bus._after_api()
            return m
        return None

    async def send(self, data: Bytes) -> None:
        """Sends one message, waiting while flow control holds it back; raises the stream's
        status once it ended."""
        b = check_data(data)
        while True:
            if self._ptr is None:
                self._raise_end("the stream ended")
            rc = lib.vbus_stream_send(self._ptr, b, len(b))
            if rc == 0:
                self._bus._after_api()
                return
            if rc == -_errno.EAGAIN:
                await self._bus._wait_progress()
                continue
            if rc == -_errno.EPIPE:
                self._raise_end("this side of the stream is closed")
            raise error_for_errno(rc, "stream send")

    def _raise_end(self, fallback: str) -> None:
        if self.status is not None and self.status != lib.VBUS_STATUS_OK:
            raise error_for_status(self.status, self.message)
        raise Unavailable(fallback)


class CallStream(_StreamBase):
    """The caller's side of a streaming call (see :meth:`Bus.stream`)."""

    def __init__(self, bus: Bus, method: str, timeout: Optional[float], headers: Headers,
                 max_queue: int, request: Optional[bytes] = None) -> None:
        super().__init__(bus, max_queue)
        self.method = method
        self._request = request  # server-streaming: sent, then this side closed, at open
        self._m = check_name(method, "method")
        self._opts = CallOptions(timeout, headers)
        self._end = bus._loop.create_future()

    async def _open(self) -> None:
        if self._ptr is not None or self.status is not None:
            return
        p = ffi.new("vbus_stream **")
        while True:
            rc = lib.vbus_stream_open(self._bus._conn(), self._m, self._opts.c, STREAM_HANDLERS,
                                      self._handle, p)
            if rc == 0:
                break
            if rc == -_errno.EAGAIN:
                await self._bus._wait_progress()
                continue
            if rc == -_errno.EINVAL:
                raise InvalidArgument(f"invalid method {self.method!r} or headers")
            raise error_for_errno(rc, f"stream {self.method!r}")
        self._ptr = p[0]
        self._bus._live.add(self)
        self._bus._after_api()
        if self._request is not None:
            request, self._request = self._request, None
            await _StreamBase.send(self, request)
            if self._ptr is not None:
                lib.vbus_stream_close_send(self._ptr)
                self._bus._after_api()

    def _ended(self) -> None:
        if not self._end.done():
            self._end.set_result(None)

    async def send(self, data: Bytes) -> None:
        await self._open()
        await super().send(data)

    async def close_send(self) -> None:
        """No more messages from this side (the replies keep coming)."""
        await self._open()
        if self._ptr is not None:
            lib.vbus_stream_close_send(self._ptr)
            self._bus._after_api()

    def cancel(self) -> None:
        """Abandons the call: the server is told (its handler is cancelled)."""
        if self._ptr is not None:
            lib.vbus_stream_cancel(self._ptr)
            self._ptr = None
            self._bus._live.discard(self)
            self._bus._after_api()
        if self.status is None:
            self.status = lib.VBUS_STATUS_CANCELLED
            self.message = "cancelled by the caller"
            self._ended()

    def __aiter__(self) -> "CallStream":
        return self

    async def __anext__(self) -> bytes:
        await self._open()
        while True:
            m = self._take()
            if m is not None:
                return m
            if self.status is not None:
                if self.status == lib.VBUS_STATUS_OK:
                    raise StopAsyncIteration
                raise error_for_status(self.status, self.message)
            await self._bus._wait_progress()

    async def __aenter__(self) -> "CallStream":
        await self._open()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.status is None:
            self.cancel()


class ServerStream(_StreamBase):
    """The server's side of a streaming call: ``async for m in stream`` gives the caller's
    messages until it closes its side; ``await stream.send(data)`` replies."""

    def __init__(self, bus: Bus, max_queue: int = STREAM_QUEUE_DEFAULT) -> None:
        super().__init__(bus, max_queue)
        self._task: Optional[asyncio.Task] = None

    def _ended(self) -> None:
        # The call ended before the handler finished it: the caller cancelled, the deadline
        # passed or the caller went away.
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def __aiter__(self) -> "ServerStream":
        return self

    async def __anext__(self) -> bytes:
        while True:
            m = self._take()
            if m is not None:
                return m
            if self._closed_by_peer or self.status is not None:
                raise StopAsyncIteration
            await self._bus._wait_progress()

    def _finish(self, status: int, message: str = "") -> None:
        if self._ptr is not None:
            ptr, self._ptr = self._ptr, None
            self._bus._live.discard(self)
            lib.vbus_stream_finish(ptr, status, message.encode("utf-8", "replace")
                                   if message else ffi.NULL)
            self._bus._after_api()


class _StreamMethod:
    """The C callback target of one streaming method of a server."""

    def __init__(self, server: Server, handler: StreamHandler) -> None:
        self._server = server
        self._bus = server._bus
        self._handler = handler
        self._handle = ffi.new_handle(self)

    def _on_request(self, req_c: Any) -> None:
        bus = self._bus
        srv = self._server
        if srv.inflight >= srv.max_inflight:
            lib.vbus_request_fail(req_c, lib.VBUS_STATUS_RESOURCE_EXHAUSTED,
                                  f"the server is busy: {srv.inflight} calls in flight".encode())
            return
        req = request_from_c(req_c)
        st = ServerStream(bus)
        p = ffi.new("vbus_stream **")
        rc = lib.vbus_request_stream(req_c, STREAM_HANDLERS, st._handle, p)
        if rc < 0:
            if rc != -_errno.ECANCELED and rc != -_errno.EALREADY:
                lib.vbus_request_fail(req_c, lib.VBUS_STATUS_RESOURCE_EXHAUSTED,
                                      b"out of memory")
            return
        st._ptr = p[0]
        bus._live.add(st)
        srv.inflight += 1
        st._task = bus._spawn(self._run(req, st))
        if req.deadline is not None:
            st._timer = bus._loop.call_at(  # type: ignore[attr-defined]
                req.deadline, self._on_deadline, st)

    @staticmethod
    def _on_deadline(st: "ServerStream") -> None:
        st._deadline_passed = True  # type: ignore[attr-defined]
        st._ended()

    async def _run(self, req: Request, st: ServerStream) -> None:
        try:
            await self._handler(req, st)
            st._finish(lib.VBUS_STATUS_OK)
        except asyncio.CancelledError:
            if getattr(st, "_deadline_passed", False):
                # This side saw the deadline pass, perhaps before the broker: the caller's
                # outcome is deadline-exceeded either way.
                st._finish(lib.VBUS_STATUS_DEADLINE_EXCEEDED, "deadline exceeded")
            elif st._ptr is not None:
                lib.vbus_stream_cancel(st._ptr)
                st._ptr = None
                self._bus._live.discard(st)
        except BaseException as e:
            status, message = failure_of(e)
            st._finish(status, message)
            if not isinstance(e, Error):
                self._bus._loop.call_exception_handler({
                    "message": f"vbus: stream handler of {req.full_method} raised",
                    "exception": e})
        finally:
            self._server.inflight -= 1
            t = getattr(st, "_timer", None)
            if t is not None:
                t.cancel()
            self._bus._after_api()
