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
