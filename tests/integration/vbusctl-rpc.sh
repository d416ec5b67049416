#!/usr/bin/env bash
# vbusctl's RPC commands end to end: serve --exec (request on stdin, reply from stdout, the exit
# status mapped to a status, stderr as the message, headers and caller in the environment, an
# output over the message limit), call --header, call --stream against a server-streaming
# method, a refused registration, and usage errors.
. "$(dirname "$0")/lib.sh" "$1"
SC=$B/tests/integration/stream-check
xs_up
broker_start
export VBUS_URL=unix:$SOCK

cat >"$TMP/handler.sh" <<'SH'
case $VBUS_METHOD in
Echo) cat ;;
Env) printf '%s|%s|%s' "$VBUS_HEADER_TRACE_ID" "$VBUS_HEADER_X_Y" "$VBUS_CALLER" ;;
Denied) echo "not for you" >&2; exit 106 ;;
Invalid) exit 103 ;;
Fail) echo "broken" >&2; exit 1 ;;
Big) head -c 2000000 /dev/zero ;;
Signal) kill -KILL $$ ;;
esac
SH
bg "$VBUSCTL" serve t.v1.Shell --exec "sh $TMP/handler.sh" 2>"$TMP/serve.log"
for i in $(seq 1 100); do grep -q "# serving" "$TMP/serve.log" && break; sleep 0.05; done
grep -q "# serving t.v1.Shell" "$TMP/serve.log" || fail "vbusctl serve did not start"

# Runs vbusctl call; $1: expected exit status, $2: expected output (stdout and stderr) glob.
expect() {
        local want_rc=$1 want=$2 out rc
        shift 2
        out=$("$VBUSCTL" call "$@" 2>&1)
        rc=$?
        # shellcheck disable=SC2053 # $want is a pattern
        [[ "$rc" = "$want_rc" && "$out" == $want ]] ||
                fail "vbusctl call $*: exit $rc, '$out' (expected $want_rc, '$want')"
        ok "vbusctl call $*: exit $rc, $(printf '%s' "$out" | head -c 120)"
}

expect 0 "hello" t.v1.Shell/Echo hello
expect 0 "abc|1|local(uid=$(id -u))" t.v1.Shell/Env --header trace-id=abc --header x-y=1 x
expect 0 "||local(uid=$(id -u))" t.v1.Shell/Env x
expect 1 "*t.v1.Shell/Denied: permission-denied: not for you" t.v1.Shell/Denied x
expect 1 "*t.v1.Shell/Invalid: invalid-argument: exit status 103" t.v1.Shell/Invalid x
expect 1 "*t.v1.Shell/Fail: application: broken" t.v1.Shell/Fail x
expect 1 "*resource-exhausted: the command's output is larger than a message (1 MiB)" \
        t.v1.Shell/Big x
expect 1 "*t.v1.Shell/Signal: internal*" t.v1.Shell/Signal x
expect 2 "*--header wants KEY=VALUE*" t.v1.Shell/Echo --header Bad=1 x
expect 2 "*--header wants KEY=VALUE*" t.v1.Shell/Echo --header novalue x
expect 0 "still here" t.v1.Shell/Echo "still here"

# --stream: every message of a server-streaming call, each followed by a newline.
bg "$SC" serve st.v1.Svc --ready "$TMP/ready"
wait_file "$TMP/ready" || fail "stream server not active"
"$VBUSCTL" call --stream st.v1.Svc/Count 5 >"$TMP/stream.out" 2>"$TMP/stream.err" ||
        fail "call --stream: $(cat "$TMP/stream.err")"
# Five 8-byte little-endian sequence numbers, each with a newline: 45 bytes.
[ "$(wc -c <"$TMP/stream.out")" = 45 ] || fail "call --stream printed $(wc -c <"$TMP/stream.out") bytes"
[ "$(od -An -tu1 -j 36 -N 1 "$TMP/stream.out" | xargs)" = 5 ] || fail "the fifth message is not 5"
ok "vbusctl call --stream: 5 messages, in order"
"$VBUSCTL" call --stream nobody.v1.Svc/Count 5 >/dev/null 2>"$TMP/o" && fail "no responders succeeded"
grep -q "not-found: no responders" "$TMP/o" || fail "call --stream, no responders: $(cat "$TMP/o")"
ok "vbusctl call --stream, no responders: $(cat "$TMP/o")"

# A registration the broker refuses ends vbusctl serve with the reason.
out=$("$VBUSCTL" serve vbus.v1.Broker --exec true --timeout 5000 2>&1)
rc=$?
[ "$rc" = 1 ] && [[ "$out" == *"refused"*"permission-denied"* ]] ||
        fail "serve vbus.v1.Broker: exit $rc, '$out'"
ok "vbusctl serve vbus.v1.Broker: exit 1, $out"
