"""The blocking API, for scripts: ``with vbus.blocking.connect() as bus``.

Every method blocks in libvbus's own helpers (``vbus_conn_wait()``, ``vbus_publish_wait()``,
``vbus_call_sync_opts()``); callbacks run only while a method of this bus is blocked, and they
only record what arrived. Not thread-safe: one bus per thread.
"""

from __future__ import annotations

import errno as _errno
import time
from typing import Any, Callable, Iterator, Optional

from ._core import (DROP, SUBSCRIPTION_QUEUE_BYTES_DEFAULT,
                    SUBSCRIPTION_QUEUE_DEFAULT, Bytes, CallOptions, ConnBase,
                    Headers, Message, Request, SubscriptionBase, check_data, check_name,
                    failure_of, request_from_c, timeout_usec, _str)
from ._vbus_cffi import ffi, lib
from .errors import (DeadlineExceeded, InvalidArgument, Unavailable, error_for_errno,
                     error_for_status)

__all__ = ["Bus", "connect", "Subscription", "Server"]

SyncHandler = Callable[[Request], Bytes]


class Bus(ConnBase):
    """A connection to the broker used from blocking code. See :func:`connect`."""

    def __init__(self, url: Optional[str] = None) -> None:
        self._servers: list = []
        super().__init__(url)

    def wait(self, timeout: Optional[float]) -> None:
        """Blocks until something arrives or @timeout seconds pass (None: 1 s at most), and
        processes it; then runs the handlers of requests that arrived (servers)."""
        t = timeout_usec(timeout) if timeout else 1000000
        rc = lib.vbus_conn_wait(self._conn(), t)
        self._after_process()
        self._raise_callback_error()
        if rc < 0 and rc not in (-_errno.ETIMEDOUT, -_errno.EINTR, -_errno.EAGAIN):
            raise error_for_errno(rc, "vbus_conn_wait")
        self._run_handlers()

    def _run_handlers(self) -> None:
        for srv in list(self._servers):
            srv._run_pending()

    def wait_ready(self, timeout: Optional[float] = 10.0) -> None:
        """Blocks until the link to the broker is up; :class:`Unavailable` after @timeout s."""
        rc = lib.vbus_conn_wait_ready(self._conn(), timeout_usec(timeout) if timeout else 0)
        if rc == -_errno.ETIMEDOUT or not self.ready:
            err = lib.vbus_conn_get_last_error(self._conn())
            why = _errno.errorcode.get(-err, str(err)) if err else "no answer"
            raise Unavailable(f"could not reach the broker within {timeout} s ({why})")
        if rc < 0:
            raise error_for_errno(rc, "vbus_conn_wait_ready")

    def publish(self, topic: str, data: Bytes, *, timeout: Optional[float] = 10.0) -> None:
        """Publishes one message; blocks while the broker holds the publisher back, at most
        @timeout seconds (:class:`DeadlineExceeded`). Bad topics and messages over
        :data:`vbus.MESSAGE_MAX` raise before anything is sent."""
        b = check_data(data)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._publish_try(topic, b):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise DeadlineExceeded(f"publish to {topic!r}: held back for {timeout} s")
            self.wait(min(left, 1.0) if left is not None else 1.0)

    def flush(self, timeout: float = 10.0) -> None:
        """Blocks until everything published was handed to the transport."""
        rc = lib.vbus_conn_flush(self._conn(), timeout_usec(timeout))
        if rc < 0:
            raise error_for_errno(rc, "flush")

    def subscribe(self, pattern: str, *, policy: str = DROP,
                  max_queue: int = SUBSCRIPTION_QUEUE_DEFAULT,
                  max_queue_bytes: int = SUBSCRIPTION_QUEUE_BYTES_DEFAULT) -> "Subscription":
        """Subscribes to @pattern; iterate the result (``for msg in sub``) or :meth:`get`.

        A DROP subscription keeps at most @max_queue messages and counts the rest in the next
        message's ``dropped``; a BLOCK subscription keeps whatever arrives while this program
        waits on something else (it is read only when the program waits)."""
        return Subscription(self, pattern, policy, max_queue, max_queue_bytes)

    def call(self, method: str, data: Bytes = b"", *, timeout: Optional[float] = None,
             headers: Headers = None) -> bytes:
        """Calls "service/Method" and returns the reply's bytes; failures raise their status
        (:class:`NotFound`, :class:`DeadlineExceeded`, ...)."""
        b = check_data(data, "request")
        m = check_name(method, "method")
        opts = CallOptions(timeout, headers)
        p = ffi.new("vbus_reply **")
        rc = lib.vbus_call_sync_opts(self._conn(), m, b, len(b), opts.c, p)
        self._after_process()
        self._raise_callback_error()
        if rc == -_errno.EINVAL:
            raise InvalidArgument(f"invalid method {method!r} (service/Method) or headers")
        if rc == -_errno.ETIMEDOUT:
            raise DeadlineExceeded(f"{method}: the connection was not ready in time")
        if rc < 0:
            raise error_for_errno(rc, f"call {method!r}")
        reply = p[0]
        try:
            status = lib.vbus_reply_get_status(reply)
            if status != lib.VBUS_STATUS_OK:
                raise error_for_status(status, _str(lib.vbus_reply_get_message(reply)))
            size = ffi.new("size_t *")
            d = lib.vbus_reply_get_data(reply, size)
            return bytes(ffi.buffer(d, size[0])) if size[0] else b""
        finally:
            lib.vbus_reply_free(reply)

    def serve(self, service: str, handler: SyncHandler) -> "Server":
        """Serves @service with ``handler(req: vbus.Request) -> bytes``, run from :meth:`wait`
        and :meth:`run` (one call at a time). Raising :class:`vbus.Error` answers with its
        status; any other exception with ``application``."""
        return Server(self, service, handler)

    def run(self, duration: Optional[float] = None) -> None:
        """Processes the connection (and runs handlers) for @duration seconds, or for ever."""
        end = None if duration is None else time.monotonic() + duration
        while end is None or time.monotonic() < end:
            self.wait(1.0 if end is None else max(0.001, min(1.0, end - time.monotonic())))

    def close(self) -> None:
        """Fails what is in flight and closes the connection."""
        if self._c is None:
            return
        lib.vbus_conn_flush(self._c, 200000)
        self._close_objects()
        self._free_conn()

    def __enter__(self) -> "Bus":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def connect(url: Optional[str] = None, *, timeout: Optional[float] = 10.0) -> Bus:
    """Connects to the broker and blocks until the link is up (at most @timeout seconds, then
    :class:`Unavailable`). @url as :func:`vbus.connect`. Use as ``with vbus.blocking.connect()
    as bus``."""
    bus = Bus(url)
    try:
        bus.wait_ready(timeout)
    except BaseException:
        bus.close()
        raise
    return bus


class Subscription(SubscriptionBase):
    """A subscription of the blocking API: ``for msg in sub`` blocks for each message."""

    _bus: Bus

    def ready(self, timeout: float = 10.0) -> None:
        """Blocks until the broker accepted the subscription; raises its status if refused."""
        end = time.monotonic() + timeout
        while not self.active:
            self._check_status()
            if time.monotonic() > end:
                raise DeadlineExceeded(f"subscription to {self.pattern!r} not active in time")
            self._bus.wait(0.1)

    def get(self, timeout: Optional[float] = None) -> Message:
        """The next message; :class:`DeadlineExceeded` if none within @timeout seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self._queue:
            self._check_status()
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                raise DeadlineExceeded(f"no message on {self.pattern!r} within {timeout} s")
            self._bus.wait(min(left, 1.0) if left is not None else 1.0)
        return self._pop()

    def __iter__(self) -> Iterator[Message]:
        while self._ptr is not None:
            yield self.get()

    def close(self) -> None:
        """Unsubscribes."""
        self._close()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Server:
    """A service served by the blocking API; :meth:`close` stops serving."""

    def __init__(self, bus: Bus, service: str, handler: SyncHandler) -> None:
        self._bus = bus
        self.service = service
        self._handler = handler
        self._pending: list = []
        self._ptr: Any = None
        self._handle = ffi.new_handle(self)
        p = ffi.new("vbus_server **")
        rc = lib.vbus_serve(bus._conn(), check_name(service, "service"), lib._vbus_on_request,
                            self._handle, p)
        if rc < 0:
            if rc == -_errno.EINVAL:
                raise InvalidArgument(f"invalid service name {service!r}")
            raise error_for_errno(rc, f"serve {service!r}")
        self._ptr = p[0]
        bus._live.add(self)
        bus._servers.append(self)

    @property
    def active(self) -> bool:
        """True once the broker routes calls here."""
        return self._ptr is not None and bool(lib.vbus_server_is_active(self._ptr))

    def ready(self, timeout: float = 10.0) -> None:
        """Blocks until the broker routes calls here; raises its status if it refused."""
        end = time.monotonic() + timeout
        while not self.active:
            msg = ffi.new("char **")
            st = lib.vbus_server_get_status(self._ptr, ffi.cast("const char **", msg))
            if st > 0:
                raise error_for_status(st, _str(msg[0]))
            if time.monotonic() > end:
                raise DeadlineExceeded(f"serving {self.service!r}: not active in time")
            self._bus.wait(0.1)

    def _on_request(self, req_c: Any) -> None:
        req = request_from_c(req_c)
        req._owner = self
        self._bus._requests.add(req)
        self._pending.append(req)

    def _on_cancelled(self, req: Request) -> None:
        pass  # the handler sees req.cancelled

    def _run_pending(self) -> None:
        while self._pending:
            req = self._pending.pop(0)
            if req.cancelled:
                req._answer(None, lib.VBUS_STATUS_CANCELLED, "cancelled")
                continue
            try:
                out = self._handler(req)
                req._answer(check_data(out if out is not None else b"", "reply"))
            except Exception as e:
                status, message = failure_of(e)
                req._answer(None, status, message)

    def _detach(self) -> None:
        self._ptr = None

    def close(self) -> None:
        """Stops serving; calls not answered yet are answered ``unavailable``."""
        for req in self._pending:
            req._abandon()
        self._pending.clear()
        if self._ptr is not None:
            lib.vbus_server_free(self._ptr)
            self._ptr = None
        self._bus._live.discard(self)
        if self in self._bus._servers:
            self._bus._servers.remove(self)
