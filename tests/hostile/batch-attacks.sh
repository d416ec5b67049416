#!/usr/bin/env bash
# Batches (protocol.md 5.5) attacked by guests that negotiated them, each beside the two honest
# pairs of hlib.sh:
#   empty-paced   batches of empty records (one byte each) within its window: each record costs
#                 the message charge, so its own BLOCK subscriber (which never reads) holds it
#                 to its credit / 65 messages; it is slowed, not dropped, and costs the broker
#                 a bounded amount
#   empty-flood   the same, ignoring its window: the bytes alone would fit, the charge does not
#   over-window   one batch one record over its window
#   malformed *   a record length non-canonical, past the end, of five bytes, truncated; no record
#   flag *        a batch with RETAIN, MORE or META
#   on-subscribe  a batch on its SUBSCRIBE stream
# Each attacker but the first is disconnected; nobody else is; the broker's RSS stays bounded;
# the honest subscriber receives every message and the honest calls all succeed.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
HB=$B/tests/hostile/hostile-batch
PUBLISH_WINDOW=1048576
xs_up
hostile_broker "publish_window = $PUBLISH_WINDOW"
honest_start

run_attack() { # NAME ATTACK [ARG]: runs it as a guest of its own, its output in $TMP/NAME.out
        local name=$1 g
        shift
        g=$(attacker "evil-$name")
        as_dom "$g" "$HB" vchan:0 "$@" --seconds 8 >"$TMP/$name.out" 2>&1 ||
                fail "attacker $name: $(cat "$TMP/$name.out")"
        cat "$TMP/$name.out"
        grep -qx "batch negotiated" "$TMP/$name.out" ||
                fail "$name: the broker did not negotiate BATCH: $(cat "$TMP/$name.out")"
}

run_attack paced empty-paced
read -r _ credit _ messages _ frames <<<"$(grep '^credit ' "$TMP/paced.out")"
[ "$(tail -n 1 "$TMP/paced.out")" = survived ] ||
        fail "empty-paced: an attacker within its window was refused: $(tail -n 1 "$TMP/paced.out")"
if [ "$messages" -le 0 ] || [ $((messages * 65)) -gt "$credit" ]; then
        fail "empty-paced: $messages empty messages on $credit bytes of credit: not charged 65 each"
fi
# Nothing it published was delivered (its subscriber grants no credit), so no credit came back:
# the publish window (plus one message charge of the broker's grant) bounds it.
[ "$credit" -le $((PUBLISH_WINDOW + 64)) ] ||
        fail "empty-paced: granted $credit bytes while nothing it sent was delivered"
ok "empty-paced: $messages empty messages in $frames batches on $credit bytes of credit, then held"

for a in empty-flood over-window "malformed non-canonical" "malformed past-end" \
        "malformed five-byte" "malformed truncated" "malformed empty" "flag retain" "flag more" \
        "flag meta" on-subscribe; do
        name=${a// /-}
        # shellcheck disable=SC2086 # the attack and its argument
        run_attack "$name" $a
        [ "$(tail -n 1 "$TMP/$name.out")" = disconnected ] ||
                fail "$name: the attacker was not disconnected: $(tail -n 1 "$TMP/$name.out")"
        # For breaking the protocol with its batch, not for anything else.
        wait_grep "(evil-$name): disconnected: protocol violation" "$TMP/broker.log" ||
                fail "$name: not disconnected as a protocol violation: $(grep "evil-$name" "$TMP/broker.log")"
        ok "$name: the attacker was disconnected ($(grep -o "(evil-$name): disconnected: .*" "$TMP/broker.log"))"
done
rss_report
honest_finish
rss_check
only_dropped "(evil-"
