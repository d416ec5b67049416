"""vbus errors: one exception class per vbus status.

Every failure the bus reports (a call's outcome, a refused stream) and every bad argument
raises a subclass of :class:`Error`, which carries the vbus status (``status``, its name
``status_name``) and the message of the peer or the library (``message``). Nothing raises a bare
errno: the few failures that are local (not connected, a message too large) are mapped to the
status that describes them.
"""

from __future__ import annotations

import errno as _errno
from typing import Dict, Optional, Type

from ._vbus_cffi import ffi, lib

__all__ = [
    "Error", "Cancelled", "InvalidArgument", "MessageTooLarge", "DeadlineExceeded", "NotFound",
    "PermissionDenied", "ResourceExhausted", "Unavailable", "Internal", "ApplicationError",
    "ProtocolError", "Unsupported", "ShuttingDown", "status_name", "error_for_status",
]


def status_name(status: int) -> str:
    """The name libvbus gives a status, such as ``"deadline-exceeded"`` (``"unknown"`` for a
    value it does not define)."""
    return ffi.string(lib.vbus_status_name(int(status))).decode()


class Error(Exception):
    """A failure with a vbus status.

    Attributes:
        status: the vbus status (an int, the wire value of vbus.v1.Status).
        status_name: its name, for example ``"not-found"``.
        message: what the peer or the library said ("" if nothing).
    """

    STATUS: int = lib.VBUS_STATUS_INTERNAL

    def __init__(self, message: str = "", status: Optional[int] = None) -> None:
        self.status = self.STATUS if status is None else int(status)
        self.status_name = status_name(self.status)
        self.message = message
        super().__init__(f"{self.status_name}: {message}" if message else self.status_name)


class Cancelled(Error):
    """The call was cancelled (by its caller, or by the server abandoning it)."""
    STATUS = lib.VBUS_STATUS_CANCELLED


class InvalidArgument(Error, ValueError):
    """A bad argument: raised before anything is sent, or the peer's verdict on a request."""
    STATUS = lib.VBUS_STATUS_INVALID_ARGUMENT


class MessageTooLarge(InvalidArgument):
    """A message over :data:`vbus.MESSAGE_MAX` bytes (nothing was sent)."""


class DeadlineExceeded(Error):
    """The deadline passed before the outcome arrived."""
    STATUS = lib.VBUS_STATUS_DEADLINE_EXCEEDED


class NotFound(Error):
    """Nobody serves the service (no responders), or the method does not exist."""
    STATUS = lib.VBUS_STATUS_NOT_FOUND


class PermissionDenied(Error):
    """The broker's policy refused it."""
    STATUS = lib.VBUS_STATUS_PERMISSION_DENIED


class ResourceExhausted(Error):
    """Over a limit or quota."""
    STATUS = lib.VBUS_STATUS_RESOURCE_EXHAUSTED


class Unavailable(Error):
    """The broker or the server is not reachable, or went away during the call."""
    STATUS = lib.VBUS_STATUS_UNAVAILABLE


class Internal(Error):
    """A fault of the bus or the library."""
    STATUS = lib.VBUS_STATUS_INTERNAL


class ApplicationError(Error):
    """The server's own failure (its handler raised, or failed the call on purpose)."""
    STATUS = lib.VBUS_STATUS_APPLICATION


class ProtocolError(Error):
    """A peer broke the protocol."""
    STATUS = lib.VBUS_STATUS_PROTOCOL_ERROR


class Unsupported(Error):
    """The peer does not support this (an unimplemented method, for example)."""
    STATUS = lib.VBUS_STATUS_UNSUPPORTED


class ShuttingDown(Error):
    """The broker is shutting down."""
    STATUS = lib.VBUS_STATUS_SHUTTING_DOWN


_BY_STATUS: Dict[int, Type[Error]] = {
    cls.STATUS: cls
    for cls in (Cancelled, InvalidArgument, DeadlineExceeded, NotFound, PermissionDenied,
                ResourceExhausted, Unavailable, Internal, ApplicationError, ProtocolError,
                Unsupported, ShuttingDown)
}


def error_for_status(status: int, message: str = "") -> Error:
    """The exception for a failure status (a status this version does not know gives
    :class:`Error` with that status)."""
    cls = _BY_STATUS.get(int(status))
    if cls is None:
        return Error(message, status=status)
    return cls(message)


def error_for_errno(rc: int, what: str) -> BaseException:
    """The exception for a negative errno returned by libvbus for a local failure."""
    e = -rc
    if e == _errno.ENOMEM:
        return MemoryError(what)
    if e == _errno.EMSGSIZE:
        return MessageTooLarge(f"{what}: larger than {lib.VBUS_MESSAGE_MAX} bytes")
    if e == _errno.EINVAL:
        return InvalidArgument(what)
    if e in (_errno.ENOTCONN, _errno.ECONNREFUSED, _errno.ENOENT, _errno.EPIPE):
        return Unavailable(f"{what}: not connected to the broker")
    if e == _errno.ETIMEDOUT:
        return DeadlineExceeded(what)
    if e == _errno.ECANCELED:
        return Cancelled(what)
    if e == _errno.EAFNOSUPPORT:
        return InvalidArgument(f"{what}: unknown URL scheme")
    return Internal(f"{what}: {_errno.errorcode.get(e, e)}")
