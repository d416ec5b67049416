#!/usr/bin/env bash
# Finding 1: a guest calls a server that does not read its link (a second attacker) and sends
# empty messages on the call. The broker coalesces what it relays into one buffer per direction
# and charges each message a fixed overhead to the caller: the call is refused
# (RESOURCE_EXHAUSTED) once its relay is full, the broker's memory stays bounded, and the honest
# guests beside it lose nothing.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker
honest_start
g2=$(attacker stuck)
bg as_dom "$g2" env "$HOSTILE" vchan:0 stuck-serve x.v1.Stuck >"$TMP/stuck.out" 2>&1
wait_grep serving "$TMP/stuck.out" || fail "stuck server: $(cat "$TMP/stuck.out")"
g=$(attacker evil)
as_dom "$g" env "$HOSTILE" vchan:0 call-empty x.v1.Stuck/M --seconds 10 --frames 100000000 \
        >"$TMP/evil.out" 2>&1 || fail "attacker: $(cat "$TMP/evil.out")"
cat "$TMP/evil.out"
rss_report
tail -n 1 "$TMP/evil.out" | grep -q "^refused resource-exhausted on call" ||
        fail "the attacker was not refused: $(tail -n 1 "$TMP/evil.out")"
ok "the attacker was refused: $(tail -n 1 "$TMP/evil.out")"
honest_finish
rss_check
# The stuck server is an attacker too: it may be dropped for not reading its link.
sed -i "/dom$g2(stuck)/d" "$TMP/broker.log"
only_dropped "dom$g(evil)"
