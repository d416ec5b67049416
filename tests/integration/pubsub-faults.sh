#!/usr/bin/env bash
# Faults: a guest killed with SIGKILL mid-stream, a domain destroyed, a guest that sends
# garbage, and the broker itself killed with SIGKILL and restarted. Each time the broker logs the
# event with the guest's identity, the other guests go on undisturbed, and (for the broker) the
# guests reconnect by themselves and report the gap. The broker must exit cleanly at the end (a
# sanitizer build fails the run on any leak).
. "$(dirname "$0")/lib.sh" "$1"
VCHAN_CAT=$B/clients/vchan-cat/vchan-cat
xs_up
gpub=$(guest pub)
gsub=$(guest sub)
gvic=$(guest victim)
gbad=$(guest bad)
broker_start

# A steady pair that must never notice anything: 400 messages at 100/s while the faults happen.
bg as_dom "$gsub" env VBUS_URL=vchan:0 "$CHECK" sub 'steady.>' 400 --timeout 60000 \
        --ready "$TMP/r1" >"$TMP/steady.out" 2>&1
p_steady=$!
wait_file "$TMP/r1" || fail "steady subscriber not active"
bg as_dom "$gpub" env VBUS_URL=vchan:0 "$CHECK" pub steady.x 400 256 --rate 100
p_steady_pub=$!

# 1. SIGKILL of a publishing guest process mid-stream.
"$XS" run --domid "$gvic" -- env VBUS_URL=vchan:0 "$CHECK" pub victim.x 1000000 256 --rate 2000 \
        >/dev/null 2>&1 &
victim=$!
wait_grep "dom$gvic(victim): connected" "$TMP/broker.log" || fail "victim never connected"
sleep 0.5
kill -9 "$victim"
wait "$victim" 2>/dev/null
wait_grep "dom$gvic(victim): disconnected" "$TMP/broker.log" || fail "broker did not see the SIGKILL"
ok "SIGKILL of a guest publisher: broker dropped dom$gvic(victim)"
# The domain can connect again at once: its stale vchan keys were cleaned up.
as_dom "$gvic" env VBUS_URL=vchan:0 "$CHECK" pub victim.again 5 64 >/dev/null ||
        fail "a new process of the killed guest's domain could not connect"
ok "a new process in the same domain connects again"

# 2. A guest that writes garbage into its vchan instead of frames.
head -c 4096 /dev/urandom >"$TMP/garbage"
as_dom "$gbad" "$VCHAN_CAT" server 0 "/local/domain/$gbad/data/vchan/0/vbus" <"$TMP/garbage" \
        >/dev/null 2>&1 &
PIDS="$PIDS $!"
wait_grep "dom$gbad(bad): disconnected: protocol violation" "$TMP/broker.log" ||
        fail "garbage was not reported as a protocol violation"
ok "garbage from a guest: disconnected as a protocol violation, logged with its identity"

# 3. Destroying a subscriber's domain.
gdie=$(guest doomed)
bg as_dom "$gdie" env VBUS_URL=vchan:0 "$CHECK" sub 'steady.>' 1000000 --timeout 60000 \
        --ready "$TMP/r2" >/dev/null 2>&1
wait_file "$TMP/r2" || fail "doomed subscriber not active"
"$XS" domain destroy doomed || fail "domain destroy"
wait_grep "dom$gdie(doomed): disconnected" "$TMP/broker.log" || fail "broker kept a destroyed domain"
ok "domain destroy: the broker dropped dom$gdie(doomed)"

wait "$p_steady_pub" || fail "steady publisher failed"
wait "$p_steady" || fail "steady pair disturbed: $(cat "$TMP/steady.out")"
ok "the steady pair received 400 of 400 through all of it"

# 4. SIGKILL of the broker, then a restart: guests reconnect, and the subscriber's first message
# after the reconnect is flagged as following a gap: that one only, not those before the kill
# (3 of them), nor those after it.
bg as_dom "$gsub" env VBUS_URL=vchan:0 "$CHECK" sub 'after.>' 13 --gaps-at 4 --timeout 60000 \
        --ready "$TMP/r3" --progress "$TMP/p3" >"$TMP/gap.out" 2>&1
p_gap=$!
wait_file "$TMP/r3" || fail "gap subscriber not active"
as_dom "$gpub" env VBUS_URL=vchan:0 "$CHECK" pub after.before 3 64 >/dev/null ||
        fail "publish before the kill"
wait_grep "^3$" "$TMP/p3" || fail "the subscriber did not get 3 messages before the kill"
broker_kill9
ok "broker killed with SIGKILL"
broker_start
# The subscriber republishes its ring and is back once a publication reaches it; those that
# come before it subscribed again are lost without a count (it was not subscribed).
for i in $(seq 1 100); do
        as_dom "$gpub" env VBUS_URL=vchan:0 "$CHECK" pub after.restart 1 64 --start $((i + 3)) \
                >/dev/null 2>&1 || fail "publish after restart"
        grep -q "received" "$TMP/gap.out" 2>/dev/null && break
        kill -0 "$p_gap" 2>/dev/null || break
        sleep 0.2
done
wait "$p_gap" || fail "gaps after the reconnect: $(cat "$TMP/gap.out")"
ok "after the broker restarted, the guest reconnected and flagged exactly its first message after it"

kill -TERM "$BROKER_PID"
wait "$BROKER_PID" || fail "broker exited with status $? after SIGTERM"
BROKER_PID=""
ok "broker exited cleanly"
