#!/usr/bin/env bash
# A fan-out to many BLOCK subscribers is honest and stays lossless. The broker bounds what a
# BLOCK publisher makes it hold by the count of its *messages* (publish_window / 64), and a
# message held by six queues is one message, not six: with a 64 KiB window and 128-byte messages
# the publisher can have 512 messages in flight, 3072 queue entries with six slow subscribers,
# over the bound of 1024 if entries were counted (once each subscriber's own 1 MiB window, 8192
# messages, is full: hence 12000 messages). Every subscriber must get all messages in
# order with nothing dropped, and the publisher must not be reset.
. "$(dirname "$0")/lib.sh" "$1"
xs_up
cat >"$TMP/vchand.conf" <<CONF
publish_window = 65536
max_message = 65536
CONF
broker_start --config "$TMP/vchand.conf"
N=12000
SUBS=6
pids=""
for i in $(seq 1 $SUBS); do
        bg env VBUS_URL="unix:$SOCK" "$CHECK" sub fan.block $N --block --slow 200 --timeout 120000 \
                --ready "$TMP/r$i" >"$TMP/sub$i.out" 2>&1
        pids="$pids $!"
done
for i in $(seq 1 $SUBS); do
        wait_file "$TMP/r$i" || fail "subscriber $i not active"
done
env VBUS_URL="unix:$SOCK" "$CHECK" pub fan.block $N 128 >"$TMP/pub.out" 2>&1 ||
        fail "publisher: $(cat "$TMP/pub.out")"
i=0
for p in $pids; do
        i=$((i + 1))
        wait "$p" || fail "subscriber $i: $(cat "$TMP/sub$i.out")"
done
! grep -q "hold too many" "$TMP/broker.log" || fail "the publisher was refused: $(grep "hold too many" "$TMP/broker.log")"
ok "$SUBS slow BLOCK subscribers each got all $N messages of 128 bytes, in order, none dropped"
