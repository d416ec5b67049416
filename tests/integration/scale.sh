#!/usr/bin/env bash
# Scale: N guest domains (200, or $VBUS_SCALE_GUESTS) each start one subscriber at once. Every
# one of them must get connected and receive a publication (all counted), the broker must hold
# no xenstore connection per guest (its descriptors grow by a few per guest, docs/vchan.md),
# and once every domain is destroyed the broker must be back to the descriptors it had before
# and still serve. Bounds are generous and only stop a hang; nothing here is timed.
. "$(dirname "$0")/lib.sh" "$1"
N=${VBUS_SCALE_GUESTS:-200}
# Small rings, so that N guests fit in memory on a shared machine (the rings are not the point).
export VBUS_RING_SIZE=16384
xs_up
broker_start

fds() {
        ls "/proc/$BROKER_PID/fd" 2>/dev/null | wc -l
}
fd_base=$(fds)
[ "$fd_base" -gt 0 ] || fail "cannot count the broker's descriptors"

doms=""
for i in $(seq 1 "$N"); do
        doms="$doms $(guest "g$i")"
done
ok "$N domains created"

# Idle domains with nothing published cost the broker no descriptor.
[ "$(fds)" -le $((fd_base + 2)) ] || fail "idle domains cost descriptors: $(fds) against $fd_base"

for d in $doms; do
        bg as_dom "$d" env VBUS_URL=vchan:0 "$VBUSCTL" sub 'scale.>' >"$TMP/sub.$d.out" 2>&1
done
subs=$PIDS

# Publish until every subscriber has printed a message (one that subscribed late misses the
# earlier publications; the loop is bounded).
for i in $(seq 1 600); do
        got=$(grep -l hello "$TMP"/sub.*.out 2>/dev/null | wc -l)
        [ "$got" -ge "$N" ] && break
        for p in $subs; do kill -0 "$p" 2>/dev/null || fail "a subscriber exited: \
$(grep -v hello "$TMP"/sub.*.out | head -5)"; done
        if [ $((i % 10)) -eq 1 ]; then
                n=$(grep -c ": connected" "$TMP/broker.log")
                echo "round $i: $got of $N subscribers served, $n peers connected so far"
        fi
        "$VBUSCTL" --url "unix:$SOCK" pub scale.ping hello >/dev/null 2>&1 || fail "publish"
        sleep 0.5
done
[ "$got" -ge "$N" ] || fail "only $got of $N subscribers received a publication"
n=$(grep -c "peer dom[0-9]*(g[0-9]*): connected" "$TMP/broker.log")
[ "$n" -ge "$N" ] || fail "only $n guest peers were logged as connected"
ok "all $N guests connected and each subscriber received a publication"

# No xenstore connection (nor anything else) per guest beyond a handful of descriptors.
fd_peak=$(fds)
per=$(((fd_peak - fd_base) / N))
[ "$per" -le 8 ] || fail "$per descriptors per connected guest ($fd_peak for $N, $fd_base before)"
ok "the broker holds $fd_peak descriptors for $N guests ($fd_base before): $per per guest"

# Destroy every domain (which kills its subscriber): the broker must release all it held.
for i in $(seq 1 "$N"); do
        "$XS" domain destroy "g$i" >/dev/null || fail "domain destroy g$i"
done
for p in $subs; do wait "$p" 2>/dev/null; done
PIDS=""
# The grant handle and the event-channel handle all guests share, opened by the first guest's
# setup, stay: three descriptors more on xensim (its event-channel handle is a connection to
# its daemon and an epoll set; on Xen it is one descriptor).
for i in $(seq 1 600); do
        [ "$(fds)" -le $((fd_base + 3)) ] && break
        sleep 0.2
done
[ "$(fds)" -le $((fd_base + 3)) ] ||
        fail "the broker holds $(fds) descriptors after the domains went, $fd_base before them"
ok "every domain destroyed: the broker holds $(fds) descriptors ($fd_base before the guests)"

# The broker serves on: a local subscriber gets a local publication.
bg "$VBUSCTL" --url "unix:$SOCK" sub 'after.>' --count 1 >"$TMP/after.out" 2>&1
p_after=$!
for i in $(seq 1 100); do
        kill -0 "$p_after" 2>/dev/null || break
        "$VBUSCTL" --url "unix:$SOCK" pub after.x still-here >/dev/null 2>&1 || fail "publish"
        sleep 0.1
done
wait "$p_after" || fail "the broker does not serve after the domains went"
grep -q still-here "$TMP/after.out" || fail "the local subscriber got: $(cat "$TMP/after.out")"
kill -0 "$BROKER_PID" || fail "the broker died"
ok "the broker serves on"
