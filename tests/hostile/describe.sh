#!/usr/bin/env bash
# A server's description (docs/reflection.md) is the server's own untrusted input: a guest
# serving x.v1.Evil sends bytes that are no protobuf, a method whose input names no type, more
# types than VBUS_DESCRIPTION_TYPES_MAX, a second description after a valid one, and one larger
# than the window the broker granted. Each is refused to it alone (its SERVE stream reset with
# INVALID_ARGUMENT and the reason; past the window is a protocol violation: only its link is
# dropped), the service it tried keeps no description, the broker's memory stays bounded, and
# the honest guests beside it lose nothing.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker
honest_start
g=$(attacker evil)
for how in garbage dangling types twice; do
        as_dom "$g" env "$HOSTILE" vchan:0 describe x.v1.Evil "$how" --seconds 20 \
                >"$TMP/evil-$how.out" 2>&1 || fail "attacker $how: $(cat "$TMP/evil-$how.out")"
        tail -n 1 "$TMP/evil-$how.out" | grep -q "^refused invalid-argument on serve" ||
                fail "$how was not refused: $(cat "$TMP/evil-$how.out")"
        ok "describe $how: $(tail -n 1 "$TMP/evil-$how.out")"
done
grep -q "description of x.v1.Evil refused: method M: input 'Nowhere' is no message" \
        "$TMP/broker.log" || fail "the broker did not log the dangling reference"
grep -q "description of x.v1.Evil refused: more than 512 types" "$TMP/broker.log" ||
        fail "the broker did not log the type count"
grep -q "description of x.v1.Evil refused: a server sends one description" "$TMP/broker.log" ||
        fail "the broker did not log the second description"
as_dom "$g" env "$HOSTILE" vchan:0 describe x.v1.Evil huge --seconds 20 >"$TMP/evil-huge.out" 2>&1 ||
        fail "attacker huge: $(cat "$TMP/evil-huge.out")"
tail -n 1 "$TMP/evil-huge.out" | grep -q "^disconnected" ||
        fail "a description past the window was not refused: $(cat "$TMP/evil-huge.out")"
ok "describe huge: $(tail -n 1 "$TMP/evil-huge.out")"
# Nothing of it stayed: the broker answers, and knows no server of x.v1.Evil.
out=$("$VBUSCTL" --url "unix:$SOCK" describe x.v1.Evil 2>&1)
[ "$out" = "vbusctl: describe x.v1.Evil: not-found: no server serves x.v1.Evil" ] ||
        fail "describe x.v1.Evil after the attacks: '$out'"
ok "describe x.v1.Evil afterwards: $out"
rss_report
honest_finish
rss_check
only_dropped "dom$g(evil)"
