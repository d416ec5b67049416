#!/usr/bin/env bash
# Issue 11: a guest that ignores the message charge (protocol.md 5.4) is the one disconnected.
# A guest that negotiated MESSAGE_CHARGE owes VBUS_MESSAGE_CHARGE bytes of window for every message, empty ones too. Two attackers that
# ignore it: one publishes empty messages to its own BLOCK subscription (which grants no credit)
# past its window, one sends empty fragments (MORE, no byte), which the charge forbids. Each is
# the one disconnected for breaking the window rule; the broker's memory stays bounded and the
# honest guests beside them lose nothing. (Without the feature the first attack is refused by the
# BLOCK entry cap instead: block-empty.sh.)
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker
honest_start
for attack in block-empty empty-fragments; do
        g=$(attacker "evil${attack:0:1}")
        as_dom "$g" env HOSTILE_CHARGE=1 "$HOSTILE" vchan:0 "$attack" --seconds 10 \
                --frames 100000000 >"$TMP/$attack.out" 2>&1 || fail "attacker: $(cat "$TMP/$attack.out")"
        cat "$TMP/$attack.out"
        tail -n 1 "$TMP/$attack.out" | grep -qx "disconnected" ||
                fail "$attack: the attacker was not disconnected: $(tail -n 1 "$TMP/$attack.out")"
        ok "$attack: the attacker was disconnected after $(head -n 1 "$TMP/$attack.out")"
done
rss_report
honest_finish
rss_check
only_dropped "(evil"
