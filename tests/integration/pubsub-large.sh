#!/usr/bin/env bash
# Messages larger than the ring: 1 MiB messages cross from a guest with 64 KiB rings to a guest
# with the smallest rings allowed (8 KiB: 128x smaller than the message) and to a local client,
# in fragments, byte-exact.
. "$(dirname "$0")/lib.sh" "$1"
xs_up
g1=$(guest big-pub)
g2=$(guest big-sub)
broker_start

bg as_dom "$g2" env VBUS_URL=vchan:0 VBUS_RING_SIZE=8192 "$CHECK" sub 'big.>' 8 --timeout 60000 --ready "$TMP/r1" \
        >"$TMP/guest.out" 2>&1
p1=$!
bg env VBUS_URL=unix:$SOCK "$CHECK" sub 'big.>' 8 --block --timeout 60000 --ready "$TMP/r2" \
        >"$TMP/local.out" 2>&1
p2=$!
wait_file "$TMP/r1" && wait_file "$TMP/r2" || fail "subscribers not active"
as_dom "$g1" env VBUS_URL=vchan:0 VBUS_RING_SIZE=65536 "$CHECK" pub big.blob 8 1048576 >/dev/null || fail "publish 1 MiB"
wait "$p1" || fail "guest subscriber: $(cat "$TMP/guest.out")"
wait "$p2" || fail "local subscriber: $(cat "$TMP/local.out")"
ok "8 messages of 1 MiB from 64 KiB rings to 8 KiB rings: byte-exact at a guest and a local subscriber"

# max_message bounds the reassembled message, not each fragment: with max_message 300000 (above
# one frame, 131072 bytes), a message of 300000 bytes in three fragments goes through and one of
# 300001 bytes is refused (its publish stream reset), never routed. libvbus itself refuses
# anything over 1 MiB, so the broker's bound is only visible below that.
kill -TERM "$BROKER_PID"
wait "$BROKER_PID" || fail "broker exit status $?"
BROKER_PID=""
echo "max_message = 300000" >"$TMP/vchand.conf"
broker_start --config "$TMP/vchand.conf"
export VBUS_URL=unix:$SOCK
bg "$CHECK" sub 'limit.>' 2 --timeout 30000 --ready "$TMP/r3" >"$TMP/limit.out" 2>&1
p3=$!
wait_file "$TMP/r3" || fail "max_message subscriber not active"
"$CHECK" pub limit.x 1 300000 >/dev/null || fail "publish 300000 bytes"
# The publisher has handed its message over and exited before the broker's RESET can reach it.
"$CHECK" pub limit.x 1 300001 --start 2 >/dev/null 2>&1
"$CHECK" pub limit.x 1 300000 --start 3 >/dev/null || fail "publish 300000 bytes after"
wait "$p3" || fail "max_message subscriber: $(cat "$TMP/limit.out")"
kill -TERM "$BROKER_PID"
wait "$BROKER_PID" || fail "broker exit status $?"
BROKER_PID=""
grep -q "exceeds max_message (300000 bytes)" "$TMP/broker.log" ||
        fail "the broker did not refuse the message of 300001 bytes"
grep -q "stopped: 2 published, 2 delivered, 0 dropped" "$TMP/broker.log" ||
        fail "the message over max_message was routed: $(grep stopped: "$TMP/broker.log" | tail -n 1)"
ok "max_message 300000: 300000 bytes in three fragments routed, 300001 refused and never routed"

# ... and a message that fits one frame is held to it too: with max_message 1000, a message of
# 1000 bytes is routed and one of 2000 bytes (one frame of the 131072 a frame may carry; it goes in a
# batch frame) is not, nor one of 4000 (over the batching size: a frame of its own).
echo "max_message = 1000" >"$TMP/vchand.conf"
broker_start --config "$TMP/vchand.conf"
bg "$CHECK" sub 'small.>' 2 --timeout 30000 --ready "$TMP/r4" >"$TMP/small.out" 2>&1
p4=$!
wait_file "$TMP/r4" || fail "small max_message subscriber not active"
"$CHECK" pub small.x 1 1000 >/dev/null || fail "publish 1000 bytes"
"$CHECK" pub small.x 1 2000 --start 2 >/dev/null 2>&1
"$CHECK" pub small.x 1 4000 --start 2 >/dev/null 2>&1
"$CHECK" pub small.x 1 1000 --start 3 >/dev/null || fail "publish 1000 bytes after"
wait "$p4" || fail "small max_message subscriber: $(cat "$TMP/small.out")"
kill -TERM "$BROKER_PID"
wait "$BROKER_PID" || fail "broker exit status $?"
BROKER_PID=""
[ "$(grep -c "exceeds max_message (1000 bytes)" "$TMP/broker.log")" = 2 ] ||
        fail "the broker did not refuse both one-frame messages (2000 and 4000 bytes)"
grep "stopped:" "$TMP/broker.log" | tail -n 1 | grep -q "2 published, 2 delivered, 0 dropped" ||
        fail "the one-frame message over max_message was routed: $(grep stopped: "$TMP/broker.log" | tail -n 1)"
ok "max_message 1000: one-frame messages of 2000 (batched) and 4000 bytes refused and never routed"
