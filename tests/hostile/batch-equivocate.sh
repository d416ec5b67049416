#!/usr/bin/env bash
# A guest publishes batch frames and rewrites each in its ring, in place, until the broker has
# read it (tests/hostile/equivocate.sh is the same for single messages). The broker counts a
# batch on the ring, then copies it and counts it again before it routes anything, so:
#  1. "bytes" (the records' bytes rewritten, their lengths kept): four subscribers, two that take
#     batches and two that do not, get the very same bytes under every sequence number;
#  2. "lengths" (the first record's length rewritten too): a frame that no longer parses as it
#     was counted disconnects the attacker as a protocol violation; one read while rewritten,
#     whose bytes happen to parse, is taken as what it then holds (it may be more messages than
#     written: the broker charged its window for what it counted). Either way its two
#     subscribers, one taking batches and one not, got the same bytes under every sequence
#     number.
# The honest guests beside lose nothing, and the broker's memory stays bounded.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
HB=$B/tests/hostile/hostile-batch
xs_up
hostile_broker
honest_start

collectors() { # TOPIC COUNT SECONDS NAME...: one collector per NAME; "nb*" names take no batches
        local topic=$1 count=$2 secs=$3 name
        shift 3
        for name in "$@"; do
                case $name in
                nb*) bg env HOSTILE_NO_BATCH=1 "$HB" "unix:$SOCK" collect "$topic" "$count" \
                        --seconds "$secs" >"$TMP/$name.out" 2>&1 ;;
                *) bg "$HB" "unix:$SOCK" collect "$topic" "$count" --seconds "$secs" \
                        >"$TMP/$name.out" 2>&1 ;;
                esac
                eval "p_$name=\$!"
                wait_grep "^ready" "$TMP/$name.out" || fail "collector $name: $(cat "$TMP/$name.out")"
        done
}
lines() { grep -E '^[0-9]+ [0-9a-f]{16}' "$TMP/$1.out"; }

# 1. bytes
N=300
M=$((N * 8))
collectors x.beq "$M" 100 b1 b2 nb1 nb2
g=$(attacker evil-bytes)
as_dom "$g" "$HB" vchan:0 equivocate x.beq "$N" bytes --seconds 80 >"$TMP/evil-bytes.out" 2>&1 ||
        fail "attacker: $(cat "$TMP/evil-bytes.out")"
tail -n 2 "$TMP/evil-bytes.out"
# shellcheck disable=SC2154 # p_b1...: set by eval in collectors()
for s in b1 b2 nb1 nb2; do
        eval "wait \$p_$s" || fail "collector $s: $(tail -n 2 "$TMP/$s.out")"
        grep -qx "collected $M" "$TMP/$s.out" || fail "collector $s: $(tail -n 2 "$TMP/$s.out")"
done
rewritten=$(lines b1 | grep -vc "as-written")
for s in b2 nb1 nb2; do
        cmp -s <(lines b1) <(lines "$s") ||
                fail "collectors b1 and $s got different bytes: $(diff <(lines b1) <(lines "$s") | head -n 4)"
done
ok "bytes: four subscribers (two taking batches) got the same bytes under each of $M sequence numbers ($rewritten delivered rewritten)"

# 2. lengths
collectors x.blen "$M" 15 b3 nb3
g=$(attacker evil-lengths)
as_dom "$g" "$HB" vchan:0 equivocate x.blen "$N" lengths --seconds 12 >"$TMP/evil-lengths.out" 2>&1 ||
        fail "attacker: $(cat "$TMP/evil-lengths.out")"
outcome=$(tail -n 1 "$TMP/evil-lengths.out")
case $outcome in
disconnected)
        wait_grep "(evil-lengths): disconnected: protocol violation" "$TMP/broker.log" ||
                fail "lengths: disconnected, but not as a violation: $(grep evil-lengths "$TMP/broker.log")"
        ;;
survived) ;;
*) fail "lengths: $outcome" ;;
esac
# shellcheck disable=SC2154
for s in b3 nb3; do
        eval "wait \$p_$s" # ends at its count, or its time if the attacker was stopped first
done
n3=$(lines b3 | wc -l)
nn3=$(lines nb3 | wc -l)
[ "$n3" = "$nn3" ] || fail "lengths: one subscriber got $n3 messages, the other $nn3"
cmp -s <(lines b3) <(lines nb3) || fail "lengths: the two subscribers got different bytes"
ok "lengths: the attacker $outcome after $(grep -o 'frames [0-9]*' "$TMP/evil-lengths.out") of $N; both subscribers got the same $n3 messages"
rss_report
honest_finish
rss_check
only_dropped "(evil-"
