#!/usr/bin/env bash
# Batches (protocol.md 5.5) through the guest agent (vchand --agent): one guest's processes are
# sessions of its one vchan, so the broker's batch frames for two sessions, and a publisher's
# batches, share one link. In guest alpha, through its agent: a publisher of many small messages,
# a BLOCK subscriber and a slow DROP subscriber; in guest beta, on a vchan of its own, another
# BLOCK subscriber. batch-check checks every delivery (sequence numbers consecutive, nothing lost
# unreported); BLOCK: all N, none dropped; DROP: received + dropped == published exactly
# (markers carry the last drops); the broker's counters show batches on the publisher's session.
. "$(dirname "$0")/lib.sh" "$1"
BCHECK=$B/tests/integration/batch-check
N=${N:-20000}
SIZE=24
xs_up
g1=$(guest alpha)
g2=$(guest beta)
broker_start
AGSOCK=$TMP/alpha.sock
"$XS" run --domid "$g1" -- "$VCHAND" --agent --socket "$AGSOCK" --upstream vchan:0 \
        >"$TMP/agent.log" 2>&1 &
PIDS="$PIDS $!"
wait_grep "connected to the broker" "$TMP/agent.log" || fail "the agent did not connect"
in_g1() {
        as_dom "$g1" env VBUS_URL="unix:$AGSOCK" "$@"
}

bg in_g1 "$BCHECK" sub batch.a "$N" $SIZE --block --timeout 170000 --ready "$TMP/ready.a" \
        --hold "$TMP/release" >"$TMP/block-a.out" 2>&1
p_block_a=$!
bg as_dom "$g2" env VBUS_URL=vchan:0 "$BCHECK" sub batch.a "$N" $SIZE --block --timeout 170000 \
        --ready "$TMP/ready.b" >"$TMP/block-b.out" 2>&1
p_block_b=$!
bg in_g1 "$BCHECK" sub batch.a "$N" $SIZE --markers --slow 1000 --timeout 170000 \
        --ready "$TMP/ready.d" >"$TMP/drop.out" 2>&1
p_drop=$!
for f in a b d; do
        wait_file "$TMP/ready.$f" || fail "subscriber $f not active"
done
bg in_g1 "$BCHECK" pub batch.a "$N" $SIZE --hold "$TMP/release" >"$TMP/pub.out" 2>&1
p_pub=$!

wait "$p_block_b" || fail "BLOCK subscriber in beta: $(cat "$TMP/block-b.out")"
for _ in $(seq 1 1700); do
        grep -q "^received" "$TMP/block-a.out" && grep -q "^published $N$" "$TMP/pub.out" && break
        kill -0 "$p_block_a" 2>/dev/null || break
        sleep 0.1
done
for f in block-a block-b; do
        grep -qx "received $N dropped 0 sequence-errors 0 loss-errors 0 corrupt 0" "$TMP/$f.out" ||
                fail "$f: $(cat "$TMP/$f.out")"
done
ok "BLOCK, through the agent and on a vchan of its own: $N of $N each, in sequence, none dropped"
grep -q "^published $N$" "$TMP/pub.out" || fail "publisher: $(cat "$TMP/pub.out")"
VBUS_URL=unix:$SOCK "$VBUSCTL" peers --json >"$TMP/peers.json" 2>"$TMP/peers.log" ||
        fail "vbusctl peers: $(cat "$TMP/peers.log")"
python3 - "$TMP/peers.json" "$N" <<'PY' >"$TMP/frames.out" || fail "no batches: $(cat "$TMP/frames.out")"
import json, sys
n = int(sys.argv[2])
pubs = [p for p in json.load(open(sys.argv[1]))['peers'] if p['published'] == n]
print(f"publisher sessions: {[(p['published'], p['frames_in']) for p in pubs]}")
assert len(pubs) == 1 and pubs[0]['frames_in'] < n
PY
ok "batches used by the publisher's session: $(cat "$TMP/frames.out")"
touch "$TMP/release"
wait "$p_pub" || fail "publisher: $(cat "$TMP/pub.out")"
wait "$p_block_a" || fail "BLOCK subscriber in alpha: $(cat "$TMP/block-a.out")"

k=0
while [ $k -lt 400 ] && kill -0 "$p_drop" 2>/dev/null; do
        k=$((k + 1))
        in_g1 "$BCHECK" pub batch.a 1 $SIZE --start $((N + k)) >/dev/null 2>&1 || fail "marker $k"
        sleep 0.2
done
wait "$p_drop" || fail "DROP subscriber: $(cat "$TMP/drop.out")"
read -r _ received _ dropped _ _ _ _ _ _ _ marker <"$TMP/drop.out"
if [ $((received + dropped)) -ne "$marker" ] || [ "$marker" -le "$N" ] || [ "$dropped" -le 0 ]; then
        fail "DROP subscriber: $(cat "$TMP/drop.out")"
fi
ok "DROP through the agent: received $received, told of $dropped dropped, sum exactly $marker"
! grep -q "protocol violation" "$TMP/broker.log" ||
        fail "a violation: $(grep "protocol violation" "$TMP/broker.log")"
