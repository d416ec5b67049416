#!/usr/bin/env bash
# What the broker relays on a call, frame by frame (tests/integration/rawcall.c, two hand-written
# links on the broker's socket): a unary call's caller gets exactly ACCEPT, DATA, END and its
# server no CREDIT after it ended; a caller still sending gets its ACCEPT before the server
# answers; a deadline, a REJECT and a server that answers and exits at once each reach the
# caller after its ACCEPT. The broker defers a unary caller's ACCEPT to the reply (vchand/rpc.c):
# these check that it always comes, first, and never hangs. deadline-tick: the broker enforces a
# deadline when it passes, not at its next housekeeping tick (timed against that tick, which
# hello_timeout_ms makes visible, not against a clock: see rawcall.c). pieces: five messages
# each way in one write (fragments, an empty one, more than the relay's first buffer) arrive
# whole and in order.
. "$(dirname "$0")/lib.sh" "$1"
RAW=$B/tests/integration/rawcall
xs_up
echo "hello_timeout_ms = 600" >"$TMP/vchand.conf"
broker_start --config "$TMP/vchand.conf"

for what in unary streaming deadline deadline-tick reject exits pieces; do
        timeout 60 "$RAW" "$SOCK" "$what" >"$TMP/raw-$what.out" 2>&1 ||
                fail "$what: $(tail -n 3 "$TMP/raw-$what.out")"
        ok "$what: caller got $(grep '^caller:' "$TMP/raw-$what.out" | grep -v 'stream 0$' |
                awk '{print $2}' | xargs)"
done
