#!/usr/bin/env bash
# Memory stays bounded under a flood. Two guests publish as fast as they can: one to a topic
# whose only subscriber (DROP) has stopped reading, one to a topic with a stopped BLOCK
# subscriber. The broker's resident memory may grow only by what its configuration bounds (the
# DROP queue, the publish windows), the BLOCK publisher is held back, and another pair keeps
# working meanwhile.
. "$(dirname "$0")/lib.sh" "$1"
xs_up
gf=$(guest flooder)
gh=$(guest held)
gs=$(guest stopped)
gb=$(guest blocked)
gk=$(guest keeper)
cat >"$TMP/vchand.conf" <<CONF
# Small bounds so the test sees them.
max_message = 262144
publish_window = 262144
peer_publish_bytes = 1048576
queue_bytes = 2097152
queue_messages = 4096
peer_queued_bytes = 4194304
CONF
# Under AddressSanitizer freed memory waits in a quarantine (256 MiB by default) and counts as
# resident: turn it off for the broker so its RSS shows what it really holds.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0" \
        broker_start --config "$TMP/vchand.conf"

rss_kb() {
        awk '/^VmRSS/ {print $2}' "/proc/$BROKER_PID/status"
}

"$XS" run --domid "$gs" -- env VBUS_URL=vchan:0 "$CHECK" sub 'flood.>' 1000000000 \
        --timeout 120000 --ready "$TMP/r1" >/dev/null 2>&1 &
p_drop=$!
PIDS="$PIDS $p_drop"
"$XS" run --domid "$gb" -- env VBUS_URL=vchan:0 "$CHECK" sub 'held.>' 1000000000 --block \
        --timeout 120000 --ready "$TMP/r2" >/dev/null 2>&1 &
p_block=$!
PIDS="$PIDS $p_block"
wait_file "$TMP/r1" && wait_file "$TMP/r2" || fail "subscribers not active"
kill -STOP "$p_drop" "$p_block"
base=$(rss_kb)

"$XS" run --domid "$gf" -- env VBUS_URL=vchan:0 timeout 6 "$CHECK" pub flood.x 1000000 4096 \
        >/dev/null 2>&1 &
PIDS="$PIDS $!"
"$XS" run --domid "$gh" -- env VBUS_URL=vchan:0 timeout 6 "$CHECK" pub held.x 1000000 4096 \
        >"$TMP/held.out" 2>&1 &
p_held=$!
PIDS="$PIDS $p_held"
peak=$base
for i in $(seq 1 40); do
        r=$(rss_kb)
        [ "$r" -gt "$peak" ] && peak=$r
        sleep 0.1
done
as_dom "$gk" env VBUS_URL=vchan:0 "$CHECK" pub other.topic 1 64 >/dev/null ||
        fail "another guest could not publish during the flood"
ok "another guest published during the flood"
# Allowed growth: the DROP queue (queue_bytes) and what the two publishers may have in flight
# (peer_publish_bytes each), plus 8 MiB for allocator slack.
bound_kb=$(((2097152 + 2 * 1048576) / 1024 + 8192))
echo "broker RSS: base ${base} KiB, peak ${peak} KiB, allowed growth ${bound_kb} KiB"
[ $((peak - base)) -le "$bound_kb" ] || fail "broker memory grew by $((peak - base)) KiB"
ok "broker memory stayed within its configured bounds under the flood"
kill -TERM "$BROKER_PID"
wait "$BROKER_PID" || fail "broker exit status $?"
BROKER_PID=""
kill -CONT "$p_drop" "$p_block"
stats=$(grep "stopped:" "$TMP/broker.log" | sed 's/.*stopped: //')
echo "broker: $stats"
published=${stats%% published*}
dropped=$(echo "$stats" | sed 's/.* \([0-9]*\) dropped.*/\1/')
[ "$dropped" -gt 0 ] || fail "the frozen DROP subscriber dropped nothing"
ok "the frozen DROP subscriber's overflow was dropped and counted ($dropped)"
# The held publisher never got through its messages: the frozen BLOCK subscriber held it back.
grep -q "published" "$TMP/held.out" && fail "the BLOCK publisher was not held back"
ok "the frozen BLOCK subscriber held its publisher back"
