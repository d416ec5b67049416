#!/usr/bin/env python3
"""Hostile xenstore clients against a running xensimd (instance dir in argv[1]).

Each case connects as some domain, misbehaves, and checks the reply Xen's xenstored would
give (or that the connection is closed); after every case, a well-behaved client of another
domain must still be served. Exits non-zero on the first failure.
"""
import os
import socket
import struct
import sys

D = sys.argv[1]
A, B = int(sys.argv[2]), int(sys.argv[3])   # two domUs

XS_DIRECTORY, XS_READ, XS_GET_PERMS, XS_WATCH, XS_UNWATCH = 1, 2, 3, 4, 5
XS_TXN_START, XS_TXN_END, XS_INTRODUCE, XS_RELEASE, XS_GET_DOMAIN_PATH = 6, 7, 8, 9, 10
XS_WRITE, XS_MKDIR, XS_RM, XS_SET_PERMS, XS_WATCH_EVENT, XS_ERROR = 11, 12, 13, 14, 15, 16
XS_IS_DOMAIN_INTRODUCED, XS_RESUME, XS_SET_TARGET, XS_RESET_WATCHES, XS_DIRECTORY_PART = \
    17, 18, 19, 21, 22


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def conn(dom):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.path.join(D, "dom%d.sock" % dom))  # blocking: waits if the backlog is full
    s.settimeout(5)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def send(s, typ, payload, req=1, tx=0):
    s.sendall(struct.pack("<IIII", typ, req, tx, len(payload)) + payload)


def reply(s, skip_events=True):
    while True:
        h = recv_exact(s, 16)
        if h is None:
            return None
        typ, req, tx, n = struct.unpack("<IIII", h)
        body = recv_exact(s, n) if n else b""
        if typ == XS_WATCH_EVENT and skip_events:
            continue
        return typ, req, tx, body


def call(s, typ, payload, tx=0):
    send(s, typ, payload, tx=tx)
    r = reply(s)
    if r is None:
        fail("connection closed on type %d" % typ)
    return r


def expect_err(s, typ, payload, err, what, tx=0):
    t, _, _, body = call(s, typ, payload, tx)
    if t != XS_ERROR or body != err.encode() + b"\0":
        fail("%s: expected %s, got type %d %r" % (what, err, t, body))
    print("ok: %s -> %s" % (what, err))


def expect_closed(s, what):
    s.settimeout(5)
    try:
        r = reply(s)
    except ConnectionResetError:
        r = None
    if r is not None:
        fail("%s: connection not closed, got %r" % (what, r))
    print("ok: %s -> connection closed" % what)


def others_served():
    for dom in (0, B):
        s = conn(dom)
        t, _, _, body = call(s, XS_READ, b"/local/domain/%d/name\0" % dom)
        if t != XS_READ:
            fail("domain %d not served after abuse: %r" % (dom, body))
        s.close()


def main():
    # Oversized length: a protocol violation, connection closed.
    s = conn(A)
    s.sendall(struct.pack("<IIII", XS_READ, 1, 0, 4097) + b"x" * 100)
    expect_closed(s, "length 4097")
    s = conn(A)
    s.sendall(struct.pack("<IIII", XS_WRITE, 1, 0, 0xFFFFFFFF))
    expect_closed(s, "length 0xffffffff")
    others_served()

    s = conn(A)
    expect_err(s, 999, b"", "ENOSYS", "unknown type")
    expect_err(s, XS_WATCH_EVENT, b"a\0b\0", "ENOSYS", "client-sent WATCH_EVENT")
    expect_err(s, XS_ERROR, b"EINVAL\0", "ENOSYS", "client-sent ERROR")
    expect_err(s, XS_READ, b"data", "EINVAL", "read without NUL")
    expect_err(s, XS_READ, b"", "EINVAL", "read without path")
    expect_err(s, XS_READ, b"data\0x\0", "EINVAL", "read with two args")
    expect_err(s, XS_READ, b"data/a b\0", "EINVAL", "path with a space")
    expect_err(s, XS_READ, b"data//x\0", "EINVAL", "path with //")
    expect_err(s, XS_READ, b"data/\0", "EINVAL", "path with trailing /")
    expect_err(s, XS_WRITE, b"@introduceDomain\0x", "EINVAL", "write to a special node")
    expect_err(s, XS_READ, b"data/" + b"x" * 2100 + b"\0", "EINVAL", "relative path over 2048")
    expect_err(s, XS_WRITE, b"nonul", "EINVAL", "write without path")
    expect_err(s, XS_READ, b"data/nothing\0", "ENOENT", "missing node")
    expect_err(s, XS_READ, b"/local/domain/%d/data\0" % B, "EACCES", "another domain's data")
    expect_err(s, XS_READ, b"/local/domain/%d/data/nothing\0" % B, "EACCES",
               "missing node in another domain (no existence leak)")
    expect_err(s, XS_WRITE, b"/local/domain/%d/data/x\0v" % B, "EACCES",
               "write into another domain")
    expect_err(s, XS_RM, b"/local/domain/%d/data\0" % B, "EACCES", "rm another domain's data")
    expect_err(s, XS_SET_PERMS, b"/local/domain/%d/data\0n%d\0" % (B, A), "EACCES",
               "take over another domain's node")
    expect_err(s, XS_SET_PERMS, b"data\0n%d\0" % B, "EPERM", "give own node away")
    expect_err(s, XS_SET_PERMS, b"data\0x1\0", "EINVAL", "bad permission letter")
    expect_err(s, XS_SET_PERMS, b"data\0", "EINVAL", "no permissions")
    expect_err(s, XS_SET_PERMS, b"data\0" + b"".join(b"r%d\0" % i for i in range(7)),
               "ENOSPC", "more than 5 permissions")
    expect_err(s, XS_INTRODUCE, b"%d\0 1\0 1\0" % B, "EACCES", "introduce as a domU")
    expect_err(s, XS_RELEASE, b"%d\0" % B, "EACCES", "release another domain as a domU")
    expect_err(s, XS_IS_DOMAIN_INTRODUCED, b"%d\0" % B, "EACCES", "is-introduced as a domU")
    expect_err(s, XS_SET_TARGET, b"%d\0%d\0" % (A, B), "EACCES", "set-target as a domU")
    expect_err(s, XS_READ, b"data\0", "ENOENT", "unknown transaction id", tx=77)
    expect_err(s, XS_TXN_END, b"T\0", "ENOENT", "end without transaction")
    expect_err(s, XS_WATCH, b"data\0", "EINVAL", "watch without token")
    expect_err(s, XS_UNWATCH, b"data\0tok\0", "ENOENT", "unwatch unknown")
    t, _, _, body = call(s, XS_WATCH, b"data\0tok\0")
    if t != XS_WATCH:
        fail("watch: %r" % body)
    expect_err(s, XS_WATCH, b"data\0tok\0", "EEXIST", "duplicate watch")
    others_served()

    # Transactions: ids are per connection, so B's connection cannot use A's.
    t, _, _, body = call(s, XS_TXN_START, b"\0")
    tx = int(body.rstrip(b"\0"))
    sb = conn(B)
    expect_err(sb, XS_WRITE, b"data/x\0v", "ENOENT", "another connection's transaction", tx=tx)
    expect_err(s, XS_TXN_START, b"\0", "EBUSY", "start inside a transaction", tx=tx)
    expect_err(s, XS_TXN_END, b"X\0", "EINVAL", "end with bad argument", tx=tx)
    for i in range(9):
        call(s, XS_TXN_START, b"\0")
    expect_err(s, XS_TXN_START, b"\0", "ENOSPC", "an 11th transaction")
    # Conflict: write in the transaction, change the node outside, commit -> EAGAIN.
    call(s, XS_WRITE, b"data/c\0one")
    call(s, XS_READ, b"data/c\0", tx=tx)
    call(s, XS_WRITE, b"data/c\0two")
    call(s, XS_WRITE, b"data/c\0three", tx=tx)
    expect_err(s, XS_TXN_END, b"T\0", "EAGAIN", "conflicting commit", tx=tx)
    t, _, _, body = call(s, XS_READ, b"data/c\0")
    if body != b"two":
        fail("conflicting transaction leaked its write: %r" % body)
    others_served()

    # Quota: 128 watches per domain.
    sw = conn(A)
    for i in range(127):
        t, _, _, body = call(sw, XS_WATCH, b"data\0t%d\0" % i)
        if t != XS_WATCH:
            fail("watch %d refused: %r" % (i, body))
    expect_err(sw, XS_WATCH, b"data\0t999\0", "E2BIG", "watch 129")
    sw.close()

    # Half a header, then half a payload, then disconnect.
    s2 = conn(A)
    s2.sendall(struct.pack("<IIII", XS_WRITE, 1, 0, 50)[:7])
    s2.close()
    s2 = conn(A)
    s2.sendall(struct.pack("<IIII", XS_WRITE, 1, 0, 50) + b"data/x\0")
    s2.close()
    others_served()

    # A flood of pipelined requests from a client that never reads: xensimd stops reading it
    # (outstanding-reply quota) and keeps serving others.
    s3 = conn(A)
    s3.setblocking(False)
    msg = struct.pack("<IIII", XS_READ, 1, 0, 5) + b"data\0"
    sent = 0
    try:
        for _ in range(200000):
            s3.send(msg)
            sent += 1
    except BlockingIOError:
        pass
    others_served()
    s3.close()
    print("ok: flood of %d unread requests does not affect others" % sent)

    # Random garbage.
    rnd = open("/dev/urandom", "rb")
    for i in range(50):
        s4 = conn(A)
        try:
            s4.sendall(rnd.read(64 + i * 37))
        except OSError:
            pass
        s4.close()
    others_served()
    print("ok: random garbage")

    # Connection limit per domain: extra connections are closed at once.
    many = [conn(A) for _ in range(70)]
    closed = 0
    for c in many:
        try:
            send(c, XS_READ, b"domid\0")
            if reply(c) is None:
                closed += 1
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            closed += 1
    if closed == 0:
        fail("no connection limit")
    for c in many:
        c.close()
    others_served()
    print("ok: connection limit (%d of 70 refused)" % closed)


main()
