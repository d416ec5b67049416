#!/usr/bin/env bash
# vbusctl expose / forward / connect across domains (docs/forward.md): an unmodified socket
# program (python's http.server) fetched with urllib and curl through the forwarder; connect
# with an HTTP request on stdin; a half-closed client that still reads its reply; the caller's
# identity at the exposing end (-v, and VBUS_CALLER for --exec); a refused connection and an
# endpoint nobody exposes, both seen by the local client as a reset; bad input.
# Over vchan a domain holds one link to the broker, so each vbusctl runs in a domain of its own.
. "$(dirname "$0")/lib.sh" "$1"
PEER="python3 $(dirname "$0")/forward-peer.py"
xs_up
broker_start

# in_dom NAME LOG ARGS...: vbusctl ARGS in a new domain NAME, in the background, stderr to LOG.
in_dom() {
        local d
        d=$(guest "$1") || fail "domain $1"
        "$XS" run --domid "$d" -- env VBUS_URL=vchan:0 "$VBUSCTL" "${@:3}" 2>"$TMP/$2.log" &
        PIDS="$PIDS $!"
        echo "$d" >"$TMP/$2.domid"
        echo "$!" >"$TMP/$2.pid"
}
# fwd_port LOG: the port a `forward --listen tcp:127.0.0.1:0` in LOG got.
fwd_port() {
        wait_grep "# forwarding" "$TMP/$1.log" || fail "forward did not start: $(cat "$TMP/$1.log")"
        sed -n 's/^# forwarding tcp:127.0.0.1:\([0-9]*\) .*/\1/p' "$TMP/$1.log"
}
exposed() {
        wait_grep "# exposing" "$TMP/$1.log" || fail "expose did not start: $(cat "$TMP/$1.log")"
}

# An unmodified HTTP server, a directory with a 1 MiB random file.
mkdir -p "$TMP/www"
head -c 1048576 /dev/urandom >"$TMP/www/blob"
echo "hello over the bus" >"$TMP/www/index.txt"
(cd "$TMP/www" && exec python3 -u -m http.server 0 --bind 127.0.0.1) >"$TMP/http.log" 2>&1 &
PIDS="$PIDS $!"
wait_grep "Serving HTTP" "$TMP/http.log" || fail "http.server did not start"
hport=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$TMP/http.log" | head -n 1)

in_dom web-srv web-srv expose web --to "tcp:127.0.0.1:$hport" -v
exposed web-srv
in_dom web-cli web-cli forward --listen tcp:127.0.0.1:0 web -v
port=$(fwd_port web-cli)
cli=$(cat "$TMP/web-cli.domid")

python3 - "$port" "$TMP/www/blob" <<'PY' || fail "urllib through the forwarder"
import hashlib, sys, urllib.request
base = "http://127.0.0.1:%s/" % sys.argv[1]
want = hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
for i in range(3):
    got = hashlib.sha256(urllib.request.urlopen(base + "blob", timeout=20).read()).hexdigest()
    assert got == want, (got, want)
assert urllib.request.urlopen(base + "index.txt", timeout=20).read() == b"hello over the bus\n"
print("urllib: 3 x 1 MiB and index.txt intact")
PY
ok "python urllib fetched http.server's files through forward/expose"
curl -sS --max-time 20 "http://127.0.0.1:$port/blob" -o "$TMP/blob.curl" || fail "curl"
cmp -s "$TMP/blob.curl" "$TMP/www/blob" || fail "curl: the file differs"
ok "curl fetched the 1 MiB file intact"

# The exposing end sees who connects: the identity the broker stamped.
grep -q "dom$cli(web-cli): connected to tcp:127.0.0.1:$hport" "$TMP/web-srv.log" ||
        fail "no identity line in: $(cat "$TMP/web-srv.log")"
ok "expose -v: $(grep -m1 "dom$cli(web-cli)" "$TMP/web-srv.log")"

# connect: stdin and stdout over the bus (HTTP/1.0: the server closes after the answer).
d=$(guest web-nc)
printf 'GET /index.txt HTTP/1.0\r\n\r\n' |
        timeout 20 "$XS" run --domid "$d" -- env VBUS_URL=vchan:0 "$VBUSCTL" connect web \
        >"$TMP/nc.out" 2>"$TMP/nc.err" || fail "connect: $(cat "$TMP/nc.err")"
head -n 1 "$TMP/nc.out" | grep -q "200 OK" || fail "connect: $(head -n 3 "$TMP/nc.out")"
grep -q "hello over the bus" "$TMP/nc.out" || fail "connect: no body"
ok "connect: an HTTP/1.0 exchange on stdin/stdout"

# Two endpoints in one expose and one forward (over vchan a domain has one link to the broker,
# so one process carries several endpoints), each exercising a half-close:
# - upper: the server answers only after the client's end of file (over unix sockets);
# - greeter: the server sends a greeting and shuts down writing first; the client reads to that
#   end of file, then sends 8 MiB, all of which reach the server.
mkdir -p "$TMP/s"
$PEER upper-server tcp:127.0.0.1:0 "$TMP/upper.addr" &
PIDS="$PIDS $!"
$PEER greeter-server tcp:127.0.0.1:0 "$TMP/greeter.addr" &
PIDS="$PIDS $!"
wait_file "$TMP/upper.addr" && wait_file "$TMP/greeter.addr" || fail "upper-server, greeter-server"
in_dom multi-srv multi-srv expose upper --to "$(cat "$TMP/upper.addr")" \
        greeter --to "$(cat "$TMP/greeter.addr")"
wait_grep "as upper" "$TMP/multi-srv.log" && wait_grep "as greeter" "$TMP/multi-srv.log" ||
        fail "expose of two endpoints: $(cat "$TMP/multi-srv.log")"
in_dom multi-cli multi-cli forward --listen "unix:$TMP/s/upper.sock" upper \
        --listen tcp:127.0.0.1:0 greeter
gport=$(fwd_port multi-cli)
grep -q "# forwarding unix:$TMP/s/upper.sock to forward.upper/Connect" "$TMP/multi-cli.log" ||
        fail "forward of two endpoints: $(cat "$TMP/multi-cli.log")"
ok "one expose and one forward, two endpoints each"
out=$(timeout 20 $PEER halfclose "unix:$TMP/s/upper.sock") || fail "half-close: $out"
ok "half-close over a unix socket: $out"
out=$(timeout 30 $PEER late-sender "tcp:127.0.0.1:$gport" 8 2>&1) || fail "late-sender: $out"
wait_file "$TMP/greeter.addr.log" || fail "the greeter did not finish"
[ "$(cat "$TMP/greeter.addr.log")" = "$out" ] ||
        fail "server-first half-close: the server got '$(cat "$TMP/greeter.addr.log")', the client sent '$out'"
ok "server-first half-close: greeting, end of file, then 8 MiB from the client intact"

# SIGTERM: the forwarder exits 0 and removes its socket.
kill -TERM "$(cat "$TMP/multi-cli.pid")"
wait "$(cat "$TMP/multi-cli.pid")" || fail "forward exited $? on SIGTERM: $(cat "$TMP/multi-cli.log")"
[ ! -e "$TMP/s/upper.sock" ] || fail "forward left its unix socket behind"
ok "forward on SIGTERM: exit 0, unix socket removed"

# --exec: a command per connection, the caller's identity in VBUS_CALLER.
in_dom who-srv who-srv expose whoami --exec 'printf "%s\n" "$VBUS_CALLER"; tr a-z A-Z'
exposed who-srv
d=$(guest who-nc)
out=$(echo "ping" | timeout 20 "$XS" run --domid "$d" -- env VBUS_URL=vchan:0 "$VBUSCTL" \
        connect whoami 2>&1) || fail "connect to --exec: $out"
[ "$out" = "dom$d(who-nc)
PING" ] || fail "expose --exec: '$out'"
ok "expose --exec: the command saw VBUS_CALLER=dom$d(who-nc) and the bytes"

# Nothing listens at the exposed address: the local client sees a reset.
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
in_dom closed-srv closed-srv expose closed --to "tcp:127.0.0.1:$dead" -v
exposed closed-srv
in_dom closed-cli closed-cli forward --listen tcp:127.0.0.1:0 closed
cport=$(fwd_port closed-cli)
out=$(timeout 20 $PEER expect-reset "tcp:127.0.0.1:$cport" 2>&1) || fail "refused: $out"
ok "refused at the far side: $out"
d=$(guest closed-nc)
out=$(echo x | timeout 20 "$XS" run --domid "$d" -- env VBUS_URL=vchan:0 "$VBUSCTL" connect closed 2>&1)
rc=$?
[ "$rc" = 1 ] && [[ "$out" == *"connection reset: unavailable: connect to tcp:127.0.0.1:$dead: Connection refused"* ]] ||
        fail "connect to a refusing endpoint: exit $rc, '$out'"
ok "connect, refused: exit 1, $out"

# Nobody exposes the name: NOT_FOUND from the broker, a reset for the local client.
in_dom nobody-cli nobody-cli forward --listen tcp:127.0.0.1:0 nobody
nport=$(fwd_port nobody-cli)
out=$(timeout 20 $PEER expect-reset "tcp:127.0.0.1:$nport" 2>&1) || fail "unknown endpoint: $out"
wait_grep "nobody exposes 'nobody'" "$TMP/nobody-cli.log" || fail "no message: $(cat "$TMP/nobody-cli.log")"
ok "unknown endpoint: $out; the forwarder says: $(grep -m1 "nobody exposes" "$TMP/nobody-cli.log")"

# Bad input (local processes through the broker's socket: no domain needed).
export VBUS_URL=unix:$SOCK
expect_usage() { # RC PATTERN ARGS...
        local want=$1 pat=$2 out rc
        shift 2
        out=$(timeout 10 "$VBUSCTL" "$@" </dev/null 2>&1)
        rc=$?
        # shellcheck disable=SC2053 # $pat is a pattern
        [[ "$rc" = "$want" && "$out" == $pat ]] || fail "vbusctl $*: exit $rc, '$out'"
        ok "vbusctl $*: exit $rc, $(printf '%s' "$out" | head -n 1)"
}
expect_usage 2 "*bad address 'tcp:127.0.0.1'*expected tcp:HOST:PORT*" forward --listen tcp:127.0.0.1 web
expect_usage 2 "*bad address 'tcp:127.0.0.1:99999'*port*" forward --listen tcp:127.0.0.1:99999 web
expect_usage 2 "*bad address 'udp:1.2.3.4:5'*" expose web --to udp:1.2.3.4:5
expect_usage 2 "*bad address 'tcp:no-such-host.invalid:80'*unknown host*" expose web --to tcp:no-such-host.invalid:80
expect_usage 2 "*not a valid endpoint name*" forward --listen tcp:127.0.0.1:0 'bad/name'
expect_usage 2 "*--listen ADDR is required*" forward web
expect_usage 2 "*want one of --to ADDR and --exec CMD*" expose web
expect_usage 2 "*no option --to*" connect web --to tcp:127.0.0.1:1
expect_usage 2 "*for each NAME (2 names, 1 of them)*" expose a --to tcp:127.0.0.1:1 b
expect_usage 2 "*'a' twice*" expose a --to tcp:127.0.0.1:1 a --to tcp:127.0.0.1:2
expect_usage 2 "*want exactly one NAME*" connect a b
expect_usage 1 "*cannot listen on tcp:127.0.0.1:$hport: Address already in use*" forward --listen "tcp:127.0.0.1:$hport" web
expect_usage 1 "*nobody exposes 'nobody'*" connect nobody
expect_usage 0 "*forward --listen ADDR NAME*" forward --help
"$VBUSCTL" --help | grep -q "expose NAME --to ADDR" || fail "vbusctl --help does not list expose"
ok "vbusctl --help lists expose, forward and connect"

# No sanitizer report from any vbusctl (ASan build), even from those killed at the end.
grep -l "ERROR: .*Sanitizer\|runtime error" "$TMP"/*.log && fail "sanitizer report"
ok "no sanitizer report"
