#!/usr/bin/env bash
# Typed RPC through protobuf-c across domains: the example kvstore-server (storage.v1.Store,
# examples/kvstore) in one guest, kvstore-client in another. Put, get, delete through the
# generated stubs and through the blocking vbus_protobuf_call(); Scan, a server-streaming method
# (typed messages over a vbus_stream); the caller's identity and
# deadline as the server sees them; a failure status from the implementation
# (vbus_protobuf_fail); an unknown method; garbage bytes sent as Get's request with a raw call
# (invalid-argument, and the server goes on serving); no responders once the server is gone;
# then a server that answers asynchronously (--delay) with unimplemented methods (--read-only):
# late answers arrive (five in flight at once), NULL handlers give unsupported, a caller's
# deadline that passes before the late answer gives deadline-exceeded and is seen by the
# implementation as cancelled, and so is a call cancelled by vbus_protobuf_client_free().
. "$(dirname "$0")/lib.sh" "$1"
EX=$B/examples/kvstore
[ -x "$EX/kvstore-server" ] && [ -x "$EX/kvstore-client" ] || fail "examples not built in $EX"
xs_up
sd=$(guest kv-server)
cd_=$(guest kv-client)
broker_start

"$XS" run --domid "$sd" -- env VBUS_URL=vchan:0 "$EX/kvstore-server" --ready "$TMP/ready" \
        >"$TMP/server.out" 2>&1 &
SERVER=$!
PIDS="$PIDS $SERVER"
wait_file "$TMP/ready" || fail "kvstore-server never became active"
ok "kvstore-server serves storage.v1.Store in dom$sd"

kv() {
        as_dom "$cd_" env VBUS_URL=vchan:0 "$EX/kvstore-client" "$@"
}

# Expects exit status $1 and stdout+stderr matching the glob $2 from kvstore-client ${@:3}.
expect() {
        local want_rc=$1 want_out=$2 out rc
        shift 2
        out=$(kv "$@" 2>&1)
        rc=$?
        # shellcheck disable=SC2053 # $want_out is a pattern
        [[ "$rc" = "$want_rc" && "$out" == $want_out ]] ||
                fail "kvstore-client $*: exit $rc, '$out' (expected exit $want_rc, '$want_out')"
        ok "kvstore-client $*: $out"
}

for mode in "" --sync; do
        expect 1 "not found" $mode get colour
        expect 0 "ok (new)" $mode put colour blue
        expect 0 "blue" $mode get colour
        expect 0 "ok (replaced)" $mode put colour "deep green"
        expect 0 "deep green" $mode get colour
        expect 0 "deleted" $mode delete colour
        expect 1 "not found" $mode delete colour
        expect 1 "not found" $mode get colour
        # An empty value is a value.
        expect 0 "ok (new)" $mode put empty ""
        expect 0 "" $mode get empty
        expect 0 "deleted" $mode delete empty
        # A failure status chosen by the implementation, with its message.
        expect 3 "kvstore-client: invalid-argument: the key is empty" $mode put "" x
done

# Scan, a server-streaming method of the same service: a prefix picks the entries, all of them
# arrive as typed ScanEntry messages, and an empty store streams none.
expect 0 "0 entries" scan
expect 0 "ok (new)" put fruit.apple red
expect 0 "ok (new)" put fruit.pear green
expect 0 "ok (new)" put veg.leek white
out=$(kv scan fruit. 2>&1) || fail "scan fruit.: $out"
[ "$(printf '%s\n' "$out" | sort | xargs)" = "2 entries fruit.apple=red fruit.pear=green" ] ||
        fail "scan fruit.: '$out'"
ok "scan fruit.: $(printf '%s\n' "$out" | xargs)"
expect 0 "*3 entries" scan
grep -q "^Scan caller dom$cd_(kv-client)" "$TMP/server.out" ||
        fail "the Scan handler did not see the caller: $(grep Scan "$TMP/server.out")"
for k in fruit.apple fruit.pear veg.leek; do expect 0 "deleted" delete $k; done

# The server saw the caller as the broker knows it, and the deadline the caller set.
grep -q "^Put key=colour caller dom$cd_(kv-client) deadline-left=" "$TMP/server.out" ||
        fail "the server did not see the caller's identity: $(head -3 "$TMP/server.out")"
ok "the server saw the caller as dom$cd_(kv-client)"
kv --timeout 1500 put deadline x >/dev/null || fail "put with a 1500 ms timeout"
left=$(sed -n 's/^Put key=deadline .*deadline-left=\([0-9]*\)ms$/\1/p' "$TMP/server.out")
[ -n "$left" ] && [ "$left" -gt 0 ] && [ "$left" -le 1500 ] ||
        fail "the server saw '$left' ms left of the caller's 1500"
ok "the server saw $left ms left of the caller's 1500"

# Raw calls with vbusctl (vbus_call_sync): an unknown method, and garbage as Get's request
# (field 1, length-delimited, claims 127 bytes and has none).
raw() {
        as_dom "$cd_" env VBUS_URL=vchan:0 "$VBUSCTL" call --raw "$@"
}
raw storage.v1.Store/Frobnicate x >"$TMP/o" 2>&1 && fail "unknown method succeeded"
grep -q "not-found" "$TMP/o" || fail "unknown method: $(cat "$TMP/o")"
ok "unknown method: $(cat "$TMP/o")"
printf '\n\177' | raw storage.v1.Store/Get - >"$TMP/o" 2>&1 && fail "garbage request succeeded"
grep -q "invalid-argument" "$TMP/o" || fail "garbage request: $(cat "$TMP/o")"
ok "garbage request: $(cat "$TMP/o")"
# A valid request sent raw: Get{key: "k"} is 0a 01 6b; the reply is the encoded
# GetResponse{found: true, value: "v"}.
expect 0 "ok (new)" put k v
printf '\n\001k' | raw storage.v1.Store/Get - >"$TMP/o" 2>&1 || fail "raw Get: $(cat "$TMP/o")"
[ "$(od -An -tx1 "$TMP/o" | xargs)" = "08 01 12 01 76" ] ||
        fail "raw Get replied $(od -An -tx1 "$TMP/o" | xargs), expected GetResponse{found, 'v'}"
ok "a raw Get is answered with the encoded GetResponse"
kill -0 "$SERVER" 2>/dev/null || fail "the server died"
expect 0 "v" get k
ok "the server still serves after the malformed request"

# The server goes away: no responders.
kill -TERM "$SERVER"
wait "$SERVER" || fail "kvstore-server exit status $?"
out=$(kv get k 2>&1)
rc=$?
[ "$rc" = 3 ] && case $out in *"not-found: no responders"*) true ;; *) false ;; esac ||
        fail "after the server left: exit $rc, '$out'"
ok "after the server left: $out"

# Asynchronous answers, 300 ms late, and NULL handlers.
"$XS" run --domid "$sd" -- env VBUS_URL=vchan:0 "$EX/kvstore-server" --delay 300 --read-only \
        --ready "$TMP/ready2" >"$TMP/server2.out" 2>&1 &
SERVER=$!
PIDS="$PIDS $SERVER"
wait_file "$TMP/ready2" || fail "the second kvstore-server never became active"
expect 1 "not found" get k
expect 1 "not found" --sync get k
expect 3 "kvstore-client: unsupported: the service does not implement this method" put k v
expect 3 "kvstore-client: unsupported: the service does not implement this method" delete k
expect 3 "kvstore-client: deadline-exceeded*" --timeout 100 get k
wait_grep "^cancelled Get" "$TMP/server2.out" || fail "the late handler did not see the cancellation"
ok "the late handler saw the caller's deadline pass"
# Several calls in flight at once through the stubs, all answered late.
out=$(kv --count 5 get k 2>&1)
rc=$?
[ "$rc" = 1 ] && [ "$(printf '%s\n' "$out" | grep -c '^not found$')" = 5 ] ||
        fail "5 calls in flight: exit $rc, '$out'"
ok "5 calls in flight at once, 5 late answers"
# Freeing the client cancels its call in flight: the closure runs with NULL and the status
# cancelled, and the server is told.
expect 3 "kvstore-client: cancelled: the client was freed" --give-up-after 100 get k
for i in $(seq 1 100); do
        [ "$(grep -c "^cancelled Get" "$TMP/server2.out")" -ge 2 ] && break
        sleep 0.05
done
[ "$(grep -c "^cancelled Get" "$TMP/server2.out")" -ge 2 ] ||
        fail "the cancellation by vbus_protobuf_client_free() did not reach the server"
ok "the cancellation by vbus_protobuf_client_free() reached the server"
expect 1 "not found" get k
kill -TERM "$SERVER"
wait "$SERVER" || fail "the second kvstore-server exit status $?"

kill -TERM "$BROKER_PID"
wait "$BROKER_PID" || fail "broker exit status $?"
BROKER_PID=""
ok "broker exited cleanly"
