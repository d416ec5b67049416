#!/usr/bin/env bash
# A server's descriptions are charged to it (docs/reflection.md): with peer_memory at its
# smallest (1 MiB), a local peer that serves service after service, each with a valid description
# of about 60 KiB, is refused (RESET RESOURCE_EXHAUSTED of the SERVE stream whose description
# does not fit) once its budget is spent, well before 40; the descriptions it holds stay
# answerable while it is connected, the refused one is gone, and once it leaves nothing of it
# is kept. A bystander's description is untouched throughout.
. "$(dirname "$0")/lib.sh" "$1"
EX=$B/examples/kvstore
HOSTILE=$B/tests/hostile/hostile
xs_up
echo "peer_memory = 1048576" >"$TMP/vchand.conf"
broker_start --config "$TMP/vchand.conf"
export VBUS_URL=unix:$SOCK

bg "$EX/kvstore-server" --ready "$TMP/ready" >"$TMP/server.out" 2>&1
wait_file "$TMP/ready" || fail "kvstore-server never became active"

bg "$HOSTILE" "unix:$SOCK" describe-many x.v1 40 --seconds 60 --linger 30 >"$TMP/evil.out" 2>&1
p_evil=$!
wait_grep "^refused\|^survived\|^disconnected" "$TMP/evil.out" || fail "attacker: $(cat "$TMP/evil.out")"
grep -q "^refused resource-exhausted on serve" "$TMP/evil.out" ||
        fail "the descriptions were not bounded by peer_memory: $(cat "$TMP/evil.out")"
k=$(sed -n 's/^described \([0-9]*\)$/\1/p' "$TMP/evil.out")
[ -n "$k" ] && [ "$k" -ge 2 ] && [ "$k" -lt 40 ] || fail "described '$k': $(cat "$TMP/evil.out")"
ok "a peer serving with 60 KiB descriptions was refused at its ${k}th within 1 MiB"
grep -q "description of x.v1.S$((k - 1)) refused: this link holds too much (peer_memory)" \
        "$TMP/broker.log" || fail "the broker did not log the refusal"
# The first is kept and answered; the refused one left with its stream.
"$VBUSCTL" describe x.v1.S0 >"$TMP/s0.out" 2>&1 || fail "describe x.v1.S0: $(cat "$TMP/s0.out")"
grep -q "^service x.v1.S0 {" "$TMP/s0.out" || fail "describe x.v1.S0: $(head -3 "$TMP/s0.out")"
out=$("$VBUSCTL" describe "x.v1.S$((k - 1))" 2>&1)
[ "$out" = "vbusctl: describe x.v1.S$((k - 1)): not-found: no server serves x.v1.S$((k - 1))" ] ||
        fail "the refused service: '$out'"
ok "x.v1.S0 is described, x.v1.S$((k - 1)) is not served"
# The bystander's description is untouched.
"$VBUSCTL" describe storage.v1.Store | grep -q "^service storage.v1.Store" ||
        fail "the bystander's description"
kill "$p_evil" 2>/dev/null
wait "$p_evil" 2>/dev/null
out=$("$VBUSCTL" describe x.v1.S0 2>&1)
[ "$out" = "vbusctl: describe x.v1.S0: not-found: no server serves x.v1.S0" ] ||
        fail "after the attacker left: '$out'"
"$VBUSCTL" describe storage.v1.Store | grep -q "^service storage.v1.Store" ||
        fail "the bystander's description after the attacker left"
ok "once the attacker left nothing of it is described; the bystander still is"
