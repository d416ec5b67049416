#!/usr/bin/env bash
# The broker takes the events of every guest's vchan from one shared event-channel handle
# (docs/vchan.md): a guest that notifies without pause (tests/interop/hostile-server
# notify-flood: 20 s of notifies, never a byte written) must not starve the others. It is served
# (there is nothing to read) at most LIMIT_EVENTS_PER_WAKEUP events per turn in the order they
# came, and dropped when its HELLO does not come (hello_timeout_ms); the honest guests, whose
# events come on the same handle meanwhile, lose nothing and every call is answered.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker "hello_timeout_ms = 15000"
HONEST_RING=65536 honest_start
g=$(attacker flood)
bg as_dom "$g" "$B/tests/interop/hostile-server" notify-flood 0 \
        "/local/domain/$g/data/vchan/0/vbus" >"$TMP/flood.out" 2>&1
wait_grep "peer dom$g(flood): connected" "$TMP/broker.log" || fail "the flooding guest never connected"
honest_finish
wait_grep "notified [0-9]* times" "$TMP/flood.out" || fail "the flood did not run: $(cat "$TMP/flood.out")"
ok "$(cat "$TMP/flood.out") while the honest guests ran"
wait_grep "peer dom$g(flood): disconnected: no HELLO in time" "$TMP/broker.log" ||
        fail "the flooding guest was not dropped for its missing HELLO"
ok "the flooding guest alone was dropped (no HELLO)"
rss_check
only_dropped "dom$g(flood)"
