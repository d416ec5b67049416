#!/usr/bin/env bash
# RPC across hosts through the bridges and a 3-node NATS cluster: ok with the caller's identity
# and headers carried across, application and other error statuses with their messages,
# deadline exceeded (enforced on the caller's side and passed to the server), no responders at
# once, a service offered but not served, a streaming method (unsupported, clearly), a
# cancellation that reaches the serving host, and a plain NATS requester.
. "$(dirname "$0")/lib.sh" "$1"
nats_cluster 3
host_up alpha
host_up beta

cat >"$TMP/alpha.conf" <<CONF
host alpha
nats ${NATS_URL[1]} ${NATS_URL[2]} ${NATS_URL[3]}
offer calc.v1.Calc
offer idle.v1.Idle
offer st.v1.Svc
CONF
cat >"$TMP/beta.conf" <<CONF
host beta
nats ${NATS_URL[3]} ${NATS_URL[2]}
import-service alpha calc.v1.Calc
import-service * calc.v1.Calc any.calc.v1.Calc
import-service alpha idle.v1.Idle
import-service alpha nobody.v1.Svc
import-service alpha st.v1.Svc
stream-method st.v1.Svc/Count server
stream-method st.v1.Svc/Hold server
stream-method calc.v1.Calc/Watch bidi
CONF
bridge_start alpha "$TMP/alpha.conf"
bridge_start beta "$TMP/beta.conf"

server=$(guest alpha calc)
client=$(guest beta client)
cat >"$TMP/handler.sh" <<'SH'
case $VBUS_METHOD in
Echo) cat ;;
Who) printf '%s|%s|%s' "$VBUS_CALLER" "$VBUS_HEADER_VBUS_BRIDGE_ORIGIN" "$VBUS_HEADER_TRACE_ID" ;;
Fail) echo "broken" >&2; exit 1 ;;
Denied) echo "not for you" >&2; exit 106 ;;
Slow) echo "$VBUS_TIMEOUT_MS" >"$SLOW_OUT"; sleep 3; echo late ;;
esac
SH
XENSIM_DIR=$TMP/alpha/xs "$XS" run --domid "$server" -- env VBUS_URL=vchan:0 SLOW_OUT="$TMP/slow.out" \
        "$VBUSCTL" serve calc.v1.Calc --exec "sh $TMP/handler.sh" 2>"$TMP/serve.err" &
PIDS="$PIDS $!"
wait_grep "# serving" "$TMP/serve.err" || fail "vbusctl serve did not start"

# Runs vbusctl call in beta's guest; $1: expected exit status, $2: output glob.
expect() {
        local want_rc=$1 want=$2 out rc
        shift 2
        out=$(as_guest beta "$client" "$VBUSCTL" call "$@" 2>&1)
        rc=$?
        # shellcheck disable=SC2053 # $want is a pattern
        [[ "$rc" = "$want_rc" && "$out" == $want ]] ||
                fail "call $*: exit $rc, '$out' (expected $want_rc, '$want')"
        ok "call $*: exit $rc, $(printf '%s' "$out" | head -c 150)"
}

# The first call may race the propagation of the offer's interest along the routes.
for i in $(seq 1 50); do
        as_guest beta "$client" "$VBUSCTL" call calc.v1.Calc/Echo ping >/dev/null 2>&1 && break
        sleep 0.1
done
expect 0 "hello across" calc.v1.Calc/Echo "hello across"
expect 0 "local(uid=$(id -u))|beta:dom$client(client)|abc" calc.v1.Calc/Who --header trace-id=abc x
expect 0 "hello any" any.calc.v1.Calc/Echo "hello any"
expect 1 "*calc.v1.Calc/Fail: application: broken" calc.v1.Calc/Fail x
expect 1 "*calc.v1.Calc/Denied: permission-denied: not for you" calc.v1.Calc/Denied x

# No responders: nobody offers nobody.v1.Svc; at once, not at the deadline.
start=$(date +%s%N)
expect 1 "*not-found: no responders*" --timeout 10000 nobody.v1.Svc/Get x
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -lt 3000 ] || fail "no responders took $ms ms"
ok "no responders in $ms ms"

# Offered by alpha's bridge but served by nobody on alpha: alpha's broker says not-found.
expect 1 "*idle.v1.Idle/Get: not-found*" idle.v1.Idle/Get x

# A bidirectional method: a clear unsupported.
expect 1 "*unsupported: vbus-bridge: client-streaming and bidirectional calls across hosts are not implemented*" \
        --stream calc.v1.Calc/Watch x

# Server-streaming across hosts: every message, in order, then the end.
XENSIM_DIR=$TMP/alpha/xs VBUS_URL=unix:$TMP/alpha/broker.sock \
        "$B/tests/integration/stream-check" serve st.v1.Svc --ready "$TMP/st.ready" >"$TMP/st.out" 2>&1 &
PIDS="$PIDS $!"
wait_file "$TMP/st.ready" || fail "stream server not active"
for n in 5 3000; do
        as_guest beta "$client" "$VBUSCTL" call --timeout 20000 --stream st.v1.Svc/Count "$n" \
                >"$TMP/stream.out" 2>"$TMP/stream.err" || fail "call --stream Count $n: $(cat "$TMP/stream.err")"
        [ "$(wc -c <"$TMP/stream.out")" = $((9 * n)) ] || fail "Count $n: $(wc -c <"$TMP/stream.out") bytes"
        [ "$(od -An -tu4 -j $((9 * (n - 1))) -N 4 "$TMP/stream.out" | xargs)" = "$n" ] ||
                fail "Count $n: the last message is not $n"
        ok "server-streaming across hosts: Count $n: $n messages in order"
done
# A stream that never ends by itself: the caller's deadline ends it on both hosts.
start=$(date +%s%N)
as_guest beta "$client" "$VBUSCTL" call --timeout 1000 --stream st.v1.Svc/Hold x \
        >"$TMP/hold.out" 2>"$TMP/hold.err" && fail "Hold ended well"
ms=$((($(date +%s%N) - start) / 1000000))
grep -q "deadline-exceeded" "$TMP/hold.err" || fail "Hold: $(cat "$TMP/hold.err")"
[ "$ms" -lt 2500 ] || fail "Hold ended after $ms ms"
[ "$(wc -l <"$TMP/hold.out")" -ge 10 ] || fail "Hold: only $(wc -l <"$TMP/hold.out") messages before the deadline"
# The server on alpha saw its call end (by its own deadline or by the cancel from beta).
wait_grep "ended Hold" "$TMP/st.out" || fail "the Hold call on alpha did not end"
ok "server-streaming across hosts: deadline after $ms ms, $(wc -l <"$TMP/hold.out") messages; alpha's server: $(grep -a "ended Hold" "$TMP/st.out")"

# Deadline: 1 s for a call that takes 3 s; the server was told the time left.
start=$(date +%s%N)
expect 1 "*deadline-exceeded*" --timeout 1000 calc.v1.Calc/Slow x
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -lt 2500 ] || fail "deadline exceeded after $ms ms"
left=$(cat "$TMP/slow.out")
[ -n "$left" ] && [ "$left" -le 1000 ] && [ "$left" -gt 500 ] || fail "server saw VBUS_TIMEOUT_MS=$left"
ok "deadline exceeded after $ms ms; the server on alpha saw $left ms left"
sleep 2.5 # the slow command ends; vbusctl serve runs one command at a time

# Cancellation: the caller goes away; the serving bridge cancels its local call.
before=$(metric alpha rpc_in_cancelled)
# A dom0 caller (its death is seen at once on the broker's socket), started directly so that
# $! is vbusctl itself.
VBUS_URL=unix:$TMP/beta/broker.sock "$VBUSCTL" call --timeout 20000 calc.v1.Calc/Slow x \
        >/dev/null 2>"$TMP/cancel.err" &
cpid=$!
sleep 0.7
kill -9 "$cpid"
wait "$cpid" 2>/dev/null
for i in $(seq 1 40); do
        [ "$(metric alpha rpc_in_cancelled)" -gt "$before" ] && break
        sleep 0.1
done
[ "$(metric alpha rpc_in_cancelled)" -gt "$before" ] || fail "the cancellation did not reach alpha"
ok "a caller killed mid-call: alpha's bridge cancelled the local call ($(metric beta rpc_out_cancelled) on beta)"
sleep 2.5

# A plain NATS requester calls the offered service directly (the subject scheme is public).
out=$("$NCHECK" req "${NATS_URL[2]}" vbus-rpc.alpha.calc.v1.Calc.Echo "plain" 5000)
[ "$out" = "status=1 message=- | plain" ] || fail "plain NATS request: $out"
ok "plain NATS request: $out"
out=$("$NCHECK" req "${NATS_URL[2]}" vbus-rpc.alpha.calc.v1.Calc.Fail "plain" 5000)
[ "$out" = "status=10 message=broken | " ] || fail "plain NATS request: $out"
ok "plain NATS request, application error: $out"

[ "$(metric beta rpc_out_no_responders)" = 1 ] || fail "rpc_out_no_responders"
[ "$(metric beta rpc_out_deadline_exceeded)" -ge 1 ] || fail "rpc_out_deadline_exceeded"
ok "metrics: beta $(grep rpc_out "$TMP/beta/metrics" | tr '\n' ' ')"
bridge_stop alpha || fail "alpha's bridge did not exit cleanly"
bridge_stop beta || fail "beta's bridge did not exit cleanly"
