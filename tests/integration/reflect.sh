#!/usr/bin/env bash
# Reflection (docs/reflection.md): the kvstore example registers its description; `vbusctl
# describe` prints its methods (Scan server-streaming) and types; `vbusctl call --json` builds
# requests from JSON and prints replies as JSON, unary and server-streaming (bytes in base64,
# JSON names and .proto names accepted); malformed JSON, unknown fields, wrong types and
# out-of-range numbers are refused with exit 2 and one line naming where; a service served
# without a description, and one not served at all, say so; a description over the limits is
# refused to the server's own call (-E2BIG is the library's; the broker's own checks are the
# hostile test's, tests/hostile/describe.sh).
. "$(dirname "$0")/lib.sh" "$1"
EX=$B/examples/kvstore
[ -x "$EX/kvstore-server" ] || fail "examples not built in $EX"
xs_up
broker_start
export VBUS_URL=unix:$SOCK

bg "$EX/kvstore-server" --ready "$TMP/ready" >"$TMP/server.out" 2>&1
wait_file "$TMP/ready" || fail "kvstore-server never became active"
# The description follows the SERVE stream's ACCEPT in the server's next step: wait for it.
for _ in $(seq 1 100); do
        "$VBUSCTL" describe storage.v1.Store >"$TMP/describe.out" 2>"$TMP/describe.err" && break
        sleep 0.05
done
grep -q "^service storage.v1.Store {  // 1 server" "$TMP/describe.out" ||
        fail "describe: $(cat "$TMP/describe.out" "$TMP/describe.err")"
grep -qF "  rpc Get(storage.v1.GetRequest) returns (storage.v1.GetResponse);" "$TMP/describe.out" ||
        fail "describe lacks Get: $(cat "$TMP/describe.out")"
grep -qF "  rpc Scan(storage.v1.ScanRequest) returns (stream storage.v1.ScanEntry);" \
        "$TMP/describe.out" || fail "describe lacks the streaming Scan: $(cat "$TMP/describe.out")"
grep -q "^message storage.v1.PutRequest {" "$TMP/describe.out" || fail "no PutRequest"
grep -qF "  bytes value = 2;" "$TMP/describe.out" || fail "no bytes field"
ok "describe storage.v1.Store: $(grep -c rpc "$TMP/describe.out") methods, $(grep -c ^message "$TMP/describe.out") messages"

# Runs vbusctl $3...; $1: expected exit status, $2: expected output (stdout and stderr) glob.
expect() {
        local want_rc=$1 want=$2 out rc
        shift 2
        out=$("$VBUSCTL" "$@" 2>&1)
        rc=$?
        # shellcheck disable=SC2053 # $want is a pattern
        [[ "$rc" = "$want_rc" && "$out" == $want ]] ||
                fail "vbusctl $*: exit $rc, '$out' (expected $want_rc, '$want')"
        ok "vbusctl $*: exit $rc, $(printf '%s' "$out" | head -c 160)"
}

# "blue" in base64 is "Ymx1ZQ=="; the URL alphabet without padding is accepted too.
# replaced=false is proto3's default: printed as nothing.
expect 2 '*describe: prints text*' describe --json storage.v1.Store
expect 0 '{}' call --json storage.v1.Store/Put '{"key":"colour","value":"Ymx1ZQ=="}'
expect 0 '{"replaced":true}' call --json storage.v1.Store/Put '{"key":"colour","value":"Ymx1ZQ"}' --timeout 5000
expect 0 '{"found":true,"value":"Ymx1ZQ=="}' call --json storage.v1.Store/Get '{"key":"colour"}'
expect 0 '{}' call --json storage.v1.Store/Get '{"key":"nothing"}'
expect 0 '{"found":true}' call --json storage.v1.Store/Delete '{ "key" : "colour" }'
for k in a1 a2 b1; do
        expect 0 '{}' call --json storage.v1.Store/Put "{\"key\":\"$k\",\"value\":\"eHg=\"}"
done
# A UTF-8 key through a \u escape and back.
expect 0 '{}' call --json storage.v1.Store/Put '{"key":"t\u00e9","value":""}'
expect 0 '{"found":true}' call --json storage.v1.Store/Get '{"key":"té"}'
# Server-streaming: one line per entry; no order is promised, so sorted.
out=$("$VBUSCTL" call --json storage.v1.Store/Scan '{"prefix":"a"}' 2>&1) || fail "Scan: $out"
[ "$(printf '%s\n' "$out" | sort)" = '{"key":"a1","value":"eHg="}
{"key":"a2","value":"eHg="}' ] || fail "Scan a: '$out'"
ok "call --json Scan {prefix:a}: 2 entries"
n=$("$VBUSCTL" call --json storage.v1.Store/Scan '{}' | wc -l)
[ "$n" = 4 ] || fail "Scan all: $n lines, expected 4"
ok "call --json Scan {}: 4 entries"

# Refused input: exit 2, one line naming where.
expect 2 "vbusctl: --json: storage.v1.GetRequest request at \$ (offset 7): expected ':'" \
        call --json storage.v1.Store/Get '{"key" "x"}'
expect 2 "*at \$ (offset 0): expected '{'" call --json storage.v1.Store/Get '[1]'
expect 2 "*at \$ (offset *): storage.v1.GetRequest has no field 'kye'" \
        call --json storage.v1.Store/Get '{"kye":"x"}'
expect 2 "*at \$.key (offset *): string wants a string" call --json storage.v1.Store/Get '{"key":5}'
expect 2 "*at \$.value (offset *): bytes want base64" \
        call --json storage.v1.Store/Put '{"key":"k","value":"not base64!"}'
expect 2 "*at \$ (offset 10): expected ',', not the end" call --json storage.v1.Store/Get '{"key":"x"'
expect 2 "*text after the object" call --json storage.v1.Store/Get '{"key":"x"} {}'
expect 2 "*a string that is not UTF-8" call --json storage.v1.Store/Get "{\"key\":\"$(printf '\xff')\"}"
expect 2 "vbusctl: storage.v1.Store has no method 'Nope' (see vbusctl describe storage.v1.Store)" \
        call --json storage.v1.Store/Nope '{}'
expect 2 "vbusctl: 'storage.v1.Store' is not SERVICE/METHOD" call --json storage.v1.Store '{}'

# A service served without a description, and one not served at all.
bg "$VBUSCTL" serve t.v1.Plain --exec cat 2>"$TMP/serve.log"
wait_grep "# serving t.v1.Plain" "$TMP/serve.log" || fail "vbusctl serve did not start"
expect 1 "vbusctl: describe t.v1.Plain: not-found: t.v1.Plain has 1 server, and none registered a description" \
        describe t.v1.Plain
expect 1 "vbusctl: describe t.v1.Plain: not-found: t.v1.Plain has 1 server, and none*" \
        call --json t.v1.Plain/Echo '{}'
expect 1 "vbusctl: describe t.v1.Absent: not-found: no server serves t.v1.Absent" describe t.v1.Absent
expect 2 "vbusctl: describe no/such: invalid-argument: 'no/such' is not a service name" describe no/such
expect 2 "vbusctl describe: want exactly one SERVICE (see --help)" describe
# The broker's own service is not described (it registers no description of itself).
expect 1 "*no server serves vbus.v1.Broker" describe vbus.v1.Broker
# The broker lived through all of it, and the server still answers.
expect 0 '{"found":true,"value":"eHg="}' call --json storage.v1.Store/Get '{"key":"a1"}'

# The description goes again on every link: after the broker's restart (kill -9), the server
# reconnects by itself and describe answers as before.
broker_kill9
broker_start
for _ in $(seq 1 200); do
        "$VBUSCTL" describe storage.v1.Store >"$TMP/describe2.out" 2>"$TMP/describe2.err" && break
        sleep 0.05
done
grep -qF "  rpc Scan(storage.v1.ScanRequest) returns (stream storage.v1.ScanEntry);" \
        "$TMP/describe2.out" ||
        fail "describe after the broker's restart: $(cat "$TMP/describe2.out" "$TMP/describe2.err")"
ok "describe after the broker's restart: the server registered its description again"
