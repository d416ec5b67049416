#!/usr/bin/env bash
# The broker's own shortage is not the guests' fault: a broker started with few descriptors
# cannot set up every guest. Those it cannot set up keep their vchan keys (the broker removes
# nothing of theirs), the broker logs the shortage as its own (not one line per guest and
# try), and once descriptors are free again the waiting guests are connected by themselves.
# A guest that publishes keys that are really bad still has them removed (the guest's fault).
. "$(dirname "$0")/lib.sh" "$1"
N=10
export VBUS_RING_SIZE=16384
xs_up
# About 12 descriptors at rest, 3 more for the handles all guests share (opened by the first
# guest's setup), 2 per guest on xensim (docs/vchan.md): room for about 6 of the 10, so
# that the 4 left fit once those 6 are gone.
( ulimit -n 28 && exec "$XS" run --domid 0 -- "$VCHAND" --socket "$SOCK" --policy open ) \
        >>"$TMP/broker.log" 2>&1 &
BROKER_PID=$!
wait_file "$SOCK" || fail "broker did not start"

doms=""
for i in $(seq 1 "$N"); do
        doms="$doms $(guest "g$i")"
done
for d in $doms; do
        bg as_dom "$d" env VBUS_URL=vchan:0 "$VBUSCTL" sub 'short.>' >"$TMP/sub.$d.out" 2>&1
done
subs=$PIDS
wait_grep "the broker cannot .*Too many open files (its own resources" "$TMP/broker.log" ||
        fail "the shortage was not logged as the broker's own"
n=$(grep -c "peer dom[0-9]*(g[0-9]*): connected" "$TMP/broker.log")
[ "$n" -lt "$N" ] || fail "all $N guests connected: the shortage did not happen"
ok "with few descriptors $n of $N guests connected; the shortage is logged as the broker's"

# The others still have their keys. A guest whose ring the broker mapped and let go (the mapping
# of the rings failed) sees the broker leave and publishes a fresh ring: its keys may be
# missing for a moment, so each is looked for a few times.
for d in $doms; do
        grep -q "peer dom$d(g[0-9]*): connected" "$TMP/broker.log" && continue
        for i in $(seq 1 50); do
                as_dom 0 xenstore-read "/local/domain/$d/data/vchan/0/vbus/ring-ref" \
                        >/dev/null 2>&1 && break
                sleep 0.1
        done
        as_dom 0 xenstore-read "/local/domain/$d/data/vchan/0/vbus/ring-ref" >/dev/null 2>&1 ||
                fail "dom$d, waiting, has no keys"
done
grep -q "removing it" "$TMP/broker.log" && fail "the broker removed a guest's keys for its own shortage"
lines=$(grep -c "the broker cannot" "$TMP/broker.log")
[ "$lines" -le 3 ] || fail "$lines lines for one shortage (rate limit: one per 10 s)"
ok "the waiting guests keep their keys; $lines line(s) logged about the shortage"

# Free the descriptors of the connected guests: each waiting guest is connected on its retry.
for d in $doms; do
        if grep -q "peer dom$d(g[0-9]*): connected" "$TMP/broker.log"; then
                "$XS" domain destroy "$d" >/dev/null || fail "destroy $d"
        fi
done
left=""
for d in $doms; do
        grep -q "peer dom$d(g[0-9]*): connected" "$TMP/broker.log" || left="$left $d"
done
for d in $left; do
        # The retry delay doubles up to 32 s: a generous bound.
        for i in $(seq 1 1200); do
                grep -q "peer dom$d(g[0-9]*): connected" "$TMP/broker.log" && break
                sleep 0.1
        done
        grep -q "peer dom$d(g[0-9]*): connected" "$TMP/broker.log" ||
                fail "dom$d was never connected once descriptors were free"
done
ok "the guests that waited were connected once descriptors were free:$left"

# A guest's own fault still costs it its keys: a ring-ref that is not a number.
gbad=$(guest bad)
as_dom "$gbad" xenstore-write "/local/domain/$gbad/data/vchan/0/vbus/event-channel" 7 \
        "/local/domain/$gbad/data/vchan/0/vbus/ring-ref" "12x" || fail "xenstore-write"
wait_grep "dom$gbad: cannot use the vchan .*removing it" "$TMP/broker.log" ||
        fail "bad keys were not refused"
for i in $(seq 1 100); do
        as_dom "$gbad" xenstore-read "/local/domain/$gbad/data/vchan/0/vbus/ring-ref" \
                >/dev/null 2>&1 || break
        sleep 0.1
done
as_dom "$gbad" xenstore-read "/local/domain/$gbad/data/vchan/0/vbus/ring-ref" >/dev/null 2>&1 &&
        fail "the bad keys are still there"
ok "a guest's malformed keys are refused and removed"
kill -0 "$BROKER_PID" || fail "the broker died"
