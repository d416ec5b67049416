#!/usr/bin/env bash
# The DROP queue, exactly: a subscriber that grants no credit (rawsub, a hand-written peer) gets
# exactly the first N messages its queue may hold and is told of exactly the rest as dropped, in
# the Meta of its next delivery. N is Open.queue_limit, the broker's queue_messages when the
# subscriber asks for none, or what fits queue_bytes. Not "received + dropped == published",
# which holds whatever the limit is.
. "$(dirname "$0")/lib.sh" "$1"
RAWSUB=$B/tests/integration/rawsub
xs_up
cat >"$TMP/vchand.conf" <<CONF
queue_messages = 7
queue_bytes = 1024
CONF
broker_start --config "$TMP/vchand.conf"

# rawsub SOCKET LIMIT COUNT SIZE KEPT: checks its own deliveries (see rawsub.c).
queue() {
        local what=$1
        shift
        timeout 60 "$RAWSUB" "$SOCK" "$@" >"$TMP/$what.out" 2>&1 || fail "$what: $(cat "$TMP/$what.out")"
        ok "$what: $(tail -n 1 "$TMP/$what.out")"
}
queue "queue_limit 5" 5 12 16 5
queue "queue_limit 1" 1 3 16 1
queue "queue_limit 4, exactly 4 published" 4 4 16 4
queue "queue_limit 0: the broker's queue_messages (7)" 0 10 16 7
# Each queued message is charged its size plus LIMIT_ITEM_OVERHEAD (64 bytes): 8 messages of 64
# bytes are exactly queue_bytes (1024): the 8th still fits, the 9th does not.
queue "queue_bytes 1024, messages of 64 bytes (+64 charged each)" 100 10 64 8

kill -TERM "$BROKER_PID"
wait "$BROKER_PID" || fail "broker exit status $?"
BROKER_PID=""
# 7 + 2 + 0 + 3 + 2 drops in all, and the broker counted each once.
grep -q "stopped: .* 14 dropped" "$TMP/broker.log" ||
        fail "the broker's drop count: $(tail -n 1 "$TMP/broker.log")"
ok "the broker counted the same 14 drops"
