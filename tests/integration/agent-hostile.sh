#!/usr/bin/env bash
# A hostile guest agent (played by rawagent over the broker's socket: sessions work the same on
# any link) can only hurt its own link: sessions over max_sessions are refused with
# RESOURCE_EXHAUSTED and allocate nothing; a frame for a session that never said HELLO drops the
# link; a session that breaks a rule is ended alone (its link and sibling sessions stay); a flood
# of sessions started and ended leaves the link up. Claims are passed on apart from the trusted
# identity, and are refused in a link's own HELLO. A bystander's subscription, opened before all
# this, receives exactly its messages afterwards.
. "$(dirname "$0")/lib.sh" "$1"
RAW=$B/tests/integration/rawagent
xs_up
printf 'max_sessions = 4\n' >"$TMP/vchand.conf"
broker_start --config "$TMP/vchand.conf"

bg env VBUS_URL="unix:$SOCK" "$CHECK" sub 'bystander.>' 20 --timeout 60000 --ready "$TMP/r1" \
        >"$TMP/watch.out" 2>&1
p_watch=$!
wait_file "$TMP/r1" || fail "bystander not subscribed"

run() {
        local name=$1
        shift
        "$RAW" "$SOCK" "$@" >"$TMP/raw-$name.out" 2>&1 || fail "$name: $(cat "$TMP/raw-$name.out")"
        ok "$name: $(grep -c '^ok' "$TMP/raw-$name.out") checks passed"
}
run cap cap 4
grep -q "too many sessions on this link (max_sessions 4)" "$TMP/raw-cap.out" ||
        fail "the refusal does not name the limit: $(cat "$TMP/raw-cap.out")"
run unknown unknown
run fault fault
run flood flood 5000
run claims claims
run claims0 claims0

env VBUS_URL="unix:$SOCK" "$CHECK" pub bystander.x 20 64 >/dev/null || fail "bystander publish"
wait "$p_watch" || fail "bystander: $(cat "$TMP/watch.out")"
ok "the bystander received exactly its 20 messages"
grep -q "session 1: ended: protocol violation" "$TMP/broker.log" || fail "the session's violation is not logged"
ok "the broker logged the session's violation with its session"
kill -0 "$BROKER_PID" || fail "the broker died"
ok "the broker is alive"
