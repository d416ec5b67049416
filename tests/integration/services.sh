#!/usr/bin/env bash
# vbusctl services and the broker's own service, vbus.v1.Broker/ListServices: two guests serve
# storage.v1.Store, a third clock.v1.Time and a dom0 process local.v1.Tool; the list, asked from a
# fourth guest and from dom0, names exactly these services and servers, with the identities the
# broker established (domid and xenstore name, or local uid and pid), calls in flight and calls
# routed so far; a prefix narrows it. No client may serve vbus.v1.Broker (or anything under
# vbus.); malformed requests get invalid-argument and the link stays up; a request that never
# ends is reset at its deadline; a reply larger than the caller's window flows with its credit.
. "$(dirname "$0")/lib.sh" "$1"
RPC=$B/tests/integration/rpc-check
SC=$B/tests/integration/services-check
xs_up
ka=$(guest kv-a)
kb=$(guest kv-b)
ck=$(guest clock)
cl=$(guest caller)
ml=$(guest mallory)
wt=$(guest waiter)
broker_start

in_dom() {
        local d=$1
        shift
        as_dom "$d" env VBUS_URL=vchan:0 "$@"
}
bg_dom() {
        local d=$1
        shift
        bg "$XS" run --domid "$d" -- env VBUS_URL=vchan:0 "$@"
}

bg_dom "$ka" "$RPC" serve storage.v1.Store a --ready "$TMP/ready-a" >"$TMP/srv-a.out" 2>&1
bg_dom "$kb" "$RPC" serve storage.v1.Store b --ready "$TMP/ready-b" >"$TMP/srv-b.out" 2>&1
bg_dom "$ck" "$RPC" serve clock.v1.Time c --delay 600000 --ready "$TMP/ready-c" \
        >"$TMP/srv-c.out" 2>&1
bg env VBUS_URL="unix:$SOCK" "$VBUSCTL" serve local.v1.Tool --exec cat >"$TMP/srv-l.out" 2>&1
p_local=$!
for n in a b c; do wait_file "$TMP/ready-$n" || fail "server $n not active"; done
wait_grep "serving local.v1.Tool" "$TMP/srv-l.out" || fail "local server not active"

# A client may not serve the broker's service: mallory's SERVE is refused, and the broker
# still answers ListServices itself.
bg_dom "$ml" "$VBUSCTL" serve vbus.v1.Broker --exec 'echo hijacked' >"$TMP/srv-m.out" 2>&1
wait_grep "dom$ml(mallory): may not serve vbus.v1.Broker" "$TMP/broker.log" ||
        fail "the broker did not refuse mallory's SERVE vbus.v1.Broker"
ok "dom$ml(mallory) may not serve vbus.v1.Broker"

# Calls so far: 4 sequential calls spread 2/2 over the two stores (ties go in turn), 1 to clock.
in_dom "$cl" "$RPC" call storage.v1.Store/Echo x >/dev/null || fail "Echo 1"
in_dom "$cl" "$RPC" call storage.v1.Store/Echo x >/dev/null || fail "Echo 2"
in_dom "$cl" "$RPC" call storage.v1.Store/Echo x >/dev/null || fail "Echo 3"
in_dom "$cl" "$RPC" call storage.v1.Store/Echo x >/dev/null || fail "Echo 4"
in_dom "$cl" "$RPC" call clock.v1.Time/Echo x >/dev/null || fail "clock Echo"
# One call held by the clock server (it answers Slow after 600 s): in flight while we look. It
# comes from its own domain, since one process per domain holds the domain's vchan.
bg_dom "$wt" "$RPC" call clock.v1.Time/Slow x --timeout 600000 >/dev/null 2>&1
p_slow=$!
for i in $(seq 1 300); do
        [ "$(grep -c '^caller' "$TMP/srv-c.out")" -ge 2 ] && break
        sleep 0.05
done
[ "$(grep -c '^caller' "$TMP/srv-c.out")" -ge 2 ] || fail "the slow call did not reach the clock"

# From the caller guest (over vchan) and from dom0 (UNIX socket): the same list.
in_dom "$cl" "$VBUSCTL" services --json >"$TMP/list-guest.json" || fail "services from dom$cl"
"$VBUSCTL" --url "unix:$SOCK" services --json >"$TMP/list-dom0.json" || fail "services from dom0"
cmp -s "$TMP/list-guest.json" "$TMP/list-dom0.json" ||
        fail "dom$cl and dom0 see different lists: $(cat "$TMP"/list-*.json)"
want=$(printf '%s' \
        '{"services":[' \
        '{"name":"clock.v1.Time","calls_in_flight":1,"total_servers":1,"servers":[' \
        "{\"domid\":$ck,\"domain_name\":\"clock\",\"local\":false,\"uid\":0,\"pid\":0," \
        '"calls_in_flight":1,"calls_total":2}]},' \
        '{"name":"local.v1.Tool","calls_in_flight":0,"total_servers":1,"servers":[' \
        "{\"domid\":0,\"domain_name\":\"\",\"local\":true,\"uid\":$(id -u),\"pid\":$p_local," \
        '"calls_in_flight":0,"calls_total":0}]},' \
        '{"name":"storage.v1.Store","calls_in_flight":0,"total_servers":2,"servers":[' \
        "{\"domid\":$ka,\"domain_name\":\"kv-a\",\"local\":false,\"uid\":0,\"pid\":0," \
        '"calls_in_flight":0,"calls_total":2},' \
        "{\"domid\":$kb,\"domain_name\":\"kv-b\",\"local\":false,\"uid\":0,\"pid\":0," \
        '"calls_in_flight":0,"calls_total":2}]}' \
        '],"total_services":3,"truncated":false}')
[ "$(cat "$TMP/list-guest.json")" = "$want" ] ||
        fail "services --json: got $(cat "$TMP/list-guest.json"), want $want"
ok "services --json from dom$cl(caller) and from dom0: exactly the 3 services, 4 servers"

# The text form: one line per server.
in_dom "$cl" "$VBUSCTL" services >"$TMP/list.txt" || fail "services (text)"
got=$(awk 'NR > 1 { print $1, $2, $3, $4 }' "$TMP/list.txt")
want=$(printf '%s\n' "clock.v1.Time dom$ck(clock) 1 2" \
        "local.v1.Tool local(uid=$(id -u),pid=$p_local) 0 0" \
        "storage.v1.Store dom$ka(kv-a) 0 2" "storage.v1.Store dom$kb(kv-b) 0 2")
[ "$got" = "$want" ] || fail "services: got
$got
want
$want"
head -n 1 "$TMP/list.txt" | grep -q "^SERVICE *SERVER *IN-FLIGHT *CALLS$" ||
        fail "services: header $(head -n 1 "$TMP/list.txt")"
ok "services (text):
$(cat "$TMP/list.txt")"

# A prefix narrows the list; one that matches nothing lists nothing (and is no error).
in_dom "$cl" "$VBUSCTL" services storage. >"$TMP/o" || fail "services storage."
[ "$(awk 'NR > 1 { print $1 }' "$TMP/o" | sort -u)" = storage.v1.Store ] ||
        fail "services storage.: $(cat "$TMP/o")"
[ "$(awk 'NR > 1' "$TMP/o" | wc -l)" -eq 2 ] || fail "services storage.: $(cat "$TMP/o")"
"$VBUSCTL" --url "unix:$SOCK" services nothing.here --json >"$TMP/o" || fail "services nothing"
[ "$(cat "$TMP/o")" = '{"services":[],"total_services":0,"truncated":false}' ] ||
        fail "services nothing.here: $(cat "$TMP/o")"
ok "a prefix narrows the list (storage.: 2 servers; nothing.here: none)"

# Usage errors are caught before asking the broker.
"$VBUSCTL" --url "unix:$SOCK" services 'a/b' >/dev/null 2>&1
[ $? -eq 2 ] || fail "services a/b: exit status is not 2"
ok "services with an invalid prefix: usage error"

# Malformed requests over one guest link: invalid-argument each, and the link stays up.
in_dom "$cl" "$SC" errors >"$TMP/errors.out" 2>&1 || fail "errors: $(cat "$TMP/errors.out")"
ok "malformed requests from dom$cl:
$(cat "$TMP/errors.out")"

# By hand on the UNIX socket: refusals, the broker's deadline, a reply through a small window.
"$SC" raw "$SOCK" >"$TMP/raw.out" 2>&1 || fail "raw: $(cat "$TMP/raw.out")"
ok "raw client:
$(cat "$TMP/raw.out")"

# Nothing above cost anyone their link: the servers were never disconnected.
grep -q "dom$ka(kv-a): disconnected\|dom$kb(kv-b): disconnected\|dom$cl(caller): disconnected: protocol" \
        "$TMP/broker.log" && fail "a link was dropped: $(grep disconnected "$TMP/broker.log")"
grep -q "violation" "$TMP/broker.log" && fail "protocol violation: $(grep violation "$TMP/broker.log")"
ok "no link was dropped and no protocol violation was logged"

kill "$p_slow" 2>/dev/null
kill -TERM "$BROKER_PID"
wait "$BROKER_PID" || fail "broker exit status $?"
BROKER_PID=""
ok "broker exited cleanly"
