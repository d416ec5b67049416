#!/usr/bin/env bash
# The broker's limits on calls in flight: per caller link (max_calls) and per service
# (max_service_calls). Calls over a limit fail at once with RESOURCE_EXHAUSTED; the links stay
# up, the calls within the limit complete, and once calls finish new ones are taken again.
. "$(dirname "$0")/lib.sh" "$1"
RPC=$B/tests/integration/rpc-check
xs_up
srv=$(guest lim-srv)
c1=$(guest lim-cli1)
c2=$(guest lim-cli2)
cat >"$TMP/vchand.conf" <<'CONF'
max_calls = 3
max_service_calls = 5
CONF
broker_start --config "$TMP/vchand.conf"
"$XS" run --domid "$srv" -- env VBUS_URL=vchan:0 "$RPC" serve lim.v1.Svc s --delay 1500 \
        --ready "$TMP/ready" >"$TMP/srv.out" 2>&1 &
PIDS="$PIDS $!"
wait_file "$TMP/ready" || fail "server not active"

# Counts the lines of each status in a file of "STATUS REPLY" lines: "ok=N resource-exhausted=M".
tally() {
        printf 'ok=%s resource-exhausted=%s' "$(grep -c '^ok ' "$1")" \
                "$(grep -c '^resource-exhausted ' "$1")"
}

# One link, 5 calls at once, max_calls 3: three complete, two are refused at once.
as_dom "$c1" env VBUS_URL=vchan:0 "$RPC" call lim.v1.Svc/Slow x --count 5 --timeout 20000 \
        >"$TMP/one.out" 2>&1
[ "$(tally "$TMP/one.out")" = "ok=3 resource-exhausted=2" ] ||
        fail "max_calls: $(tally "$TMP/one.out"): $(sort "$TMP/one.out" | uniq -c)"
grep -q "max_calls" "$TMP/one.out" || fail "the refusal does not name max_calls: $(cat "$TMP/one.out")"
ok "max_calls 3, 5 calls on one link: $(tally "$TMP/one.out") ($(grep -m1 '^resource' "$TMP/one.out"))"

# Two links, 3 calls each, max_service_calls 5: five complete, one is refused.
as_dom "$c1" env VBUS_URL=vchan:0 "$RPC" call lim.v1.Svc/Slow x --count 3 --timeout 20000 \
        >"$TMP/a.out" 2>&1 &
p1=$!
as_dom "$c2" env VBUS_URL=vchan:0 "$RPC" call lim.v1.Svc/Slow x --count 3 --timeout 20000 \
        >"$TMP/b.out" 2>&1 &
p2=$!
wait "$p1"
wait "$p2"
cat "$TMP/a.out" "$TMP/b.out" >"$TMP/two.out"
[ "$(tally "$TMP/two.out")" = "ok=5 resource-exhausted=1" ] ||
        fail "max_service_calls: $(tally "$TMP/two.out"): $(sort "$TMP/two.out" | uniq -c)"
grep -q "max_service_calls" "$TMP/two.out" || fail "the refusal does not name max_service_calls"
ok "max_service_calls 5, 3 calls on each of two links: $(tally "$TMP/two.out")"

# The calls are done: the limits have room again, and no link was dropped.
as_dom "$c1" env VBUS_URL=vchan:0 "$RPC" call lim.v1.Svc/Echo hi >"$TMP/o" 2>&1 ||
        fail "after the limits: $(cat "$TMP/o")"
ok "after the limits, a call goes through: $(cat "$TMP/o")"
# Each caller disconnects when it exits ("closed"); any other reason is the broker dropping it.
grep "disconnected\|violation" "$TMP/broker.log" | grep -v "disconnected: closed$" >"$TMP/dropped"
[ -s "$TMP/dropped" ] && fail "a link was dropped or a violation logged: $(cat "$TMP/dropped")"
ok "no link dropped by the broker, no violation logged"

# The broker's count: every call opened (5 + 6 + 1), every one without an OK outcome (2 + 1).
kill -TERM "$BROKER_PID"
wait "$BROKER_PID" || fail "broker exit status $?"
BROKER_PID=""
grep -q "12 calls (3 failed)" "$TMP/broker.log" ||
        fail "the broker's call count: $(grep 'stopped:' "$TMP/broker.log")"
ok "broker: $(grep -o '[0-9]* calls ([0-9]* failed)' "$TMP/broker.log")"
