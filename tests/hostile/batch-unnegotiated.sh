#!/usr/bin/env bash
# Batches (protocol.md 5.5) only once negotiated: a guest that sends a batch frame without both
# HELLOs setting BATCH, or with BATCH but without MESSAGE_CHARGE (a batch of empty records would
# then cost its peer nothing per message), breaks the protocol, and is the one disconnected; the
# broker's memory stays bounded and the honest guests beside it lose nothing.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
HB=$B/tests/hostile/hostile-batch
xs_up
hostile_broker
honest_start
for attack in unnegotiated no-charge; do
        g=$(attacker "evil${attack:0:2}")
        as_dom "$g" "$HB" vchan:0 "$attack" --seconds 10 >"$TMP/$attack.out" 2>&1 ||
                fail "attacker: $(cat "$TMP/$attack.out")"
        cat "$TMP/$attack.out"
        grep -qx "batch not negotiated" "$TMP/$attack.out" ||
                fail "$attack: batches were negotiated: $(cat "$TMP/$attack.out")"
        tail -n 1 "$TMP/$attack.out" | grep -qx "disconnected" ||
                fail "$attack: the attacker was not disconnected: $(tail -n 1 "$TMP/$attack.out")"
        ok "$attack: a batch frame without the feature in force disconnected the attacker"
done
rss_report
honest_finish
rss_check
only_dropped "(evil"
