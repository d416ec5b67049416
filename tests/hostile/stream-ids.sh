#!/usr/bin/env bash
# Finding 6: the broker's stream ids toward a server run out after 2^30 calls. Lowered here to 64
# (stream_id_limit, a test knob): once the broker has opened its last id toward the server, it
# sends GOAWAY, gives it no new call, and closes the link once its calls have ended; the server
# reconnects with a fresh session and goes on serving. Over 100 calls, the server's link is
# renewed at least twice, every call is answered (a caller may have to retry while the server
# reconnects), and nobody else is disconnected.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker "stream_id_limit = 64"
honest_start
gl=$(guest longsrv)
bg as_dom "$gl" env VBUS_URL=vchan:0 "$RPCCHECK" serve l.v1.Echo long --ready "$TMP/long.ready" \
        >"$TMP/long.out" 2>&1
p_long=$!
wait_file "$TMP/long.ready" || fail "long-lived server not ready"
retries=0
for i in $(seq 1 100); do
        for _ in $(seq 1 100); do
                out=$(env VBUS_URL=unix:$SOCK "$RPCCHECK" call l.v1.Echo/Echo "c$i" 2>&1) && break
                retries=$((retries + 1))
                sleep 0.1
        done
        [ "$out" = "ok long:c$i" ] || fail "call $i: $out"
done
renewals=$(grep -c "dom$gl(longsrv): disconnected: stream ids used up: link renewed" "$TMP/broker.log")
echo "100 calls answered, $retries retries, $renewals renewals of the server's link"
[ "$renewals" -ge 2 ] || fail "the server's link was renewed $renewals times"
kill -0 "$p_long" || fail "the server exited"
ok "the long-lived server keeps serving across $renewals renewals of its link"
honest_finish
rss_check
grep "disconnected" "$TMP/broker.log" | grep -v "disconnected: closed$" |
        grep -v "dom$gl(longsrv): disconnected: stream ids used up" >"$TMP/others" || true
[ -s "$TMP/others" ] && fail "other disconnections: $(cat "$TMP/others")"
ok "nobody else was disconnected"
