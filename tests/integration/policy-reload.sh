#!/usr/bin/env bash
# Policy reload under traffic. While a guest publishes a numbered stream to two subscribers:
# a policy file with an error is refused on SIGHUP with its FILE:LINE:COLUMN and the old policy
# stays in force (nothing revoked); then a valid policy that no longer lets one subscriber read,
# nor one server serve, revokes exactly those streams with permission-denied, while the other
# subscriber receives every message, in order, and the publisher is not disturbed. vchand
# --check-policy agrees with the broker on both files.
. "$(dirname "$0")/lib.sh" "$1"
PROBE=$B/tests/integration/policy-probe
N=600
xs_up
pub=$(guest pub)
keep=$(guest keep)
lose=$(guest lose)
srv=$(guest srv)
srv2=$(guest srv2)
mkdir -p "$TMP/policy"
P=$TMP/policy/20-test.policy
cat >"$P" <<EOF
publish   a.>          pub     allow
subscribe a.>          keep    allow
subscribe a.>          lose    allow
serve     svc.S        srv     allow
call      svc.S        @local  allow
subscribe policy-probe.sync * allow
EOF
BROKER_POLICY=$TMP/policy broker_start

VBUS_URL=vchan:0 as_dom "$keep" "$CHECK" sub 'a.>' $N --block --ready "$TMP/keep.ready" \
        --progress "$TMP/keep.progress" >"$TMP/keep.out" 2>&1 &
p_keep=$!
PIDS="$PIDS $p_keep"
VBUS_URL=vchan:0 as_dom "$lose" "$VBUSCTL" sub 'a.>' --hex >"$TMP/lose.out" 2>"$TMP/lose.log" &
p_lose=$!
PIDS="$PIDS $p_lose"
VBUS_URL=vchan:0 as_dom "$srv" "$VBUSCTL" serve svc.S --exec cat >"$TMP/srv.out" 2>"$TMP/srv.log" &
p_srv=$!
PIDS="$PIDS $p_srv"
wait_file "$TMP/keep.ready" || fail "keep's subscription not active"
wait_grep '# subscribed to' "$TMP/lose.log" || fail "lose's subscription not active"
wait_grep '# serving' "$TMP/srv.log" || fail "srv's server not active"
out=$(VBUS_URL="unix:$SOCK" "$PROBE" call svc.S/Echo)
[ "$out" = ok ] || fail "call before the reload: '$out'"

VBUS_URL=vchan:0 as_dom "$pub" "$CHECK" pub a.x $N 64 --rate 200 >"$TMP/pub.out" 2>&1 &
p_pub=$!
PIDS="$PIDS $p_pub"
# Wait until the traffic runs (a quarter of it delivered).
for i in $(seq 1 300); do
        [ "$(cat "$TMP/keep.progress" 2>/dev/null || echo 0)" -ge $((N / 4)) ] && break
        sleep 0.05
done
[ "$(cat "$TMP/keep.progress")" -ge $((N / 4)) ] || fail "no traffic"

# A broken file: refused with its position, the old policy stays.
printf 'subscribe a.> keep allow\nserve svc.S srv alow\n' >"$P.new"
mv "$P.new" "$P"
"$VCHAND" --check-policy "$TMP/policy" >"$TMP/check-bad.out" 2>&1 && fail "--check-policy accepted a bad file"
grep -q "$P:2:17: expected allow or deny" "$TMP/check-bad.out" || fail "--check-policy said: $(cat "$TMP/check-bad.out")"
kill -HUP "$BROKER_PID"
wait_grep "policy reload failed, the previous policy stays in force: $P:2:17: expected allow or deny" \
        "$TMP/broker.log" || fail "no reload error with the position"
kill -0 "$p_lose" || fail "lose's subscriber ended after a failed reload"
ok "a file with an error: --check-policy and SIGHUP both report $P:2:17; the old policy stays"

# The fixed file drops lose's subscription and srv's service.
cat >"$P.new" <<EOF
publish   a.>          pub     allow
subscribe a.>          keep    allow
call      svc.S        @local  allow
subscribe policy-probe.sync * allow
serve     svc2.S       srv2    allow
call      svc2.S       @local  allow
EOF
mv "$P.new" "$P"
"$VCHAND" --check-policy "$TMP/policy" >"$TMP/check-ok.out" 2>&1 || fail "--check-policy: $(cat "$TMP/check-ok.out")"
kill -HUP "$BROKER_PID"
wait_grep "policy reloaded: 6 rules from $TMP/policy, 2 streams revoked" "$TMP/broker.log" ||
        fail "the reload did not revoke 2 streams"
timeout 20 tail --pid="$p_lose" -f /dev/null
grep -q "permission-denied" "$TMP/lose.log" || fail "lose's subscriber was not told: $(cat "$TMP/lose.log")"
wait_grep "permission-denied" "$TMP/srv.log" || fail "srv was not told: $(cat "$TMP/srv.log")"
grep -q "policy: subscribe 'a.>': default deny (stream revoked)" "$TMP/broker.log" ||
        fail "no log line for the revoked subscription"
ok "reload revoked lose's subscription and srv's SERVE with permission-denied"

wait "$p_pub" || fail "the publisher: $(cat "$TMP/pub.out")"
wait "$p_keep" || fail "keep's subscriber: $(cat "$TMP/keep.out")"
grep -q "^received $N dropped 0 corrupt 0 reordered 0" "$TMP/keep.out" ||
        fail "keep's subscriber: $(cat "$TMP/keep.out")"
ok "keep received all $N messages in order across both reloads; the publisher was not disturbed"
out=$(VBUS_URL="unix:$SOCK" "$PROBE" call svc.S/Echo)
[ "$out" = not-found ] || fail "call after srv was revoked: '$out'"
ok "a call after the reload finds no server (not-found)"

# One caller that keeps calling across a reload: a decision it was given (and that the broker
# caches for its next calls of the same method) must not outlive the policy that gave it.
VBUS_URL=vchan:0 as_dom "$srv2" "$B/tests/integration/rpc-check" serve svc2.S srv2 --delay 100 \
        --ready "$TMP/srv2.ready" >"$TMP/srv2.out" 2>&1 &
PIDS="$PIDS $!"
wait_file "$TMP/srv2.ready" || fail "srv2 not serving"
VBUS_URL="unix:$SOCK" "$B/tests/integration/rpc-check" call svc2.S/Slow x --count 60 --sequential \
        >"$TMP/seq.out" 2>&1 &
p_seq=$!
PIDS="$PIDS $p_seq"
wait_grep '^ok srv2' "$TMP/seq.out" || fail "no call answered before the reload"
grep -v 'call      svc2.S' "$P" >"$P.new"
mv "$P.new" "$P"
kill -HUP "$BROKER_PID"
wait_grep "policy reloaded: 5 rules" "$TMP/broker.log" || fail "third reload"
wait "$p_seq"
n_ok=$(grep -c '^ok srv2' "$TMP/seq.out")
n_denied=$(grep -c '^permission-denied' "$TMP/seq.out")
# In order: answered calls, then denied ones (the one in flight at the reload is revoked).
order=$(awk '{ print $1 }' "$TMP/seq.out" | uniq | tr '\n' ' ')
[ "$order" = "ok permission-denied " ] && [ $((n_ok + n_denied)) = 60 ] ||
        fail "calls across the reload: $n_ok ok, $n_denied denied, in the order '$order'"
ok "a caller's 60 calls across a reload: $n_ok answered, then $n_denied permission-denied"
