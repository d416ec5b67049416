#!/usr/bin/env bash
# vbusctl forward/expose under load: a large transfer both ways at once checked by SHA-256
# (FORWARD_MIB MiB each way, default 100), 50 concurrent connections each echoed intact, and the
# peak resident size of both forwarders, which flow control keeps bounded whatever the volume;
# a reader that stalls holds the writer at the other end back (flow control end to end).
# FORWARD_MIB scales the transfer (CI runs the ASan build with the default as well).
. "$(dirname "$0")/lib.sh" "$1"
PEER="python3 $(dirname "$0")/forward-peer.py"
MIB=${FORWARD_MIB:-100}
# Under AddressSanitizer freed memory waits in a quarantine and counts as resident: turn it off
# so peak RSS shows what the forwarders really hold (as rpc-stream.sh does).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
xs_up
srv=$(guest bulk-srv)
cli=$(guest bulk-cli)
broker_start

$PEER echo-server tcp:127.0.0.1:0 "$TMP/echo.addr" "$TMP/echo.events" &
PIDS="$PIDS $!"
wait_file "$TMP/echo.addr" || fail "echo server"
"$XS" run --domid "$srv" -- env VBUS_URL=vchan:0 "$VBUSCTL" expose echo --to "$(cat "$TMP/echo.addr")" \
        2>"$TMP/srv.log" &
SRV_PID=$!
PIDS="$PIDS $SRV_PID"
"$XS" run --domid "$cli" -- env VBUS_URL=vchan:0 "$VBUSCTL" forward --listen tcp:127.0.0.1:0 echo \
        2>"$TMP/cli.log" &
CLI_PID=$!
PIDS="$PIDS $CLI_PID"
wait_grep "# exposing" "$TMP/srv.log" || fail "expose did not start"
wait_grep "# forwarding" "$TMP/cli.log" || fail "forward did not start"
port=$(sed -n 's/^# forwarding tcp:127.0.0.1:\([0-9]*\) .*/\1/p' "$TMP/cli.log")

hwm() {
        awk '/^VmHWM/ {print $2}' "/proc/$1/status"
}

out=$(timeout 150 $PEER bulk "tcp:127.0.0.1:$port" "$MIB") || fail "bulk: $out"
ok "large transfer: $out"
h_srv=$(hwm "$SRV_PID")
h_cli=$(hwm "$CLI_PID")
# Each side holds at most a 64 KiB read buffer, one message and a library window (~1 MiB) per
# direction and connection; the program and the vchan rings (1 MiB each way) come on top. A
# forwarder that buffered the transfer would be far above 64 MiB.
[ "$h_srv" -lt 65536 ] || fail "expose peak RSS $h_srv KiB after $MIB MiB"
[ "$h_cli" -lt 65536 ] || fail "forward peak RSS $h_cli KiB after $MIB MiB"
ok "peak RSS after $MIB MiB each way: expose ${h_srv} KiB, forward ${h_cli} KiB"

out=$(timeout 90 $PEER concurrent "tcp:127.0.0.1:$port" 50 256) || fail "concurrent: $out"
ok "$out"
n=$(grep -c "^eof" "$TMP/echo.events")
[ "$n" = 51 ] || fail "the echo server saw $n clean ends of file, not 51: $(sort "$TMP/echo.events" | uniq -c)"
ok "the server saw 51 clean ends of file, no reset"
h_srv=$(hwm "$SRV_PID")
h_cli=$(hwm "$CLI_PID")
ok "peak RSS after 50 concurrent connections: expose ${h_srv} KiB, forward ${h_cli} KiB"
# Flow control end to end: the server reads nothing for 4 s; the client pushing 64 MiB through
# the forwarders must be held back meanwhile by what fits in the socket buffers, the forwarders'
# bounded buffers and the windows, not run ahead into the forwarders' memory.
$PEER stalled-server tcp:127.0.0.1:0 "$TMP/stall.addr" 4 &
PIDS="$PIDS $!"
wait_file "$TMP/stall.addr" || fail "stalled server"
st_srv=$(guest stall-srv)
st_cli=$(guest stall-cli)
"$XS" run --domid "$st_srv" -- env VBUS_URL=vchan:0 "$VBUSCTL" expose stall --to "$(cat "$TMP/stall.addr")" \
        2>"$TMP/stall-srv.log" &
ST_SRV=$!
PIDS="$PIDS $ST_SRV"
"$XS" run --domid "$st_cli" -- env VBUS_URL=vchan:0 "$VBUSCTL" forward --listen tcp:127.0.0.1:0 stall \
        2>"$TMP/stall-cli.log" &
ST_CLI=$!
PIDS="$PIDS $ST_CLI"
wait_grep "# exposing" "$TMP/stall-srv.log" || fail "expose stall did not start"
wait_grep "# forwarding" "$TMP/stall-cli.log" || fail "forward stall did not start"
sport=$(sed -n 's/^# forwarding tcp:127.0.0.1:\([0-9]*\) .*/\1/p' "$TMP/stall-cli.log")
timeout 60 $PEER push "tcp:127.0.0.1:$sport" 64 "$TMP/push.progress" >"$TMP/push.out" 2>&1 &
p_push=$!
sleep 2.5
held=$(cat "$TMP/push.progress" 2>/dev/null || echo 0)
wait "$p_push" || fail "push: $(cat "$TMP/push.out")"
# Loopback TCP buffers grow to a few MiB each (client send, forwarder receive, expose send,
# server receive), the windows are about 1 MiB each: well under 48 MiB in all.
[ "$held" -lt $((48 << 20)) ] || fail "the writer ran ahead by $held bytes while the reader stalled"
h_srv=$(hwm "$ST_SRV")
h_cli=$(hwm "$ST_CLI")
[ "$h_srv" -lt 65536 ] && [ "$h_cli" -lt 65536 ] || fail "stalled reader: peak RSS $h_srv / $h_cli KiB"
ok "a stalled reader held the writer at $((held >> 20)) MiB of 64 until it read; $(cat "$TMP/push.out"); peak RSS expose ${h_srv} KiB, forward ${h_cli} KiB"

grep -l "ERROR: .*Sanitizer\|runtime error" "$TMP"/*.log && fail "sanitizer report"
ok "no sanitizer report"
