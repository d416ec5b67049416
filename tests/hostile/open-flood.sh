#!/usr/bin/env bash
# Finding 3: a guest floods a busy server (it handles one call at a time, each for 0.5 s, on 64 KiB
# rings) with 18 calls of 60 KB and 40 OPENs of ~3.9 KB in one write. What does not fit the
# server's ring and the room the broker keeps in its control backlog is refused to the caller
# (UNAVAILABLE or RESOURCE_EXHAUSTED); the busy server is never disconnected, and serves again
# once it has worked through what it accepted; the honest guests beside lose nothing.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker
honest_start
gb=$(guest busy)
bg as_dom "$gb" env VBUS_URL=vchan:0 VBUS_RING_SIZE=65536 "$VBUSCTL" serve b.v1.Busy \
        --exec "sleep 0.5; cat" 2>"$TMP/busy.log"
for _ in $(seq 1 200); do grep -q "# serving" "$TMP/busy.log" && break; sleep 0.05; done
grep -q "# serving b.v1.Busy" "$TMP/busy.log" || fail "busy server did not start"
# Keep it busy, so its ring fills.
bg env VBUS_URL=unix:$SOCK "$VBUSCTL" call b.v1.Busy/M first >"$TMP/first.out" 2>&1
sleep 0.3
g=$(attacker evil)
as_dom "$g" env "$HOSTILE" vchan:0 open-flood b.v1.Busy/M --seconds 30 >"$TMP/evil.out" 2>&1 ||
        fail "attacker: $(cat "$TMP/evil.out")"
cat "$TMP/evil.out"
rss_report
case "$(tail -n 1 "$TMP/evil.out")" in
"refused unavailable on call" | "refused resource-exhausted on call") ;;
*) fail "the attacker's flood was not refused: $(tail -n 1 "$TMP/evil.out")" ;;
esac
ok "the attacker: $(tail -n 1 "$TMP/evil.out")"
grep -q "dom$gb(busy)" "$TMP/broker.log" && grep "dom$gb(busy).*disconnected" "$TMP/broker.log" &&
        fail "the busy server was disconnected"
# It has up to 18 + 40 calls to work through: until then a new call may be refused as busy.
for _ in $(seq 1 60); do
        out=$(env VBUS_URL=unix:$SOCK timeout 120 "$VBUSCTL" call b.v1.Busy/M again 2>&1) && break
        case "$out" in
        *"not keeping up"*) sleep 1 ;;
        *) fail "the busy server after the flood: $out" ;;
        esac
done
[ "$out" = again ] || fail "the busy server after the flood: '$out'"
ok "the busy server still serves: $out"
honest_finish
rss_check
only_dropped "dom$g(evil)"
