#!/usr/bin/env bash
# Clients that lie or break the rules: a publisher that forges the Meta identity stamp, one that
# names a forged caller, garbage, an oversized frame, frames before HELLO; and a guest that tries
# to rename its domain in xenstore. Each liar is disconnected with ERROR{PROTOCOL_ERROR}; a
# subscriber watching the topics sees no forged message; a well-behaved guest is unaffected and
# stamped with its real identity.
. "$(dirname "$0")/lib.sh" "$1"
RAW=$B/tests/integration/rawpeer
xs_up
g1=$(guest honest)
broker_start

bg env VBUS_URL=unix:$SOCK "$CHECK" sub 'lies.>' 5 --sender "dom$g1(honest)" --timeout 30000 \
        --ready "$TMP/r1" >"$TMP/watch.out" 2>&1
p_watch=$!
wait_file "$TMP/r1" || fail "watcher not active"

for what in meta caller garbage oversize nohello; do
        "$RAW" "$SOCK" "$what" >"$TMP/raw-$what.out" 2>&1 || fail "$what: $(cat "$TMP/raw-$what.out")"
        ok "$what: disconnected with $(head -n 1 "$TMP/raw-$what.out")"
done

# A guest cannot rename itself: the domain's name is the toolstack's, not the guest's.
if as_dom "$g1" xenstore-write "/local/domain/$g1/name" Domain-0 2>/dev/null; then
        fail "a guest could rewrite its own domain name"
fi
ok "a guest cannot rewrite its domain name in xenstore"

# The honest guest's messages arrive stamped with its real identity, and nothing forged arrived.
as_dom "$g1" env VBUS_URL=vchan:0 "$CHECK" pub lies.about.me 5 64 >/dev/null || fail "honest publish"
wait "$p_watch" || fail "watcher: $(cat "$TMP/watch.out")"
ok "the subscriber saw exactly the 5 honest messages, stamped dom$g1(honest)"
grep -c "protocol violation" "$TMP/broker.log" | grep -qx 5 || fail "expected 5 violations logged"
ok "the broker logged each violation once"
