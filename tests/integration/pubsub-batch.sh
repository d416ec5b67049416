#!/usr/bin/env bash
# Batches (protocol.md 5.5) relax no guarantee. One guest publishes many small messages as fast
# as the bus takes them (libvbus combines them into batch frames while the broker is busy, and
# the broker passes batches on) to one BLOCK subscriber and three DROP subscribers of different
# speeds, each a guest of its own. batch-check checks every delivery: the subscription's
# sequence numbers are consecutive across batches, message numbers grow, and every message
# numbered below the one delivered was received or reported dropped by then.
# BLOCK: all N delivered, none dropped. DROP: received + dropped == published exactly (markers
# carry the count of the last messages lost); the slowest one must have dropped, or the test
# did not exercise DROP.
. "$(dirname "$0")/lib.sh" "$1"
BCHECK=$B/tests/integration/batch-check
N=${N:-30000}
SIZE=24
xs_up
g_pub=$(guest bpub)
g_block=$(guest bblock)
broker_start

bg as_dom "$g_block" env VBUS_URL=vchan:0 "$BCHECK" sub batch.t "$N" $SIZE --block --timeout 170000 \
        --ready "$TMP/ready.block" --hold "$TMP/release" >"$TMP/block.out" 2>&1
p_block=$!
p_drops=""
slows="0 200 1000"
for slow in $slows; do
        g=$(guest "bdrop$slow")
        bg as_dom "$g" env VBUS_URL=vchan:0 "$BCHECK" sub batch.t "$N" $SIZE --markers --slow "$slow" \
                --timeout 170000 --ready "$TMP/ready.$slow" >"$TMP/drop$slow.out" 2>&1
        p_drops="$p_drops $!"
done
for f in block $slows; do
        wait_file "$TMP/ready.$f" || fail "subscriber $f not active"
done

bg as_dom "$g_pub" env VBUS_URL=vchan:0 "$BCHECK" pub batch.t "$N" $SIZE --hold "$TMP/release" \
        >"$TMP/pub.out" 2>&1
p_pub=$!
for _ in $(seq 1 1700); do
        grep -q "^received" "$TMP/block.out" && break
        kill -0 "$p_block" 2>/dev/null || break
        sleep 0.1
done
grep -qx "received $N dropped 0 sequence-errors 0 loss-errors 0 corrupt 0" "$TMP/block.out" ||
        fail "BLOCK subscriber: $(cat "$TMP/block.out")"
ok "BLOCK: $N of $N delivered, sequence numbers consecutive, none dropped"
for _ in $(seq 1 600); do
        grep -q "^published $N$" "$TMP/pub.out" && break
        kill -0 "$p_pub" 2>/dev/null || break
        sleep 0.1
done
grep -q "^published $N$" "$TMP/pub.out" || fail "publisher: $(cat "$TMP/pub.out")"
# The broker's own counters show batches were used, both ways: the publisher's link carried its
# N messages in fewer frames, and the BLOCK subscriber's link its N deliveries in fewer frames
# (both hold their links until then).
VBUS_URL=unix:$SOCK "$VBUSCTL" peers --json >"$TMP/peers.json" 2>"$TMP/peers.log" || fail "vbusctl peers: $(cat "$TMP/peers.log")"
python3 - "$TMP/peers.json" "$N" <<'PY' >"$TMP/frames.out" || fail "no batches: $(cat "$TMP/frames.out")"
import json, sys
peers = {p['domain_name']: p for p in json.load(open(sys.argv[1]))['peers']}
n = int(sys.argv[2])
pub, sub = peers['bpub'], peers['bblock']
print(f"publisher: {pub['published']} messages in {pub['frames_in']} frames; "
      f"BLOCK subscriber: {n} messages in {sub['frames_out']} frames")
assert pub['published'] == n, pub
assert pub['frames_in'] < n and sub['frames_out'] < n
PY
ok "batches used: $(cat "$TMP/frames.out")"
touch "$TMP/release"
wait "$p_pub" || fail "publisher: $(cat "$TMP/pub.out")"
wait "$p_block" || fail "BLOCK subscriber: $(cat "$TMP/block.out")"

# The count of what was dropped travels in the next delivery: markers (numbered above N, one
# at a time) follow until every DROP subscriber has received one.
k=0
while [ $k -lt 400 ]; do
        alive=0
        for p in $p_drops; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 1 ] || break
        k=$((k + 1))
        as_dom "$g_pub" env VBUS_URL=vchan:0 "$BCHECK" pub batch.t 1 $SIZE --start $((N + k)) \
                >/dev/null 2>&1 || fail "marker $k"
        sleep 0.2
done
# shellcheck disable=SC2086 # the list of speeds, one argument each
set -- $slows
for p in $p_drops; do
        wait "$p" || fail "DROP subscriber (slow $1): $(cat "$TMP/drop$1.out")"
        read -r _ received _ dropped _ seqerr _ losserr _ corrupt _ marker <"$TMP/drop$1.out"
        if [ "$seqerr" != 0 ] || [ "$losserr" != 0 ] || [ "$corrupt" != 0 ]; then
                fail "DROP subscriber (slow $1): $(cat "$TMP/drop$1.out")"
        fi
        if [ $((received + dropped)) -ne "$marker" ] || [ "$marker" -le "$N" ]; then
                fail "DROP subscriber (slow $1): received $received + dropped $dropped != $marker"
        fi
        ok "DROP (slow $1 us): received $received, told of $dropped dropped, sum exactly $marker"
        last_dropped=$dropped
        shift
done
[ "$last_dropped" -gt 0 ] || fail "the slowest DROP subscriber dropped nothing: DROP not exercised"
