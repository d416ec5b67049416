#!/usr/bin/env bash
# Issue 11: tiny messages to a slow BLOCK subscriber slow their publisher, never reset it.
# A publisher of tiny messages and a slow lossless (BLOCK) subscriber. Every message
# costs its length plus the message charge of window (protocol.md 5.4), so the publisher's window
# fills before the broker's bound on the messages a publisher may have held by BLOCK queues
# (publish_window / 64): the publisher is slowed, never reset, and the subscriber gets every
# message. Before the charge, 16-byte messages held 65536 to a window and the publisher was reset
# RESOURCE_EXHAUSTED once the subscriber fell 16384 messages behind.
. "$(dirname "$0")/lib.sh" "$1"
xs_up
g1=$(guest pub)
g2=$(guest slow)
broker_start
N=40000
bg as_dom "$g2" env VBUS_URL=vchan:0 "$CHECK" sub tiny.block $N --block --slow 100 \
        --timeout 200000 --ready "$TMP/ready" >"$TMP/sub.out" 2>&1
p_sub=$!
wait_file "$TMP/ready" || fail "subscriber not active"
as_dom "$g1" env VBUS_URL=vchan:0 "$CHECK" pub tiny.block $N 16 >"$TMP/pub.out" 2>&1 ||
        fail "the publisher of tiny messages failed: $(tail -n 3 "$TMP/pub.out")"
grep -q "hold too many\|BLOCK subscription .* over" "$TMP/broker.log" &&
        fail "the broker refused something: $(grep "too many\|over" "$TMP/broker.log" | head -n 3)"
ok "the publisher of $N 16-byte messages was slowed, not reset: the broker refused nothing"
wait "$p_sub" || fail "subscriber: $(tail -n 3 "$TMP/sub.out")"
grep -q "received $N dropped 0 corrupt 0 reordered 0" "$TMP/sub.out" ||
        fail "subscriber: $(tail -n 2 "$TMP/sub.out")"
ok "the slow BLOCK subscriber received all $N, none dropped"
