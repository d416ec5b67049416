"""Typed services with python3-protobuf: call and serve with generated ``_pb2`` messages.

The payload of a vbus call is the serialized request message and nothing else (as with
libvbus's protobuf-c glue), so a Python client calls a C server made with
``vbus_protobuf_serve()`` and the other way round. The service is found in the generated
module's descriptor::

    import kvstore_pb2
    STORE = kvstore_pb2.DESCRIPTOR.services_by_name["Store"]

    store = vbus.protobuf.Client(bus, STORE, timeout=5)
    reply = await store.Get(kvstore_pb2.GetRequest(key="colour"))   # a GetResponse
    async for entry in store.Scan(kvstore_pb2.ScanRequest(prefix="")):   # server-streaming
        ...

    class Store:
        async def Get(self, request, req):     # req: vbus.Request (caller, deadline)
            return kvstore_pb2.GetResponse(found=False)
        async def Scan(self, request, req):    # server-streaming: an async generator
            yield kvstore_pb2.ScanEntry(key="k", value=b"v")

    server = vbus.protobuf.serve(bus, STORE, Store())

A request that does not parse as the method's input type is answered ``invalid-argument``; a
reply that does not parse as its output type raises :class:`vbus.Internal`; a method the
implementation lacks is answered ``unsupported``, and one the service does not have
``not-found``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from google.protobuf import message as _message
from google.protobuf import message_factory as _mf
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from . import aio
from ._core import Headers, Request
from .errors import Internal, InvalidArgument, NotFound, Unsupported

__all__ = ["Client", "TypedStream", "serve", "message_class"]


def message_class(desc: Any) -> Any:
    """The generated class of a message descriptor."""
    get = getattr(_mf, "GetMessageClass", None)
    if get is not None:
        return get(desc)
    return _mf.MessageFactory(desc.file.pool).GetPrototype(desc)


def _parse(desc: Any, data: bytes, err: Any, what: str) -> Any:
    msg = message_class(desc)()
    try:
        msg.ParseFromString(data)
    except _message.DecodeError as e:
        raise err(f"{what} does not parse as {desc.full_name}: {e}") from None
    return msg


def _check_input(m: MethodDescriptor, request: Any) -> bytes:
    if not isinstance(request, _message.Message) or \
            request.DESCRIPTOR.full_name != m.input_type.full_name:
        raise InvalidArgument(f"{m.containing_service.full_name}/{m.name} takes a "
                              f"{m.input_type.full_name}, not {type(request).__name__}")
    return request.SerializeToString()


class Client:
    """Calls the methods of @service (a ``ServiceDescriptor``) over @bus; each method is an
    attribute: ``await client.Get(request)`` for a unary method, ``async for r in
    client.Scan(request)`` for a server-streaming one. @timeout: each call's deadline in
    seconds (None: none), overridable per call with ``timeout=``."""

    def __init__(self, bus: aio.Bus, service: ServiceDescriptor, *,
                 timeout: Optional[float] = None) -> None:
        self._bus = bus
        self._service = service
        self._timeout = timeout

    def _method(self, name: str) -> MethodDescriptor:
        m = self._service.methods_by_name.get(name)
        if m is None:
            raise AttributeError(f"{self._service.full_name} has no method {name!r}")
        return m

    async def call(self, name: str, request: Any, *, timeout: Optional[float] = None,
                   headers: Headers = None) -> Any:
        """Calls the unary method @name and returns the parsed reply."""
        m = self._method(name)
        data = _check_input(m, request)
        out = await self._bus.call(f"{self._service.full_name}/{m.name}", data,
                                   timeout=timeout if timeout is not None else self._timeout,
                                   headers=headers)
        return _parse(m.output_type, out, Internal, "the reply")

    def stream(self, name: str, request: Any, *, timeout: Optional[float] = None,
               headers: Headers = None) -> "TypedStream":
        """Calls the server-streaming method @name: ``async with client.stream(...) as r:
        async for reply in r`` (or a bare ``async for``, see :meth:`vbus.Bus.call_stream`)
        yields each parsed reply."""
        m = self._method(name)
        data = _check_input(m, request)
        return TypedStream(self._bus.call_stream(
            f"{self._service.full_name}/{m.name}", data,
            timeout=timeout if timeout is not None else self._timeout, headers=headers),
            m.output_type)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        m = self._method(name)
        if m.server_streaming:
            return lambda request, **kw: self.stream(name, request, **kw)
        return lambda request, **kw: self.call(name, request, **kw)


class TypedStream:
    """The replies of a server-streaming call, parsed: an async iterator and an async context
    manager (leaving it cancels the call if it has not ended)."""

    def __init__(self, call: aio.CallStream, output_type: Any) -> None:
        self._call = call
        self._output_type = output_type

    def __aiter__(self) -> "TypedStream":
        return self

    async def __anext__(self) -> Any:
        out = await self._call.__anext__()
        return _parse(self._output_type, out, Internal, "a reply")

    def cancel(self) -> None:
        """Abandons the call: the server is told."""
        self._call.cancel()

    async def __aenter__(self) -> "TypedStream":
        await self._call.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._call.__aexit__(*exc)


def serve(bus: aio.Bus, service: ServiceDescriptor, impl: Any) -> aio.Server:
    """Serves @service with @impl, an object with one async method per method of the service:
    ``async def Get(self, request, req)`` returns the reply message (``req`` is the
    :class:`vbus.Request`: caller, deadline, headers); a server-streaming method is an async
    generator that yields the replies. Raising :class:`vbus.Error` answers with its status."""
    unary: Dict[str, MethodDescriptor] = {}
    streams: Dict[str, Any] = {}
    for m in service.methods:
        if m.client_streaming:
            continue  # client- and bidirectional streaming: not offered by this helper
        if m.server_streaming:
            fn = getattr(impl, m.name, None)
            if fn is not None:
                streams[m.name] = _stream_handler(m, fn)
        else:
            unary[m.name] = m

    async def handler(req: Request) -> bytes:
        m = unary.get(req.method)
        if m is None:
            raise NotFound(f"{service.full_name} has no unary method {req.method!r}")
        fn = getattr(impl, m.name, None)
        if fn is None:
            raise Unsupported(f"{req.full_method} is not implemented")
        request = _parse(m.input_type, req.data, InvalidArgument, "the request")
        out = await fn(request, req)
        if not isinstance(out, _message.Message) or \
                out.DESCRIPTOR.full_name != m.output_type.full_name:
            raise Internal(f"{req.full_method} returned {type(out).__name__}, "
                           f"not {m.output_type.full_name}")
        return out.SerializeToString()

    return bus.serve(service.full_name, handler, stream_methods=streams)


def _stream_handler(m: MethodDescriptor, fn: Any) -> Any:
    async def run(req: Request, stream: aio.ServerStream) -> None:
        first = None
        async for data in stream:
            if first is None:
                first = data
            else:
                raise InvalidArgument(f"{req.full_method} takes one request message")
        request = _parse(m.input_type, first or b"", InvalidArgument, "the request")
        async for out in fn(request, req):
            if not isinstance(out, _message.Message) or \
                    out.DESCRIPTOR.full_name != m.output_type.full_name:
                raise Internal(f"{req.full_method} yielded {type(out).__name__}")
            await stream.send(out.SerializeToString())
    return run
