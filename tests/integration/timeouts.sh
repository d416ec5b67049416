#!/usr/bin/env bash
# The public API's timeouts at their extremes (timeouts-check.c): VBUS_TIMEOUT_FOREVER and
# values near UINT64_MAX wait (helpers) or mean no deadline (calls), instead of wrapping around
# into an immediate -ETIMEDOUT or deadline-exceeded; 0 only checks. The server answers after
# 600 ms, longer than the library's 200 ms grace, so a wrapped deadline would fail the call.
. "$(dirname "$0")/lib.sh" "$1"
TC=$B/tests/integration/timeouts-check
RPC=$B/tests/integration/rpc-check
xs_up
broker_start
export VBUS_URL=unix:$SOCK

"$TC" helpers >"$TMP/helpers.out" 2>&1 || fail "helpers: $(cat "$TMP/helpers.out")"
[ "$(grep -c '^ok ' "$TMP/helpers.out")" = 5 ] || fail "helpers: $(cat "$TMP/helpers.out")"
ok "blocking helpers: $(grep -c '^ok ' "$TMP/helpers.out") checks"

bg "$RPC" serve t.v1.Slow slow --delay 600 --ready "$TMP/ready" >"$TMP/server.out" 2>&1
wait_file "$TMP/ready" || fail "server not active"
"$TC" call t.v1.Slow/Slow >"$TMP/call.out" 2>&1 || fail "call: $(cat "$TMP/call.out")"
[ "$(grep -c '^ok ' "$TMP/call.out")" = 6 ] || fail "call: $(cat "$TMP/call.out")"
ok "vbus_call_sync with FOREVER, UINT64_MAX - 1 and 0: the slow server's reply each time"

# An application's own event loop over a vchan: after each vbus_publish() the library's timeout
# is now (the broker hears of the message at the next vbus_conn_process()), so a loop that
# sleeps until that timeout delivers every message at once, not one per second.
g=$(guest looper)
bg "$VBUSCTL" sub loop.t --count 20 --timeout 60000 >"$TMP/loop-sub.out" 2>"$TMP/loop-sub.err"
p_sub=$!
wait_grep "# subscribed to loop.t" "$TMP/loop-sub.err" || fail "loop subscriber not active"
as_dom "$g" env VBUS_URL=vchan:0 "$TC" loop loop.t 20 >"$TMP/loop.out" 2>&1 ||
        fail "loop: $(cat "$TMP/loop.out")"
wait "$p_sub" || fail "loop subscriber: $(cat "$TMP/loop-sub.err")"
[ "$(grep -c '^loop.t ' "$TMP/loop-sub.out")" = 20 ] || fail "loop: $(cat "$TMP/loop-sub.out")"
ok "$(cat "$TMP/loop.out" | sed 's/^ok //'); all 20 delivered"
