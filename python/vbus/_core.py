"""The part of the binding shared by the asyncio and the blocking API.

What is here: the connection handle, the C callbacks (``extern "Python"`` functions of the cffi
module), argument checks, and the objects the callbacks fill (subscriptions, calls, requests,
streams).

Rules this module keeps, because C calls into it:

- No user code runs inside a C callback. A callback copies what the C side lends it (a
  message, a reply, a request) into Python objects and returns; user code (a handler, the
  consumer of a subscription) runs later, outside ``vbus_conn_process()``. Every callback body
  is wrapped so that no exception can unwind into C: an internal error is kept on the bus and
  raised by the next call into it.
- The userdata given to C is an ``ffi.new_handle()`` of the Python object, and the bus keeps
  the object in ``_live`` until C has no more use for it (the call's outcome arrived, the stream
  ended, the subscription was freed), so a handle never dangles.
- A C handle (``_ptr``) is set to ``None`` the moment libvbus frees it (or the connection is
  closed), and every method checks it, so no freed handle is ever passed back to C.
"""

from __future__ import annotations

import collections
import errno as _errno
import time
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple, Union

from ._vbus_cffi import ffi, lib
from .errors import (Error, InvalidArgument, MessageTooLarge, Unavailable, error_for_errno,
                     error_for_status)

#: The largest message vbus carries, in bytes (libvbus's VBUS_MESSAGE_MAX).
MESSAGE_MAX: int = lib.VBUS_MESSAGE_MAX
#: At most this many headers per call, keys of 1..64 bytes of [a-z0-9_.-], values of 1024 bytes.
CALL_HEADERS_MAX: int = lib.VBUS_CALL_HEADERS_MAX

DROP = "drop"
BLOCK = "block"

# The binding's limits, each with its reason (docs/python.md repeats them). What a peer sends
# is bounded by them, so a hostile publisher or caller costs this process a bounded amount of
# memory, and what goes over a bound is paid by the peer that sent it (its messages dropped and
# counted, its calls refused), not by another subscription or caller.

#: Messages a subscription keeps for its consumer: a DROP subscription drops (and counts, in
#: the next message's ``dropped``) what arrives beyond; a BLOCK subscription stops reading the
#: connection (asyncio) so that the broker holds the publishers back. 1024 messages absorb a
#: burst without making a slow consumer's backlog unbounded.
SUBSCRIPTION_QUEUE_DEFAULT = 1024
#: The same bound in bytes of message data: 1024 messages of up to 1 MiB would be a GiB.
SUBSCRIPTION_QUEUE_BYTES_DEFAULT = 8 << 20
#: Messages a streaming call keeps for its consumer before pausing the stream (flow control
#: then holds the sender back): enough to keep the stream busy, few enough to bound memory.
STREAM_QUEUE_DEFAULT = 64
#: The same bound in bytes: two of libvbus's stream windows.
STREAM_QUEUE_BYTES = 2 * lib.VBUS_STREAM_WINDOW
#: Publishers kept open per connection, one per topic, least recently used closed first: a
#: program publishing to ever new topics must not accumulate streams at the broker.
PUBLISHERS_MAX = 256
#: Calls one server runs at once (asyncio handlers in flight); a call beyond is answered
#: resource-exhausted at once, so a caller flooding a server is refused instead of making it
#: hold unbounded tasks.
SERVER_INFLIGHT_DEFAULT = 256
#: Sender identities kept to share one Identity object between messages (a cache, bounded so
#: that many senders cannot grow it).
IDENTITY_CACHE_MAX = 256

Bytes = Union[bytes, bytearray, memoryview]
HeaderValue = Union[str, bytes, bytearray, memoryview]
Headers = Union[Dict[str, HeaderValue], Sequence[Tuple[str, HeaderValue]], None]

_UINT64_MAX = (1 << 64) - 1


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds: the clock of libvbus's timeouts and deadlines."""
    return time.monotonic_ns() // 1000


@dataclass(frozen=True)
class Identity:
    """Who sent a message or made a call, as the broker knows it (never as the peer claims).

    domid: the Xen domain id; name: the domain's name ("" if none); local: True for a process of
    the broker's own domain over its UNIX socket, whose uid and pid are then set.
    """
    domid: int
    name: str
    local: bool
    uid: Optional[int] = None
    pid: Optional[int] = None

    def __str__(self) -> str:
        """As vbusctl prints a sender: ``dom3(sensor)``, ``local(uid=1000,pid=42)``."""
        if self.local:
            return f"local(uid={self.uid},pid={self.pid})" if self.pid is not None else \
                f"local(uid={self.uid})"
        return f"dom{self.domid}({self.name})" if self.name else f"dom{self.domid}"


@dataclass
class Message:
    """A message received on a subscription.

    topic: the topic it was published to; data: its bytes; sender: the publisher's
    :class:`Identity`; sequence: the subscription's delivery counter (restarts at 1 after a
    reconnect); dropped: messages this subscription lost just before this one (DROP policy: by
    the broker, or by this subscription's own bounded queue); gap: True for the first message
    after the link to the broker was lost and re-established (messages published meanwhile were
    not delivered and are not counted in ``dropped``).
    """
    topic: str
    data: bytes
    sender: Identity
    sequence: int
    dropped: int = 0
    gap: bool = False


def _str(p: Any) -> str:
    return ffi.string(p).decode("utf-8", "replace") if p != ffi.NULL else ""


def check_name(name: str, what: str) -> bytes:
    """A topic, pattern or method as bytes for C; libvbus checks the grammar itself (before
    anything is sent), this checks what C cannot see (the type, an embedded NUL)."""
    if not isinstance(name, str):
        raise InvalidArgument(f"{what} must be a str, not {type(name).__name__}")
    b = name.encode("utf-8")
    if b"\0" in b:
        raise InvalidArgument(f"{what} {name!r} contains a NUL character")
    if not b:
        raise InvalidArgument(f"{what} is empty")
    return b


def check_data(data: Bytes, what: str = "message") -> bytes:
    """The payload as bytes, refused before anything is sent when over MESSAGE_MAX."""
    if isinstance(data, str):
        raise InvalidArgument(f"{what} must be bytes, not str (encode it)")
    try:
        b = bytes(data)
    except TypeError:
        raise InvalidArgument(f"{what} must be bytes-like, not {type(data).__name__}") from None
    if len(b) > MESSAGE_MAX:
        raise MessageTooLarge(f"{what} of {len(b)} bytes is larger than {MESSAGE_MAX} bytes")
    return b


def timeout_usec(timeout: Optional[float]) -> int:
    """A timeout in seconds (None: none) as libvbus's microseconds (0: none)."""
    if timeout is None:
        return 0
    if not isinstance(timeout, (int, float)) or timeout != timeout or timeout <= 0:
        raise InvalidArgument(f"timeout must be a positive number of seconds, not {timeout!r}")
    return max(1, int(timeout * 1e6))


class CallOptions:
    """A ``vbus_call_options`` with its headers, kept alive for the C call that copies them."""

    def __init__(self, timeout: Optional[float], headers: Headers) -> None:
        self.c = ffi.new("vbus_call_options *")
        self.c.timeout_usec = timeout_usec(timeout)
        self._keep: List[Any] = []
        items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if len(items) > lib.VBUS_CALL_HEADERS_MAX:
            raise InvalidArgument(f"{len(items)} headers: at most {lib.VBUS_CALL_HEADERS_MAX}")
        if items:
            arr = ffi.new("vbus_header[]", len(items))
            for i, (k, v) in enumerate(items):
                kb = check_name(k, "header key")
                vb = v.encode() if isinstance(v, str) else bytes(v)
                kc = ffi.new("char[]", kb)
                vc = ffi.from_buffer(vb)
                self._keep += [kc, vb, vc]
                arr[i].key = kc
                arr[i].value = vc
                arr[i].value_size = len(vb)
            self._keep.append(arr)
            self.c.headers = arr
            self.c.n_headers = len(items)


# --- callbacks from C --------------------------------------------------------------------------
#
# Each one finds its Python object through the userdata handle and calls one of its methods that
# only copies and records. The try/except is the wall between C and Python: nothing passes it.

def _guard(obj: Any, fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except BaseException as e:  # noqa: B902 - nothing may unwind into C
        bus = getattr(obj, "_bus", None)
        if bus is not None and bus._callback_error is None:
            bus._callback_error = e


@ffi.def_extern()
def _vbus_on_message(sub_c: Any, msg: Any, userdata: Any) -> None:
    obj = ffi.from_handle(userdata)
    _guard(obj, obj._on_message, msg)


@ffi.def_extern()
def _vbus_on_reply(call_c: Any, reply: Any, userdata: Any) -> None:
    obj = ffi.from_handle(userdata)
    _guard(obj, obj._on_reply, reply)


@ffi.def_extern()
def _vbus_on_request(srv_c: Any, req: Any, userdata: Any) -> None:
    obj = ffi.from_handle(userdata)
    _guard(obj, obj._on_request, req)


@ffi.def_extern()
def _vbus_on_stream_message(st: Any, data: Any, size: int, userdata: Any) -> None:
    obj = ffi.from_handle(userdata)
    _guard(obj, obj._on_message, data, size)


@ffi.def_extern()
def _vbus_on_stream_end(st: Any, status: int, message: Any, userdata: Any) -> None:
    obj = ffi.from_handle(userdata)
    _guard(obj, obj._on_end, status, message)


@ffi.def_extern()
def _vbus_on_stream_writable(st: Any, userdata: Any) -> None:
    obj = ffi.from_handle(userdata)
    _guard(obj, obj._on_writable)


STREAM_HANDLERS = ffi.new("vbus_stream_handlers *")
STREAM_HANDLERS.on_message = lib._vbus_on_stream_message
STREAM_HANDLERS.on_end = lib._vbus_on_stream_end
STREAM_HANDLERS.on_writable = lib._vbus_on_stream_writable


# --- the connection ----------------------------------------------------------------------------

class ConnBase:
    """One ``vbus_conn``: what the asyncio and the blocking bus share."""

    def __init__(self, url: Optional[str]) -> None:
        self._c: Any = None
        self._callback_error: Optional[BaseException] = None
        self._live: set = set()
        self._publishers: "collections.OrderedDict[str, Any]" = collections.OrderedDict()
        self._requests: set = set()  # Request objects not answered yet
        self._identities: Dict[tuple, Identity] = {}
        p = ffi.new("vbus_conn **")
        u = check_name(url, "url") if url is not None else ffi.NULL
        rc = lib.vbus_conn_open(u, p)
        if rc < 0:
            raise error_for_errno(rc, f"vbus_conn_open({url!r})")
        self._c = p[0]

    # state ---------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once close() ran."""
        return self._c is None

    def _conn(self) -> Any:
        if self._c is None:
            raise Unavailable("the connection is closed")
        return self._c

    @property
    def ready(self) -> bool:
        """True while the link to the broker is up (HELLO answered)."""
        return self._c is not None and lib.vbus_conn_get_state(self._c) == lib.VBUS_CONN_READY

    @property
    def reconnects(self) -> int:
        """How many times the link was re-established."""
        return int(lib.vbus_conn_get_reconnects(self._conn()))

    def _raise_callback_error(self) -> None:
        e = self._callback_error
        if e is not None:
            self._callback_error = None
            raise e

    def _process_once(self) -> int:
        rc = lib.vbus_conn_process(self._conn())
        self._after_process()
        self._raise_callback_error()
        if rc < 0 and rc != -_errno.EAGAIN:
            raise error_for_errno(rc, "vbus_conn_process")
        return rc

    def _after_process(self) -> None:
        """Runs after every processing step: requests whose caller gave up are told."""
        for req in list(self._requests):
            req._poll_cancelled()

    # publishers ----------------------------------------------------------------------------
    def _publisher(self, topic: str) -> Any:
        pub = self._publishers.get(topic)
        if pub is not None:
            self._publishers.move_to_end(topic)
            return pub
        t = check_name(topic, "topic")
        p = ffi.new("vbus_publisher **")
        rc = lib.vbus_publisher_open(self._conn(), t, p)
        if rc < 0:
            if rc == -_errno.EINVAL:
                raise InvalidArgument(f"invalid topic {topic!r}: dot-separated tokens of "
                                      "[A-Za-z0-9_-], at most 255 bytes, no wildcards")
            raise error_for_errno(rc, f"publish to {topic!r}")
        self._publishers[topic] = p[0]
        if len(self._publishers) > PUBLISHERS_MAX:
            _, old = self._publishers.popitem(last=False)
            lib.vbus_publisher_free(old)
        return p[0]

    def _publish_try(self, topic: str, data: bytes) -> bool:
        """One attempt: True when sent, False for 'not now' (-EAGAIN); raises otherwise."""
        pub = self._publisher(topic)
        rc = lib.vbus_publish(pub, data, len(data))
        if rc == 0:
            return True
        if rc == -_errno.EAGAIN:
            return False
        if rc == -_errno.EPIPE:
            msg = ffi.new("char **")
            status = lib.vbus_publisher_get_status(pub, ffi.cast("const char **", msg))
            text = _str(msg[0])
            del self._publishers[topic]
            lib.vbus_publisher_free(pub)
            raise error_for_status(status, text or f"the broker ended the publisher of {topic!r}")
        raise error_for_errno(rc, f"publish to {topic!r}")

    # closing -------------------------------------------------------------------------------
    def _close_objects(self) -> None:
        for req in list(self._requests):
            req._abandon()
        for obj in list(self._live):
            obj._detach()
        self._live.clear()
        for pub in self._publishers.values():
            lib.vbus_publisher_free(pub)
        self._publishers.clear()

    def _free_conn(self) -> None:
        if self._c is not None:
            c, self._c = self._c, None
            lib.vbus_conn_free(c)


# --- subscriptions -----------------------------------------------------------------------------

class SubscriptionBase:
    """A subscription's state: the C handle and the queue its callback fills."""

    def __init__(self, bus: ConnBase, pattern: str, policy: str, max_queue: int,
                 max_queue_bytes: int = SUBSCRIPTION_QUEUE_BYTES_DEFAULT) -> None:
        if policy not in (DROP, BLOCK):
            raise InvalidArgument(f"policy must be vbus.DROP or vbus.BLOCK, not {policy!r}")
        for name, v in (("max_queue", max_queue), ("max_queue_bytes", max_queue_bytes)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InvalidArgument(f"{name} must be a positive int, not {v!r}")
        self._bus = bus
        self.pattern = pattern
        self.policy = policy
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self._queue: Deque[Message] = collections.deque()
        self._qbytes = 0
        self._local_dropped = 0
        self._sizebuf = ffi.new("size_t *")
        self._ptr: Any = None
        self._handle = ffi.new_handle(self)
        pat = check_name(pattern, "pattern")
        p = ffi.new("vbus_subscription **")
        rc = lib.vbus_subscribe(bus._conn(), pat,
                                lib.VBUS_SLOW_BLOCK if policy == BLOCK else lib.VBUS_SLOW_DROP,
                                lib._vbus_on_message, self._handle, p)
        if rc < 0:
            if rc == -_errno.EINVAL:
                raise InvalidArgument(f"invalid pattern {pattern!r}: dot-separated tokens of "
                                      "[A-Za-z0-9_-], '*' for one token, a last '>' for the rest")
            raise error_for_errno(rc, f"subscribe to {pattern!r}")
        self._ptr = p[0]
        bus._live.add(self)

    def _full(self) -> bool:
        return len(self._queue) >= self.max_queue or self._qbytes >= self.max_queue_bytes

    def _on_message(self, m: Any) -> None:
        size = self._sizebuf
        data = lib.vbus_message_get_data(m, size)
        n = size[0]
        dropped = int(lib.vbus_message_get_dropped(m))
        if self.policy == DROP and self._queue and \
                (len(self._queue) >= self.max_queue or self._qbytes + n > self.max_queue_bytes):
            self._local_dropped += 1 + dropped
            return
        local = bool(lib.vbus_message_is_sender_local(m))
        domid = int(lib.vbus_message_get_sender_domid(m))
        uid = int(lib.vbus_message_get_sender_uid(m)) if local else None
        pid = int(lib.vbus_message_get_sender_pid(m)) if local else None
        name_p = lib.vbus_message_get_sender_name(m)
        name = _str(name_p)
        key = (domid, name, local, uid, pid)
        cache = self._bus._identities
        sender = cache.get(key)
        if sender is None:
            if len(cache) >= IDENTITY_CACHE_MAX:
                cache.clear()
            sender = cache[key] = Identity(domid, name, local, uid, pid)
        msg = Message(topic=_str(lib.vbus_message_get_topic(m)),
                      data=bytes(ffi.buffer(data, n)) if n else b"",
                      sender=sender, sequence=int(lib.vbus_message_get_sequence(m)),
                      dropped=dropped + self._local_dropped,
                      gap=bool(lib.vbus_message_follows_gap(m)))
        self._local_dropped = 0
        self._queue.append(msg)
        self._qbytes += n

    def _pop(self) -> Message:
        msg = self._queue.popleft()
        self._qbytes -= len(msg.data)
        return msg

    @property
    def active(self) -> bool:
        """True once the broker accepted the subscription on the current link."""
        return self._ptr is not None and bool(lib.vbus_subscription_is_active(self._ptr))

    def _check_status(self) -> None:
        if self._ptr is None:
            raise Unavailable("the subscription is closed")
        msg = ffi.new("char **")
        status = lib.vbus_subscription_get_status(self._ptr, ffi.cast("const char **", msg))
        if status > 0:
            raise error_for_status(status, _str(msg[0]) or f"subscription to {self.pattern!r} ended")

    def _detach(self) -> None:
        self._ptr = None

    def _close(self) -> None:
        if self._ptr is not None:
            lib.vbus_subscription_free(self._ptr)
            self._ptr = None
        self._bus._live.discard(self)


# --- calls -------------------------------------------------------------------------------------

class CallBase:
    """One unary call in flight: its C handle and its outcome once the callback ran."""

    def __init__(self, bus: ConnBase) -> None:
        self._bus = bus
        self._ptr: Any = None
        self._handle = ffi.new_handle(self)
        self.outcome: Optional[Tuple[int, str, bytes]] = None

    def _start(self, method: str, data: bytes, opts: CallOptions) -> int:
        m = check_name(method, "method")
        p = ffi.new("vbus_call **")
        rc = lib.vbus_call_start_opts(self._bus._conn(), m, data, len(data), opts.c,
                                      lib._vbus_on_reply, self._handle, p)
        if rc == 0:
            self._ptr = p[0]
            self._bus._live.add(self)
        return rc

    def _on_reply(self, reply: Any) -> None:
        size = ffi.new("size_t *")  # once per call
        data = lib.vbus_reply_get_data(reply, size)
        self.outcome = (int(lib.vbus_reply_get_status(reply)),
                        _str(lib.vbus_reply_get_message(reply)),
                        bytes(ffi.buffer(data, size[0])) if size[0] else b"")
        self._ptr = None  # freed by libvbus when this callback returns
        self._bus._live.discard(self)
        self._done()

    def _done(self) -> None:
        pass

    def _cancel(self) -> None:
        if self._ptr is not None:
            lib.vbus_call_cancel(self._ptr)
            self._ptr = None
        self._bus._live.discard(self)

    def _detach(self) -> None:
        self._ptr = None
        if self.outcome is None:
            self.outcome = (lib.VBUS_STATUS_CANCELLED, "the connection was closed", b"")
            self._done()

    def result(self) -> bytes:
        assert self.outcome is not None
        status, message, data = self.outcome
        if status == lib.VBUS_STATUS_OK:
            return data
        raise error_for_status(status, message)


# --- servers -----------------------------------------------------------------------------------

@dataclass(eq=False)
class Request:
    """A call a server received.

    method: the method (after the '/'); full_method: "service/method"; data: the request bytes
    (empty for a streaming method: its messages come on the stream); caller: the caller's
    :class:`Identity` as the broker stamped it; deadline: the caller's deadline on
    ``time.monotonic()``'s clock (None for none); headers: the call's headers, in order.
    """
    method: str
    full_method: str
    data: bytes
    caller: Identity
    deadline: Optional[float]
    headers: List[Tuple[str, bytes]] = field(default_factory=list)
    _ptr: Any = field(default=None, repr=False)
    _owner: Any = field(default=None, repr=False)
    _cancelled: bool = field(default=False, repr=False)

    @property
    def cancelled(self) -> bool:
        """True once the caller cancelled, its deadline passed, or it went away."""
        if self._cancelled:
            return True
        if self._ptr is not None and lib.vbus_request_is_cancelled(self._ptr):
            self._cancelled = True
        return self._cancelled

    def time_remaining(self) -> Optional[float]:
        """Seconds until the deadline (negative once passed), or None without one."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _poll_cancelled(self) -> None:
        if not self._cancelled and self._ptr is not None and \
                lib.vbus_request_is_cancelled(self._ptr):
            self._cancelled = True
            if self._owner is not None:
                self._owner._on_cancelled(self)

    def _answer(self, data: Optional[bytes], status: int = 1, message: str = "") -> None:
        """Replies (status OK) or fails the call, once; a cancelled call's answer is discarded."""
        ptr, self._ptr = self._ptr, None
        if ptr is None:
            return
        if self._owner is not None:
            self._owner._bus._requests.discard(self)
        if status == lib.VBUS_STATUS_OK:
            assert data is not None
            if len(data) > MESSAGE_MAX:
                lib.vbus_request_fail(ptr, lib.VBUS_STATUS_INTERNAL,
                                      f"the reply of {len(data)} bytes is larger than "
                                      f"{MESSAGE_MAX} bytes".encode())
                return
            lib.vbus_request_reply(ptr, data, len(data))
        else:
            lib.vbus_request_fail(ptr, status, message.encode("utf-8", "replace"))

    def _abandon(self) -> None:
        self._answer(None, lib.VBUS_STATUS_UNAVAILABLE, "the server closed its connection")


def request_from_c(req: Any) -> Request:
    """Copies what a handler may read out of a ``vbus_request``."""
    size = ffi.new("size_t *")
    data = lib.vbus_request_get_data(req, size)
    local = bool(lib.vbus_request_is_caller_local(req))
    caller = Identity(domid=int(lib.vbus_request_get_caller_domid(req)),
                      name=_str(lib.vbus_request_get_caller_name(req)), local=local,
                      uid=int(lib.vbus_request_get_caller_uid(req)) if local else None)
    dl = int(lib.vbus_request_get_deadline(req))
    headers = []
    k = ffi.new("char **")
    v = ffi.new("void **")
    vs = ffi.new("size_t *")
    for i in range(int(lib.vbus_request_get_n_headers(req))):
        if lib.vbus_request_get_header(req, i, ffi.cast("const char **", k),
                                       ffi.cast("const void **", v), vs) == 0:
            headers.append((_str(k[0]), bytes(ffi.buffer(v[0], vs[0])) if vs[0] else b""))
    return Request(method=_str(lib.vbus_request_get_method(req)),
                   full_method=_str(lib.vbus_request_get_full_method(req)),
                   data=bytes(ffi.buffer(data, size[0])) if size[0] else b"",
                   caller=caller,
                   deadline=None if dl == _UINT64_MAX else dl / 1e6,
                   headers=headers, _ptr=req)


def failure_of(exc: BaseException) -> Tuple[int, str]:
    """The status and message a handler's exception answers the call with."""
    if isinstance(exc, Error):
        return exc.status, exc.message
    return lib.VBUS_STATUS_APPLICATION, f"{type(exc).__name__}: {exc}"
