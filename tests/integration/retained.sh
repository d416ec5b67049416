#!/usr/bin/env bash
# Retained values (docs/protocol.md 6.5, vbus_publish_retained(), vbusctl pub --retain): a
# subscriber that starts after a retained publication gets the value first, marked retained,
# with the original publisher's identity; a newer value replaces it, an empty one clears it (and
# reaches no one); live messages queue behind the retained ones; across subscriber restarts each
# new subscription sees the latest values. Bounds: a publisher over peer_retained_bytes has its
# stream reset RESOURCE_EXHAUSTED, and another guest (a bystander) still retains.
. "$(dirname "$0")/lib.sh" "$1"
xs_up
cat >"$TMP/vchand.conf" <<'CONF'
peer_retained_bytes = 2000  # a few values per publisher identity, to reach the bound
CONF
broker_start -c "$TMP/vchand.conf"
export VBUS_URL=unix:$SOCK
ga=$(guest alpha)
gb=$(guest beta)

# Runs a subscriber for N messages of PATTERN and prints its JSON lines.
sub_json() {
        "$VBUSCTL" sub "$1" --json --count "$2" --timeout 10000 2>"$TMP/sub.err" ||
                fail "sub $1: $(cat "$TMP/sub.err")"
}
field() { # field JSON-LINE EXPR: a python expression over o
        python3 -c 'import json, sys; o = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

"$VBUSCTL" pub --retain sensors.temp 21 || fail "pub --retain"
line=$(sub_json 'sensors.>' 1)
[ "$(field "$line" 'o["data"], o["retained"], o["sender"]["local"]')" = "('21', True, True)" ] ||
        fail "first subscriber: $line"
ok "a subscriber started after the retained publication got it, marked retained: $line"

as_dom "$ga" env VBUS_URL=vchan:0 "$VBUSCTL" pub --retain sensors.temp 22 || fail "pub --retain from alpha"
line=$(sub_json 'sensors.*' 1)
[ "$(field "$line" 'o["data"], o["retained"], o["sender"]')" = \
        "('22', True, {'local': False, 'domid': $ga, 'name': 'alpha'})" ] || fail "after replace: $line"
ok "a newer value replaced it, stamped with its publisher dom$ga(alpha)"

# Two topics in order, then a live message behind them; the text form marks the retained ones.
"$VBUSCTL" pub --retain sensors.hum 40 || fail "pub --retain sensors.hum"
bg "$VBUSCTL" sub 'sensors.>' --count 3 >"$TMP/three.out" 2>"$TMP/three.err"
three=$!
wait_grep "# subscribed" "$TMP/three.err" || fail "subscriber of three not active"
"$VBUSCTL" pub sensors.temp live || fail "live publication"
wait "$three" || fail "subscriber of three: $(cat "$TMP/three.err")"
[ "$(grep -v '^#' "$TMP/three.out" | cut -d' ' -f1,3)" = "$(printf 'sensors.temp 22\nsensors.hum 40\nsensors.temp live')" ] ||
        fail "order: $(cat "$TMP/three.out")"
[ "$(grep -c '^# retained value' "$TMP/three.out")" = 2 ] || fail "retained marks: $(cat "$TMP/three.out")"
ok "retained values first, oldest first, each marked; the live message after them"

# An empty retained message clears the value and reaches no subscriber.
bg "$VBUSCTL" sub 'sensors.>' --json >"$TMP/live.out" 2>"$TMP/live.err"
wait_grep "# subscribed" "$TMP/live.err" || fail "live subscriber not active"
wait_grep '"sensors.hum"' "$TMP/live.out" || fail "live subscriber: no retained values"
"$VBUSCTL" pub --retain sensors.hum '' || fail "clear"
"$VBUSCTL" pub sensors.marker end || fail "marker"
wait_grep '"sensors.marker"' "$TMP/live.out" || fail "marker not delivered"
[ "$(wc -l <"$TMP/live.out")" = 3 ] || fail "the clear reached a subscriber: $(cat "$TMP/live.out")"
line=$(sub_json 'sensors.>' 1)
[ "$(field "$line" 'o["topic"], o["data"]')" = "('sensors.temp', '22')" ] || fail "after clear: $line"
ok "an empty retained message cleared sensors.hum and reached no one"

# Across subscriber restarts: each new subscription sees the latest value.
for v in 23 24 25; do
        "$VBUSCTL" pub --retain sensors.temp "$v" || fail "pub $v"
        line=$(sub_json 'sensors.temp' 1)
        [ "$(field "$line" 'o["data"], o["retained"]')" = "('$v', True)" ] || fail "restart $v: $line"
done
ok "three subscriber restarts, each saw the latest value (23, 24, 25)"

# Bounds: alpha (a hostile publisher) fills its peer_retained_bytes; only alpha is refused.
# Each value is charged its bytes, its topic and 256: about 7 values fit in 2000 bytes.
out=$(as_dom "$ga" env VBUS_URL=vchan:0 sh -c '
        for i in $(seq 1 20); do
                "$1" pub --retain "flood.t$i" xxxx 2>&1 || { echo "refused at value $i"; exit 1; }
        done' _ "$VBUSCTL")
rc=$?
[ "$rc" = 1 ] && [[ "$out" == *"resource-exhausted: retained values over this publisher's peer_retained_bytes"* ]] ||
        fail "alpha over its bound: exit $rc, '$out'"
n_kept=$(sub_json 'flood.>' 7 | wc -l)
[ "$n_kept" = 7 ] || fail "alpha's values kept: $n_kept"
ok "alpha over peer_retained_bytes, 7 values kept: $(echo "$out" | tr '\n' ' ')"
out=$(as_dom "$ga" env VBUS_URL=vchan:0 "$VBUSCTL" pub --retain flood.other 'x' 2>&1)
[[ "$out" == *"resource-exhausted"* ]] || fail "alpha, another topic: '$out'"
as_dom "$gb" env VBUS_URL=vchan:0 "$VBUSCTL" pub --retain beta.state ok || fail "beta, a bystander, was refused"
line=$(sub_json 'beta.>' 1)
[ "$(field "$line" 'o["data"], o["sender"]["name"]')" = "('ok', 'beta')" ] || fail "beta's value: $line"
ok "beta (a bystander) still retains: $line"
# Alpha's values that fitted are kept: replacing one of them is not a new charge.
as_dom "$ga" env VBUS_URL=vchan:0 "$VBUSCTL" pub --retain flood.t1 yyyy || fail "alpha replacing its own value"
ok "alpha can still replace a value it holds"
kill -0 "$BROKER_PID" || fail "the broker died"
