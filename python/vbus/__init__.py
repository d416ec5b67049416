"""vbus: the message bus for the virtual machines of one Xen host, from Python.

The asyncio API (this module)::

    import vbus

    async with vbus.connect() as bus:
        await bus.publish("sensors.kitchen.temp", b"21.5C")
        async for msg in bus.subscribe("sensors.>"):
            print(msg.topic, msg.sender, msg.data)
        reply = await bus.call("storage.v1.Store/Get", data, timeout=5)

The blocking API for scripts is :mod:`vbus.blocking`; typed services with python3-protobuf
are in :mod:`vbus.protobuf`. Everything goes through libvbus (libvbus.so.0), so it behaves as a
C program would: same URLs ($VBUS_URL), same limits, same identities. docs/python.md has the
whole guide.
"""

from ._core import (BLOCK, CALL_HEADERS_MAX, DROP, MESSAGE_MAX, SUBSCRIPTION_QUEUE_DEFAULT,
                    Identity, Message, Request)
from ._vbus_cffi import lib as _lib
from .aio import Bus, CallStream, Server, ServerStream, Subscription, connect
from .errors import (ApplicationError, Cancelled, DeadlineExceeded, Error, Internal,
                     InvalidArgument, MessageTooLarge, NotFound, PermissionDenied, ProtocolError,
                     ResourceExhausted, ShuttingDown, Unavailable, Unsupported, error_for_status,
                     status_name)

#: The version of the libvbus this package runs on.
LIBVBUS_VERSION: str = __import__("vbus._vbus_cffi", fromlist=["ffi"]).ffi.string(
    _lib.vbus_version()).decode()
__version__ = LIBVBUS_VERSION

__all__ = [
    "connect", "Bus", "Subscription", "Server", "CallStream", "ServerStream", "Message",
    "Identity", "Request", "DROP", "BLOCK", "MESSAGE_MAX", "CALL_HEADERS_MAX",
    "SUBSCRIPTION_QUEUE_DEFAULT", "Error", "Cancelled", "InvalidArgument", "MessageTooLarge",
    "DeadlineExceeded", "NotFound", "PermissionDenied", "ResourceExhausted", "Unavailable",
    "Internal", "ApplicationError", "ProtocolError", "Unsupported", "ShuttingDown",
    "error_for_status", "status_name", "LIBVBUS_VERSION",
]
