#!/usr/bin/env bash
# The guest agent (vchand --agent): many processes of one guest share the domain's one vchan,
# each a session of its own at the broker.
#  1. Two processes in one guest, through the agent: a subscriber and a publisher, a server and
#     a caller. Each is stamped with its domain (trusted), and what the agent says about the
#     process (uid, pid, command) comes as claims, apart.
#  2. 50 processes of one guest at once: 10 BLOCK subscribers, 20 publishers, 5 servers and 15
#     callers; every count exact.
#  3. A frozen local BLOCK subscriber (SIGSTOP) with a publisher held back by it does not stop
#     another process's calls, nor another subscriber, in the same guest.
. "$(dirname "$0")/lib.sh" "$1"
RPC=$B/tests/integration/rpc-check
xs_up
g1=$(guest alpha)
broker_start
AGSOCK=$TMP/alpha.sock
"$XS" run --domid "$g1" -- "$VCHAND" --agent --socket "$AGSOCK" --upstream vchan:0 \
        >"$TMP/agent.log" 2>&1 &
PIDS="$PIDS $!"
wait_grep "connected to the broker" "$TMP/agent.log" || fail "the agent did not connect"
ok "the agent holds dom$g1's vchan and serves $AGSOCK"
in_g1() {
        as_dom "$g1" env VBUS_URL="unix:$AGSOCK" "$@"
}
# In the background, with $! the program itself (xensim run and env exec it), for signals.
bg_g1() {
        bg "$XS" run --domid "$g1" -- env VBUS_URL="unix:$AGSOCK" "$@"
}

# 1. Two processes, and their identities.
bg in_g1 "$VBUSCTL" sub 'two.>' --count 2 >"$TMP/two-sub.out" 2>&1
p_sub=$!
wait_grep "session 1: started" "$TMP/broker.log" || fail "the subscriber's session did not start"
sleep 0.3
in_g1 "$VBUSCTL" pub two.x hello >/dev/null || fail "publish through the agent"
in_g1 "$VBUSCTL" pub two.y again >/dev/null || fail "publish through the agent"
wait "$p_sub" || fail "subscriber: $(cat "$TMP/two-sub.out")"
grep -q "dom$g1(alpha) claims(session=[0-9]*,uid=0,pid=[0-9]*,command=vbusctl)" "$TMP/two-sub.out" ||
        fail "no claims next to the domain: $(cat "$TMP/two-sub.out")"
grep -q "local(" "$TMP/two-sub.out" && fail "a guest process was stamped local: $(cat "$TMP/two-sub.out")"
ok "two processes in one guest: pub/sub, stamped dom$g1(alpha) with the agent's claims apart"
bg in_g1 "$RPC" serve two.Echo alpha --ready "$TMP/r-srv" >"$TMP/two-srv.out" 2>&1
wait_file "$TMP/r-srv" || fail "server not ready"
in_g1 "$RPC" call two.Echo/Echo hi --count 3 >"$TMP/two-call.out" || fail "calls: $(cat "$TMP/two-call.out")"
[ "$(grep -c '^ok alpha:hi$' "$TMP/two-call.out")" = 3 ] || fail "calls: $(cat "$TMP/two-call.out")"
grep -q "caller dom$g1(alpha)" "$TMP/two-srv.out" || fail "caller identity: $(cat "$TMP/two-srv.out")"
ok "two processes in one guest: a server and a caller, the caller seen as dom$g1(alpha)"

# 2. 50 processes at once.
subs=""
for i in $(seq 1 10); do
        bg in_g1 "$CHECK" sub 'load.>' 200 --block --sender "dom$g1(alpha)" --timeout 120000 \
                --ready "$TMP/rs$i" >"$TMP/load-sub$i.out" 2>&1
        subs="$subs $!"
done
srvs=""
for i in $(seq 1 5); do
        bg in_g1 "$RPC" serve load.Svc "s$i" --ready "$TMP/rv$i" >"$TMP/load-srv$i.out" 2>&1
        srvs="$srvs $!"
done
for i in $(seq 1 10); do wait_file "$TMP/rs$i" || fail "load subscriber $i not active"; done
for i in $(seq 1 5); do wait_file "$TMP/rv$i" || fail "load server $i not ready"; done
pubs=""
for i in $(seq 1 20); do
        bg in_g1 "$CHECK" pub "load.p$i" 10 256
        pubs="$pubs $!"
done
calls=""
for i in $(seq 1 15); do
        bg in_g1 "$RPC" call load.Svc/Echo "c$i" --count 10 --timeout 60000 >"$TMP/load-call$i.out" 2>&1
        calls="$calls $!"
done
for p in $pubs; do wait "$p" || fail "a load publisher failed"; done
for p in $calls; do wait "$p" || fail "a load caller failed: $(cat "$TMP"/load-call*.out | grep -v '^ok' | head)"; done
n_ok=$(cat "$TMP"/load-call*.out | grep -c '^ok s[1-5]:c[0-9]*$')
[ "$n_ok" = 150 ] || fail "$n_ok of 150 calls answered ok"
i=0
for p in $subs; do
        i=$((i + 1))
        wait "$p" || fail "load subscriber $i: $(cat "$TMP/load-sub$i.out")"
        grep -q "^received 200 dropped 0 corrupt 0 reordered 0 gaps 0" "$TMP/load-sub$i.out" ||
                fail "load subscriber $i: $(cat "$TMP/load-sub$i.out")"
done
for p in $srvs; do kill "$p" 2>/dev/null; done
ok "50 processes in one guest: 10 subscribers got 200 of 200 each, 150 of 150 calls ok"

# 3. A frozen BLOCK subscriber holds back only the publisher whose messages it holds.
bg_g1 "$CHECK" sub 'frozen.>' 1000000 --block --timeout 600000 --ready "$TMP/rf" \
        >"$TMP/frozen.out" 2>&1
p_frozen=$!
wait_file "$TMP/rf" || fail "frozen subscriber not active"
kill -STOP "$p_frozen"
# 8 MiB of messages: far more than the subscriber's window; the publisher is held back.
bg_g1 "$CHECK" pub frozen.x 8192 1024 >"$TMP/frozen-pub.out" 2>&1
p_fpub=$!
bg in_g1 "$RPC" serve frozen.Svc live --ready "$TMP/rv" >"$TMP/frozen-srv.out" 2>&1
wait_file "$TMP/rv" || fail "server beside the frozen subscriber not ready"
bg in_g1 "$CHECK" sub 'other.>' 50 --timeout 60000 --ready "$TMP/ro" >"$TMP/other.out" 2>&1
p_other=$!
wait_file "$TMP/ro" || fail "other subscriber not active"
in_g1 "$RPC" call frozen.Svc/Echo beside --count 20 --sequential --timeout 30000 \
        >"$TMP/frozen-call.out" 2>&1 || fail "calls beside a frozen subscriber: $(cat "$TMP/frozen-call.out")"
[ "$(grep -c '^ok live:beside$' "$TMP/frozen-call.out")" = 20 ] || fail "calls: $(cat "$TMP/frozen-call.out")"
in_g1 "$CHECK" pub other.x 50 64 >/dev/null || fail "publish beside a frozen subscriber"
wait "$p_other" || fail "other subscriber: $(cat "$TMP/other.out")"
kill -0 "$p_fpub" 2>/dev/null || fail "the publisher to the frozen subscriber was not held back"
ok "a frozen BLOCK subscriber: 20 of 20 calls and 50 of 50 messages of other processes in the same guest went through, its publisher waits"
kill -CONT "$p_frozen"
wait "$p_fpub" || fail "the held publisher did not finish once the subscriber thawed"
ok "thawed: the held publisher finished"
kill "$p_frozen" 2>/dev/null
grep -q "ERROR: .*Sanitizer" "$TMP/agent.log" "$TMP/broker.log" && fail "sanitizer report"
ok "done"
