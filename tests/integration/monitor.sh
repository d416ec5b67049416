#!/usr/bin/env bash
# vbusctl monitor (vbus.v1.Broker/Monitor): every publication and every call that ends, with the
# sender the broker established, the size, the status and the latency, as JSON lines and as text;
# the pattern selects topics and services. Under a flood it never holds the traffic back: a
# monitor that does not read (its stdout is a pipe nobody reads) loses events, and every event is
# either shown or counted as lost, by the monitor and by the broker's stats alike.
. "$(dirname "$0")/lib.sh" "$1"
PY=python3
N=100000
xs_up
s=$(guest sensor)
d=$(guest dash)
kv=$(guest kv)
cl=$(guest caller)
broker_start
export VBUS_URL=unix:$SOCK

bg as_dom "$d" env VBUS_URL=vchan:0 "$VBUSCTL" sub 'sensors.>' >/dev/null 2>"$TMP/dash.log"
wait_grep "subscribed" "$TMP/dash.log" || fail "dash's subscription"
bg as_dom "$kv" env VBUS_URL=vchan:0 "$VBUSCTL" serve kv.v1.Store --exec cat >"$TMP/kv.log" 2>&1
wait_grep "serving kv.v1.Store" "$TMP/kv.log" || fail "kv server"

# Two publications and two calls, as JSON.
bg "$VBUSCTL" monitor '>' --json --count 4 >"$TMP/mon.json" 2>"$TMP/mon.log"
p_mon=$!
wait_grep "^# monitoring >" "$TMP/mon.log" || fail "monitor did not start"
as_dom "$s" env VBUS_URL=vchan:0 "$VBUSCTL" pub sensors.temp 21.5 --count 2 || fail "publish"
for i in 1 2; do
        as_dom "$cl" env VBUS_URL=vchan:0 "$VBUSCTL" call kv.v1.Store/Get abc >/dev/null ||
                fail "call $i"
done
wait "$p_mon" || fail "monitor: $(cat "$TMP/mon.log")"
$PY - "$TMP/mon.json" "$s" "$cl" <<'EOF' || fail "monitor --json: $(cat "$TMP/mon.json")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert len(ev) == 4, len(ev)
pubs = [e for e in ev if e['kind'] == 'publish']
calls = [e for e in ev if e['kind'] == 'call']
assert len(pubs) == 2 and len(calls) == 2
for e in pubs:
    assert e['name'] == 'sensors.temp' and e['sender'] == 'dom%s(sensor)' % sys.argv[2], e
    assert e['size'] == 4 and e['deliveries'] == 1 and e['dropped'] == 0, e
for e in calls:
    assert e['name'] == 'kv.v1.Store/Get' and e['sender'] == 'dom%s(caller)' % sys.argv[3], e
    assert e['size'] == 3 and e['status'] == 'ok' and e['latency_us'] > 0, e
    assert e['sender_id'] > 0 and e['time_unix_us'] > 0
EOF
grep -qx "# monitor: 4 events shown, 0 lost" "$TMP/mon.log" || fail "summary: $(cat "$TMP/mon.log")"
ok "monitor --json: 2 publications (sender, size, deliveries) and 2 calls (status, latency)"

# The pattern selects: other.topic and kv.v1.Store do not match sensors.*; as text.
bg "$VBUSCTL" monitor 'sensors.*' --count 1 >"$TMP/mon.txt" 2>"$TMP/mon.log"
p_mon=$!
wait_grep "^# monitoring sensors.\*" "$TMP/mon.log" || fail "monitor did not start"
as_dom "$s" env VBUS_URL=vchan:0 "$VBUSCTL" pub other.topic x || fail "publish other"
as_dom "$cl" env VBUS_URL=vchan:0 "$VBUSCTL" call kv.v1.Store/Get abc >/dev/null || fail "call"
as_dom "$s" env VBUS_URL=vchan:0 "$VBUSCTL" pub sensors.hum 55 || fail "publish hum"
wait "$p_mon" || fail "monitor: $(cat "$TMP/mon.log")"
[ "$(wc -l <"$TMP/mon.txt")" -eq 1 ] || fail "monitor text: $(cat "$TMP/mon.txt")"
grep -Eq "^[0-9T:-]+\.[0-9]{6} pub  sensors.hum from dom$s\(sensor\) \[[0-9]+\] 2 B -> 1 subscriber$" \
        "$TMP/mon.txt" || fail "monitor text: $(cat "$TMP/mon.txt")"
ok "monitor PATTERN: only matching topics and services, one text line per event"

"$VBUSCTL" monitor 'a..b' --count 1 >/dev/null 2>"$TMP/bad.log" && fail "a bad pattern was taken"
grep -q "invalid-argument: not a topic pattern" "$TMP/bad.log" || fail "bad pattern: $(cat "$TMP/bad.log")"
ok "a bad pattern is refused with invalid-argument"

# The flood: the monitor's stdout is a pipe nobody reads until the publisher is done.
mkfifo "$TMP/fifo"
bg sh -c "exec 3<'$TMP/fifo'; while [ ! -e '$TMP/flood-done' ]; do sleep 0.1; done; cat <&3 >'$TMP/flood.json'"
bg "$VBUSCTL" monitor 'flood.>' --json >"$TMP/fifo" 2>"$TMP/flood.log"
p_mon=$!
wait_grep "^# monitoring flood" "$TMP/flood.log" || fail "flood monitor did not start"
as_dom "$s" env VBUS_URL=vchan:0 "$CHECK" pub flood.x "$N" 16 >"$TMP/pub.out" 2>&1 ||
        fail "the flood publisher: $(cat "$TMP/pub.out")"
touch "$TMP/flood-done"
# A last event carries the count of those lost before it. While the monitor still drains its
# backlog, a marker may be lost too: publish one every 0.2 s until one arrives, counting them.
markers=0
for i in $(seq 1 150); do
        "$VBUSCTL" pub flood.end x || fail "marker"
        markers=$((markers + 1))
        sleep 0.2
        grep -q '"name":"flood.end"' "$TMP/flood.json" 2>/dev/null && break
done
grep -q '"name":"flood.end"' "$TMP/flood.json" || fail "no marker reached the monitor"
sleep 0.5 # the markers published after the one seen
kill -INT "$p_mon"
wait "$p_mon" || fail "the monitor did not stop cleanly: $(cat "$TMP/flood.log")"
shown=$(sed -n 's/^# monitor: \([0-9]*\) events shown, \([0-9]*\) lost$/\1/p' "$TMP/flood.log")
lost=$(sed -n 's/^# monitor: \([0-9]*\) events shown, \([0-9]*\) lost$/\2/p' "$TMP/flood.log")
[ -n "$shown" ] && [ -n "$lost" ] || fail "no summary: $(cat "$TMP/flood.log")"
[ "$((shown + lost))" -eq "$((N + markers))" ] ||
        fail "shown $shown + lost $lost != $N + $markers markers"
[ "$lost" -gt 0 ] || fail "a monitor that did not read lost nothing"
[ "$(wc -l <"$TMP/flood.json")" -eq "$shown" ] || fail "lines != shown"
"$VBUSCTL" stats --json >"$TMP/stats.json" || fail "stats"
$PY - "$TMP/flood.json" "$TMP/stats.json" "$lost" <<'EOF' || fail "drop accounting"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
lost = int(sys.argv[3])
assert sum(e['dropped'] for e in ev) == lost
assert json.load(open(sys.argv[2]))['monitor_dropped'] == lost
assert json.load(open(sys.argv[2]))['published'] >= 100001
EOF
echo "flood: $shown events shown, $lost lost, $markers markers"
ok "flood of $N: $shown shown + $lost lost (counted by the monitor and the broker) = every event"
