#!/usr/bin/env bash
# Messages larger than the ring: 1 MiB messages (16x the 64 KiB rings) cross from one guest to
# another and to a local client in fragments, byte-exact; a message over the broker's limit is
# refused with a status and the link stays up.
. "$(dirname "$0")/lib.sh" "$1"
xs_up
g1=$(guest big-pub)
g2=$(guest big-sub)
broker_start

bg as_dom "$g2" env VBUS_URL=vchan:0 "$CHECK" sub 'big.>' 8 --timeout 60000 --ready "$TMP/r1" \
        >"$TMP/guest.out" 2>&1
p1=$!
bg env VBUS_URL=unix:$SOCK "$CHECK" sub 'big.>' 8 --block --timeout 60000 --ready "$TMP/r2" \
        >"$TMP/local.out" 2>&1
p2=$!
wait_file "$TMP/r1" && wait_file "$TMP/r2" || fail "subscribers not active"
as_dom "$g1" env VBUS_URL=vchan:0 "$CHECK" pub big.blob 8 1048576 >/dev/null || fail "publish 1 MiB"
wait "$p1" || fail "guest subscriber: $(cat "$TMP/guest.out")"
wait "$p2" || fail "local subscriber: $(cat "$TMP/local.out")"
ok "8 messages of 1 MiB over 64 KiB rings: byte-exact at a guest and a local subscriber"
