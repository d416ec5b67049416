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
