#!/usr/bin/env bash
# Slow consumers. DROP: a subscriber that falls behind loses messages, and the number it is
# told it lost is exact (received + reported dropped == published, and equals the broker's own
# count). BLOCK: a slow subscriber loses nothing; its publisher is held back, while an unrelated
# publisher/subscriber pair on the same broker runs freely.
. "$(dirname "$0")/lib.sh" "$1"
xs_up
g1=$(guest pub)
g2=$(guest slow)
g3=$(guest other)
g4=$(guest other-sub)
broker_start

# --- DROP -------------------------------------------------------------------------------------
# The count of what was dropped travels in the next delivery, so after the flood one more
# message (a marker) must reach the subscriber: it is sent once the subscriber has drained its
# queue (it received nothing new for a second), and again if it was dropped all the same (the
# subscriber then counts it as dropped too: --markers).
N=5000
bg as_dom "$g2" env VBUS_URL=vchan:0 "$CHECK" sub 'flood.drop' $N --markers --slow 1000 \
        --timeout 120000 --ready "$TMP/r1" --progress "$TMP/p1" >"$TMP/drop.out" 2>&1
p_sub=$!
wait_file "$TMP/r1" || fail "drop subscriber not active"
as_dom "$g1" env VBUS_URL=vchan:0 "$CHECK" pub flood.drop $N 1024 >/dev/null || fail "flood"
before=none
for i in $(seq 1 120); do
        now=$(cat "$TMP/p1" 2>/dev/null)
        [ "$now" = "$before" ] && break
        before=$now
        sleep 1
done
[ "$now" = "$before" ] || fail "the subscriber was still receiving 2 minutes after the flood"
for k in $(seq 1 10); do
        as_dom "$g1" env VBUS_URL=vchan:0 "$CHECK" pub flood.drop 1 1024 --start $((N + k)) \
                >/dev/null || fail "marker $k"
        for _ in $(seq 1 100); do
                kill -0 "$p_sub" 2>/dev/null || break 2
                sleep 0.1
        done
done
wait "$p_sub" || fail "drop subscriber: $(cat "$TMP/drop.out")"
read -r _ received _ dropped _ _ _ _ _ _ _ marker <"$TMP/drop.out"
[ "$dropped" -gt 0 ] || fail "the slow subscriber dropped nothing: the test did not exercise DROP"
[ $((received + dropped)) -eq "$marker" ] || fail "received $received + dropped $dropped != $marker"
ok "DROP: received $received, told of $dropped dropped, sum exact ($marker: $N, then $((marker - N)) marker(s))"

# --- BLOCK ------------------------------------------------------------------------------------
M=3000
bg as_dom "$g2" env VBUS_URL=vchan:0 "$CHECK" sub 'flood.block' $M --block --slow 1000 \
        --timeout 120000 --ready "$TMP/r2" >"$TMP/block.out" 2>&1
p_block=$!
bg as_dom "$g4" env VBUS_URL=vchan:0 "$CHECK" sub 'free.>' 2000 --block --timeout 60000 \
        --ready "$TMP/r3" >"$TMP/free.out" 2>&1
p_free=$!
wait_file "$TMP/r2" || fail "block subscriber not active"
wait_file "$TMP/r3" || fail "free subscriber not active"
bg as_dom "$g1" env VBUS_URL=vchan:0 "$CHECK" pub flood.block $M 1024
p_pub=$!
as_dom "$g3" env VBUS_URL=vchan:0 "$CHECK" pub free.run 2000 1024 >/dev/null || fail "free pub"
wait "$p_free" || fail "unrelated subscriber: $(cat "$TMP/free.out")"
kill -0 "$p_pub" 2>/dev/null || fail "the blocked publisher finished before the unrelated traffic: not held back"
ok "BLOCK: an unrelated pair moved 2000 messages while the slow subscriber held its publisher back"
wait "$p_pub" || fail "blocked publisher failed"
wait "$p_block" || fail "block subscriber: $(cat "$TMP/block.out")"
grep -q "received $M dropped 0 corrupt 0 reordered 0" "$TMP/block.out" || fail "$(cat "$TMP/block.out")"
ok "BLOCK: $M of $M delivered in order, none dropped"

kill -TERM "$BROKER_PID"
wait "$BROKER_PID"
BROKER_PID=""
grep -q "stopped: .* $dropped dropped" "$TMP/broker.log" ||
        fail "the broker's drop count differs: $(tail -n 1 "$TMP/broker.log")"
ok "the broker counted the same $dropped drops"
