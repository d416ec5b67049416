#!/usr/bin/env bash
# Wildcard routing, fan-out and identity stamping across guest domains and local clients:
# three guests and a local process subscribe with different patterns; two guests and a local
# process publish; each subscriber gets exactly the messages its pattern matches, stamped with
# the publisher's identity as the broker knows it.
. "$(dirname "$0")/lib.sh" "$1"
xs_up
s1=$(guest sensor)
s2=$(guest logger)
s3=$(guest dash)
broker_start

# Subscribers: all sensors (logger), one exact topic (dash), kitchen anything (local).
bg as_dom "$s2" env VBUS_URL=vchan:0 "$CHECK" sub 'sensors.>' 20 --ready "$TMP/r1" >"$TMP/all.out" 2>&1
p_all=$!
bg as_dom "$s3" env VBUS_URL=vchan:0 "$CHECK" sub 'sensors.hall.temp' 10 --sender "dom$s1(sensor)" \
        --ready "$TMP/r2" >"$TMP/hall.out" 2>&1
p_hall=$!
bg env VBUS_URL=unix:$SOCK "$CHECK" sub 'sensors.*.humidity' 10 --sender local --ready "$TMP/r3" \
        >"$TMP/hum.out" 2>&1
p_hum=$!
for r in r1 r2 r3; do wait_file "$TMP/$r" || fail "subscriber $r not active"; done

as_dom "$s1" env VBUS_URL=vchan:0 "$CHECK" pub sensors.hall.temp 10 64 >/dev/null ||
        fail "guest publish"
VBUS_URL=unix:$SOCK "$CHECK" pub sensors.kitchen.humidity 10 64 >/dev/null || fail "local publish"
# Not matched by anyone: must not reach any subscriber.
as_dom "$s1" env VBUS_URL=vchan:0 "$CHECK" pub other.topic 5 64 >/dev/null || fail "publish other"

wait "$p_hall" || fail "exact-topic subscriber: $(cat "$TMP/hall.out")"
ok "exact topic: 10 of 10, stamped dom$s1(sensor)"
wait "$p_hum" || fail "wildcard * subscriber: $(cat "$TMP/hum.out")"
ok "'*' pattern: 10 of 10 from the local publisher, stamped local"
wait "$p_all" || fail "'>' subscriber: $(cat "$TMP/all.out")"
grep -q "received 20 dropped 0" "$TMP/all.out" || fail "'>' subscriber: $(cat "$TMP/all.out")"
ok "'>' pattern: 20 of 20 from both publishers (fan-out)"

# The broker counted 25 publications.
kill -TERM "$BROKER_PID"
wait "$BROKER_PID"
BROKER_PID=""
grep -q "25 published" "$TMP/broker.log" || fail "broker statistics: $(tail -n 2 "$TMP/broker.log")"
ok "broker stopped cleanly on SIGTERM"
