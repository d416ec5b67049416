#!/usr/bin/env bash
# Faults around the guest agent, each mid-traffic; the right parties see the right status,
# nothing hangs, gaps are reported:
#  1. kill -9 of a local process: only its session ends (the broker logs it); a steady pair of
#     other processes in the same guest receives every message.
#  2. kill -9 of the agent: a dom0 caller of a server behind it gets UNAVAILABLE at once, a local
#     caller of a dom0 server gets UNAVAILABLE (its link dropped); the local subscriber reconnects
#     when a new agent comes and flags exactly its first message after the gap.
#  3. kill -9 of the broker: the agent closes its local connections and reconnects when the
#     broker is back; the local subscriber resumes and flags exactly the message after the gap.
#  4. A second vchand for a live socket (broker or agent) refuses to start, names the live one,
#     and leaves its socket and the guest's vchan alone.
. "$(dirname "$0")/lib.sh" "$1"
RPC=$B/tests/integration/rpc-check
xs_up
g1=$(guest alpha)
broker_start
AGSOCK=$TMP/alpha.sock
AGENT_PID=""
agent_start() {
        "$XS" run --domid "$g1" -- "$VCHAND" --agent --socket "$AGSOCK" --upstream vchan:0 \
                >>"$TMP/agent.log" 2>&1 &
        AGENT_PID=$!
        PIDS="$PIDS $AGENT_PID"
}
agent_start
wait_grep "connected to the broker" "$TMP/agent.log" || fail "the agent did not connect"
in_g1() {
        as_dom "$g1" env VBUS_URL="unix:$AGSOCK" "$@"
}
bg_g1() {
        bg "$XS" run --domid "$g1" -- env VBUS_URL="unix:$AGSOCK" "$@"
}
dom0() {
        env VBUS_URL="unix:$SOCK" "$@"
}

# 1. A local process killed: only its session ends.
bg_g1 "$CHECK" sub 'steady.>' 300 --timeout 60000 --ready "$TMP/r1" >"$TMP/steady.out" 2>&1
p_steady=$!
wait_file "$TMP/r1" || fail "steady subscriber not active"
bg_g1 "$CHECK" pub steady.x 300 128 --rate 100
p_steady_pub=$!
bg_g1 "$CHECK" pub victim.x 1000000 256 --rate 2000
victim=$!
sleep 0.5
kill -9 "$victim"
wait "$victim" 2>/dev/null
wait_grep "dom$g1(alpha): session [0-9]*: ended: session ended by its agent" "$TMP/broker.log" ||
        fail "the broker did not see the killed process's session end"
grep -q "dom$g1(alpha): disconnected" "$TMP/broker.log" && fail "the domain's link went with one process"
wait "$p_steady_pub" || fail "steady publisher failed"
wait "$p_steady" || fail "steady pair disturbed: $(cat "$TMP/steady.out")"
grep -q "^received 300 dropped 0 corrupt 0 reordered 0 gaps 0" "$TMP/steady.out" ||
        fail "steady: $(cat "$TMP/steady.out")"
ok "kill -9 of a local process: only its session ended; the steady pair beside it got 300 of 300"

# 1b. A process that publishes and closes at once, reading nothing: what the agent writes
# toward it fails, and every message it sent before it closed still reaches the broker (500
# frames: several of the agent's turns, so its answers cross the close).
RAW=$B/tests/integration/rawagent
for round in 1 2 3; do
        bg env VBUS_URL="unix:$SOCK" "$VBUSCTL" sub 'burst.>' --count 500 --timeout 30000 \
                >"$TMP/burst.$round.out" 2>&1
        p_burst=$!
        wait_grep "subscribed" "$TMP/burst.$round.out" || fail "burst subscriber not active"
        as_dom "$g1" "$RAW" "$AGSOCK" burst 500 >"$TMP/raw-burst.out" 2>&1 ||
                fail "burst: $(cat "$TMP/raw-burst.out")"
        wait "$p_burst" || fail "round $round: $(grep -c '^burst.x' "$TMP/burst.$round.out") of 500: $(tail -n 2 "$TMP/burst.$round.out")"
        [ "$(grep -c '^burst.x ' "$TMP/burst.$round.out")" = 500 ] || fail "round $round: not 500"
        grep -q "^burst.x .* m500$" "$TMP/burst.$round.out" || fail "round $round: no m500"
done
ok "a process that published 500 messages and closed at once, three times: 500 of 500 each"

# 2. The agent killed with calls in flight both ways and a subscriber behind it.
bg dom0 "$RPC" serve zero.Svc zero --delay 60000 --ready "$TMP/rz" >"$TMP/zero-srv.out" 2>&1
wait_file "$TMP/rz" || fail "dom0 server not ready"
bg_g1 "$RPC" serve alpha.Svc alpha --delay 60000 --ready "$TMP/ra" >"$TMP/alpha-srv.out" 2>&1
wait_file "$TMP/ra" || fail "guest server not ready"
bg dom0 "$RPC" kill-wait alpha.Svc/Slow --timeout 50000 >"$TMP/kw-dom0.out" 2>&1
p_kw0=$!
bg_g1 "$RPC" kill-wait zero.Svc/Slow --timeout 50000 >"$TMP/kw-g1.out" 2>&1
p_kw1=$!
bg_g1 "$CHECK" sub 'gap.>' 13 --gaps-at 4 --timeout 60000 --ready "$TMP/rg" --progress "$TMP/pg" \
        >"$TMP/gap.out" 2>&1
p_gap=$!
wait_file "$TMP/rg" || fail "gap subscriber not active"
wait_grep "caller" "$TMP/alpha-srv.out" || fail "the guest server did not get its call"
wait_grep "caller" "$TMP/zero-srv.out" || fail "the dom0 server did not get its call"
dom0 "$CHECK" pub gap.before 3 64 >/dev/null || fail "publish before the kill"
wait_grep "^3$" "$TMP/pg" || fail "the subscriber did not get 3 messages before the kill"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
wait "$p_kw0"
grep -q "^unavailable end-ms" "$TMP/kw-dom0.out" || fail "dom0 caller: $(cat "$TMP/kw-dom0.out")"
wait "$p_kw1"
grep -q "^unavailable end-ms" "$TMP/kw-g1.out" || fail "guest caller: $(cat "$TMP/kw-g1.out")"
wait_grep "dom$g1(alpha): disconnected" "$TMP/broker.log" || fail "the broker kept the dead agent's link"
ok "kill -9 of the agent: the dom0 caller of a guest server and the guest's caller both got UNAVAILABLE"
agent_start
wait_grep "connected to the broker" "$TMP/agent.log" || fail "the new agent did not connect"
for i in $(seq 1 100); do
        dom0 "$CHECK" pub gap.after 1 64 --start $((i + 3)) >/dev/null 2>&1 || fail "publish after"
        grep -q "received" "$TMP/gap.out" 2>/dev/null && break
        kill -0 "$p_gap" 2>/dev/null || break
        sleep 0.2
done
wait "$p_gap" || fail "gap after the agent restarted: $(cat "$TMP/gap.out")"
ok "a new agent: the local subscriber reconnected by itself and flagged exactly its first message after the gap"

# 3. The broker killed: the agent and its processes come back with it.
bg_g1 "$CHECK" sub 'bgap.>' 13 --gaps-at 4 --timeout 60000 --ready "$TMP/rb" --progress "$TMP/pb" \
        >"$TMP/bgap.out" 2>&1
p_bgap=$!
wait_file "$TMP/rb" || fail "subscriber not active"
dom0 "$CHECK" pub bgap.before 3 64 >/dev/null || fail "publish before the broker's kill"
wait_grep "^3$" "$TMP/pb" || fail "the subscriber did not get 3 messages before the kill"
n_conn=$(grep -c "connected to the broker" "$TMP/agent.log")
broker_kill9
wait_grep "link to the broker lost" "$TMP/agent.log" || fail "the agent did not see the broker go"
broker_start
for i in $(seq 1 300); do
        [ "$(grep -c "connected to the broker" "$TMP/agent.log")" -gt "$n_conn" ] && break
        sleep 0.05
done
[ "$(grep -c "connected to the broker" "$TMP/agent.log")" -gt "$n_conn" ] ||
        fail "the agent did not reconnect to the new broker"
for i in $(seq 1 100); do
        dom0 "$CHECK" pub bgap.after 1 64 --start $((i + 3)) >/dev/null 2>&1
        grep -q "received" "$TMP/bgap.out" 2>/dev/null && break
        kill -0 "$p_bgap" 2>/dev/null || break
        sleep 0.2
done
wait "$p_bgap" || fail "gap after the broker restarted: $(cat "$TMP/bgap.out")"
ok "kill -9 of the broker: the agent reconnected, the local subscriber resumed and flagged its gap"

# 4. A second instance.
out=$("$XS" run --domid 0 -- "$VCHAND" --socket "$SOCK" 2>&1)
st=$?
[ $st = 1 ] || fail "a second broker exited with $st: $out"
echo "$out" | grep -q "another vchand (pid $BROKER_PID) already serves $SOCK" ||
        fail "a second broker says: $out"
out=$("$XS" run --domid "$g1" -- "$VCHAND" --agent --socket "$AGSOCK" 2>&1)
st=$?
[ $st = 1 ] || fail "a second agent exited with $st: $out"
echo "$out" | grep -q "another vchand (pid $AGENT_PID) already serves $AGSOCK" ||
        fail "a second agent says: $out"
{ [ -S "$SOCK" ] && [ -S "$AGSOCK" ]; } || fail "a second instance removed a live socket"
as_dom "$g1" xenstore-read "/local/domain/$g1/data/vchan/0/vbus/ring-ref" >/dev/null ||
        fail "the guest's vchan keys are gone"
in_g1 "$RPC" call zero.Svc/Echo still --count 2 >"$TMP/still.out" || fail "after a second instance: $(cat "$TMP/still.out")"
ok "a second broker and a second agent refused to start ($(echo "$out" | head -n 1)); both sockets and the guest's vchan untouched"

kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || fail "the agent exited with status $? after SIGTERM"
kill -TERM "$BROKER_PID"
wait "$BROKER_PID" || fail "broker exited with status $? after SIGTERM"
BROKER_PID=""
ok "agent and broker exited cleanly"
