#!/usr/bin/env python3
"""Socket programs for the forward*.sh tests: plain TCP/unix clients and servers that know
nothing of vbus, driven through `vbusctl forward` and `vbusctl expose`.

  forward-peer.py echo-server ADDR READYFILE [EVENTS]   echo each connection back; on the
        client's end of file, shut down writing. Appends "reset" or "eof N" per connection to
        EVENTS. ADDR: tcp:HOST:PORT (port 0: any; READYFILE gets the address) or unix:/path.
  forward-peer.py upper-server ADDR READYFILE           read to end of file, answer upper-cased
  forward-peer.py bulk ADDR MIB                         send MIB MiB of random bytes while
        reading the echo; compare SHA-256 of both ways
  forward-peer.py concurrent ADDR N KIB                 N connections at once, KIB each, echoed
  forward-peer.py halfclose ADDR                        send, shut down writing, read the reply
  forward-peer.py greeter-server ADDR READYFILE        per connection: send a greeting, shut down
        writing, then read to end of file and write "got N <sha256>" to READYFILE.log
  forward-peer.py late-sender ADDR MIB                 read the greeting to end of file, then
        send MIB MiB and shut down; prints the sha256 of what it sent
  forward-peer.py expect-reset ADDR                     the connection must be reset
  forward-peer.py stalled-server ADDR READYFILE SECS [KIB MS]   per connection: read nothing
        for SECS seconds, then read to end of file (at most KIB KiB per read, MS ms between
        reads: a slow reader) and answer with the count ("N\n")
  forward-peer.py push ADDR MIB PROGRESSFILE          send MIB MiB (PROGRESSFILE: bytes sent so
        far, rewritten as it goes), shut down writing, check the count in the answer
  forward-peer.py stream ADDR RESULTFILE                echo traffic until the connection ends;
        writes "reset", "eof" or "error X" to RESULTFILE
Exits 0 on success; prints what went wrong otherwise.
"""
import hashlib
import os
import selectors
import socket
import sys
import threading
import time


def parse(addr):
    if addr.startswith("unix:"):
        return socket.AF_UNIX, addr[5:]
    host, port = addr[4:].rsplit(":", 1)
    return socket.AF_INET, (host, int(port))


def dial(addr, timeout=30):
    fam, sa = parse(addr)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sa)
    return s


def listen(addr, ready):
    fam, sa = parse(addr)
    s = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_INET:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(sa)
    s.listen(128)
    name = addr if fam == socket.AF_UNIX else "tcp:%s:%d" % s.getsockname()
    with open(ready + ".tmp", "w") as f:
        f.write(name)
    os.rename(ready + ".tmp", ready)
    return s


def serve(addr, ready, handler):
    s = listen(addr, ready)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()


def echo_server(addr, ready, events=None):
    lock = threading.Lock()

    def note(what):
        if events:
            with lock, open(events, "a") as f:
                f.write(what + "\n")

    def handle(c):
        n = 0
        try:
            while True:
                b = c.recv(1 << 16)
                if not b:
                    break
                n += len(b)
                c.sendall(b)
            c.shutdown(socket.SHUT_WR)
            note("eof %d" % n)
        except ConnectionResetError:
            note("reset")
        except OSError as e:
            note("error %s" % e)
        finally:
            c.close()

    serve(addr, ready, handle)


def upper_server(addr, ready):
    def handle(c):
        d = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            d += b
        c.sendall(d.upper())
        c.close()

    serve(addr, ready, handle)


def bulk(addr, mib):
    total = int(float(mib) * (1 << 20))
    s = dial(addr, timeout=120)
    sent, got = hashlib.sha256(), hashlib.sha256()
    n_got = [0]

    def reader():
        while True:
            b = s.recv(1 << 20)
            if not b:
                return
            got.update(b)
            n_got[0] += len(b)

    t = threading.Thread(target=reader)
    t.start()
    t0 = time.monotonic()
    left = total
    while left:
        chunk = os.urandom(min(left, 1 << 20))
        sent.update(chunk)
        s.sendall(chunk)
        left -= len(chunk)
    s.shutdown(socket.SHUT_WR)
    t.join()
    dt = time.monotonic() - t0
    s.close()
    if n_got[0] != total or got.hexdigest() != sent.hexdigest():
        print("bulk: sent %d bytes, got %d back, sha256 %s vs %s"
              % (total, n_got[0], sent.hexdigest(), got.hexdigest()))
        sys.exit(1)
    print("%d MiB each way, sha256 %s, %.2f s (%.0f MB/s each way)"
          % (total >> 20, sent.hexdigest()[:16], dt, total / dt / 1e6))


def concurrent(addr, n, kib):
    n, size = int(n), int(kib) * 1024
    sel = selectors.DefaultSelector()
    state = {}
    for i in range(n):
        s = dial(addr)
        s.setblocking(False)
        data = hashlib.sha256(b"%d" % i).digest() * (size // 32) + b"x" * (size % 32)
        state[s] = {"out": memoryview(data), "want": data, "got": bytearray(), "eof": False}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    # Every connection is open before any byte moves: N calls in flight at once.
    done, deadline = 0, time.monotonic() + 60
    while done < n:
        if time.monotonic() > deadline:
            print("concurrent: %d of %d connections done in 60 s" % (done, n))
            sys.exit(1)
        for key, ev in sel.select(timeout=1):
            s, st = key.fileobj, state[key.fileobj]
            if ev & selectors.EVENT_WRITE and st["out"]:
                k = s.send(st["out"][: 1 << 16])
                st["out"] = st["out"][k:]
                if not st["out"]:
                    s.shutdown(socket.SHUT_WR)
                    sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                b = s.recv(1 << 16)
                if b:
                    st["got"] += b
                else:
                    sel.unregister(s)
                    s.close()
                    if bytes(st["got"]) != st["want"]:
                        print("concurrent: a connection got %d bytes back, not its %d"
                              % (len(st["got"]), len(st["want"])))
                        sys.exit(1)
                    done += 1
    print("%d connections at once, %d KiB each, all echoed intact" % (n, int(kib)))


def stalled_server(addr, ready, secs, read_kib="1024", pause_ms="0"):
    def handle(c):
        time.sleep(float(secs))
        n = 0
        while True:
            if float(pause_ms) > 0:
                time.sleep(float(pause_ms) / 1000)
            b = c.recv(int(read_kib) * 1024)
            if not b:
                break
            n += len(b)
        c.sendall(b"%d\n" % n)
        c.close()

    serve(addr, ready, handle)


def push(addr, mib, progress):
    total = int(mib) << 20
    s = dial(addr, timeout=120)
    block = os.urandom(1 << 16)
    sent = 0
    while sent < total:
        s.sendall(block)
        sent += len(block)
        with open(progress + ".tmp", "w") as f:
            f.write("%d\n" % sent)
        os.rename(progress + ".tmp", progress)
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while True:
        b = s.recv(100)
        if not b:
            break
        answer += b
    if answer != b"%d\n" % total:
        print("push: sent %d, the server counted %r" % (total, answer))
        sys.exit(1)
    print("pushed %d MiB, all counted by the server" % int(mib))


def greeter_server(addr, ready):
    def handle(c):
        c.sendall(b"hello, then silence")
        c.shutdown(socket.SHUT_WR)
        h, n = hashlib.sha256(), 0
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            h.update(b)
            n += len(b)
        with open(ready + ".log.tmp", "w") as f:
            f.write("got %d %s\n" % (n, h.hexdigest()))
        os.rename(ready + ".log.tmp", ready + ".log")
        c.close()

    serve(addr, ready, handle)


def late_sender(addr, mib):
    s = dial(addr)
    d = b""
    while True:
        b = s.recv(100)
        if not b:
            break
        d += b
    if d != b"hello, then silence":
        print("late-sender: greeting %r" % d)
        sys.exit(1)
    h = hashlib.sha256()
    for _ in range(int(mib)):
        chunk = os.urandom(1 << 20)
        h.update(chunk)
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    if s.recv(1) != b"":
        print("late-sender: data after the greeting's end of file")
        sys.exit(1)
    s.close()
    print("got %d %s" % (int(mib) << 20, h.hexdigest()))


def halfclose(addr):
    s = dial(addr)
    s.sendall(b"half-closed request")
    s.shutdown(socket.SHUT_WR)
    d = b""
    while True:
        b = s.recv(100)
        if not b:
            break
        d += b
    if d != b"HALF-CLOSED REQUEST":
        print("halfclose: got %r" % d)
        sys.exit(1)
    print("reply after shutdown(SHUT_WR): %r" % d.decode())


def expect_reset(addr):
    try:
        # The reset may come so fast that connect() itself reports it (python's connect with a
        # timeout polls and reads SO_ERROR): a reset all the same.
        s = dial(addr, timeout=15)
        s.sendall(b"anyone there?")
        b = s.recv(100)
    except ConnectionResetError:
        print("connection reset (ECONNRESET)")
        return
    except BrokenPipeError:
        print("connection reset (EPIPE)")
        return
    print("expect-reset: got %r instead of a reset" % b)
    sys.exit(1)


def stream(addr, result):
    s = dial(addr, timeout=30)
    block = os.urandom(1 << 16)
    what = "timeout"
    try:
        t_end = time.monotonic() + 30
        while time.monotonic() < t_end:
            s.sendall(block)
            if not s.recv(1 << 16):
                what = "eof"
                break
            if not os.path.exists(result + ".started"):
                open(result + ".started", "w").close()
        else:
            what = "no end in 30 s"
    except ConnectionResetError:
        what = "reset"
    except BrokenPipeError:
        what = "reset (EPIPE)"
    except socket.timeout:
        what = "stalled"
    except OSError as e:
        what = "error %s" % e
    with open(result, "w") as f:
        f.write(what + "\n")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {
        "echo-server": echo_server,
        "upper-server": upper_server,
        "bulk": bulk,
        "concurrent": concurrent,
        "halfclose": halfclose,
        "greeter-server": greeter_server,
        "late-sender": late_sender,
        "expect-reset": expect_reset,
        "stream": stream,
        "stalled-server": stalled_server,
        "push": push,
    }[cmd](*args)


if __name__ == "__main__":
    main()
