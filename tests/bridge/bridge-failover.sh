#!/usr/bin/env bash
# NATS node failures mid-stream: kill -9 the node the exporting bridge is connected to while a
# stream of numbered messages flows from alpha to beta, then the node the importing bridge is
# connected to. The bridges fail over to the nodes left; beta's subscriber must account for
# every message: received, or counted in a gap (gap=N on the next message of the topic), never
# silently missing, never an uncounted gap.
. "$(dirname "$0")/lib.sh" "$1"
nats_cluster 3
host_up alpha
host_up beta
N=1500

cat >"$TMP/alpha.conf" <<CONF
host alpha
nats ${NATS_URL[1]} ${NATS_URL[2]} ${NATS_URL[3]}
nats-reconnect-wait 100
export s.>
CONF
cat >"$TMP/beta.conf" <<CONF
host beta
nats ${NATS_URL[1]} ${NATS_URL[2]} ${NATS_URL[3]}
nats-reconnect-wait 100
import alpha s.>
CONF
bridge_start alpha "$TMP/alpha.conf"
bridge_start beta "$TMP/beta.conf"

# node_of HOST: the index of the NATS node HOST's bridge uses now (its last connect line).
node_of() {
        local url i
        url=$(grep -o "\(ready, NATS\|reconnected to\) nats://[0-9.:]*" "$TMP/$1/bridge.log" | tail -n 1 |
                grep -o "nats://.*")
        for i in 1 2 3; do [ "${NATS_URL[$i]}" = "$url" ] && echo "$i"; done
}

bg_on_host beta "$TMP/sub.out" "$BSUB" --bridge-pid-file "$TMP/beta/bridge.pid" 'remote.alpha.s.>'
probe_until alpha s.probe "$TMP/sub.out" || fail "no probe arrived"

# stream ROUND NODE-OF: N numbered messages on s.stream.ROUND, about one a millisecond, with a
# kill -9 of the NATS node that NODE-OF's bridge uses a third of the way through; then, once
# the bridges reconnected, one more message ("tail") that reveals a loss at the very end.
stream() {
        local round=$1 before_a before_b a_on b_on
        victim=$(node_of "$2") # global: the caller may restart it
        a_on=$(node_of alpha)
        b_on=$(node_of beta)
        before_a=$(grep -c "reconnected" "$TMP/alpha/bridge.log")
        before_b=$(grep -c "reconnected" "$TMP/beta/bridge.log")
        XENSIM_DIR=$TMP/alpha/xs VBUS_URL=unix:$TMP/alpha/broker.sock \
                "$B/bridge/tests/bridge-pub" "s.stream.$round" "$N" 1000 &
        local pub=$!
        sleep 0.8
        nats_kill9 "$victim"
        echo "round $round: $(grep -c "s.stream.$round " "$TMP/sub.out") received at the kill"
        ok "round $round: killed NATS node $victim ($2's) mid-stream"
        wait "$pub" || fail "publisher failed"
        # Wait until every bridge that used the victim reconnected.
        local i a_ok=1 b_ok=1
        for i in $(seq 1 100); do
                a_ok=1 b_ok=1
                [ "$a_on" != "$victim" ] || [ "$(grep -c reconnected "$TMP/alpha/bridge.log")" -gt "$before_a" ] || a_ok=0
                [ "$b_on" != "$victim" ] || [ "$(grep -c reconnected "$TMP/beta/bridge.log")" -gt "$before_b" ] || b_ok=0
                [ $a_ok = 1 ] && [ $b_ok = 1 ] && break
                sleep 0.1
        done
        [ $a_ok = 1 ] || fail "alpha's bridge did not reconnect"
        [ $b_ok = 1 ] || fail "beta's bridge did not reconnect"
        sleep 0.5 # interest settles on the remaining routes
        on_host alpha "$VBUSCTL" pub "s.stream.$round" tail >/dev/null
        wait_grep "s.stream.$round .* tail$" "$TMP/sub.out" || fail "round $round: no tail message"
        local got lost unknown
        got=$(grep -c "^remote.alpha.s.stream.$round .* [0-9]*$" "$TMP/sub.out")
        lost=$(grep "^remote.alpha.s.stream.$round " "$TMP/sub.out" | grep -o " gap=[0-9]*" |
                awk -F= '{ s += $2 } END { print s + 0 }')
        # Only the first message of the topic may say unknown=1 (first sight by this bridge).
        unknown=$(grep "^remote.alpha.s.stream.$round " "$TMP/sub.out" | tail -n +2 | grep -c "unknown=1")
        # Numbers are in order and each gap is exactly the numbers missing before it.
        grep "^remote.alpha.s.stream.$round " "$TMP/sub.out" | grep -v " tail$" |
                awk '{ n = $NF; g = $4; sub("gap=", "", g)
                       if (n != prev + 1 + g) { print "at " n ": prev " prev " gap " g; bad = 1 }
                       prev = n } END { exit bad }' >"$TMP/check.$round" ||
                fail "round $round: gaps do not match the missing numbers: $(head -n 3 "$TMP/check.$round")"
        [ "$unknown" = 0 ] || fail "round $round: $unknown uncounted gaps"
        [ $((got + lost)) = "$N" ] || fail "round $round: received $got + counted lost $lost != $N"
        if [ "$round" = 3 ]; then
                [ "$lost" -gt 0 ] || fail "round 3: nothing lost while beta's only node was down"
                [ "$(metric beta import_lost)" = "$lost" ] ||
                        fail "round 3: beta's bridge counted $(metric beta import_lost), its subscriber $lost"
        fi
        ok "round $round: $got received + $lost counted as lost = $N; reconnects: alpha $(($(grep -c reconnected "$TMP/alpha/bridge.log") - before_a)), beta $(($(grep -c reconnected "$TMP/beta/bridge.log") - before_b))"
}

# nats_restart I: node I again, same ports, same routes.
nats_restart() {
        local i=$1
        nats_node_start "$i" "${NATS_PORTS[$((i - 1))]}" "${NATS_CPORTS[$((i - 1))]}" "$NATS_ROUTES"
        for k in $(seq 1 100); do
                [ "$(grep -c "Server is ready" "$TMP/nats$i.log")" -ge 2 ] && return 0
                sleep 0.1
        done
        fail "nats-server $i did not restart"
}

stream 1 alpha
nats_restart "$victim"
stream 2 beta
nats_restart "$victim"

# Round 3: beta's bridge knows one node only (nats-discovered ignore); while that node is down
# (0.5 s) the messages alpha exports have no route to beta and are lost in NATS. beta's bridge
# counts them from the sequence numbers when it is back, on the next message, and they match
# the numbers missing.
bridge_stop beta || fail "beta's bridge did not exit cleanly"
pin=$(node_of alpha)
pin=$((pin % 3 + 1)) # a node other than alpha's
cat >"$TMP/beta.conf" <<CONF
host beta
nats ${NATS_URL[$pin]}
nats-discovered ignore
nats-reconnect-wait 100
import alpha s.>
CONF
bridge_start beta "$TMP/beta.conf"
probe_until alpha s.probe2 "$TMP/sub.out" || fail "no probe arrived"
(sleep 1.3 && nats_restart "$pin") &
restarter=$!
stream 3 beta
wait "$restarter"
[ "$(metric beta nats_reconnects)" -ge 1 ] || fail "beta's bridge counted no reconnect"
ok "metrics: beta $(grep -E "nats_|import_(gaps|lost|unknown)" "$TMP/beta/metrics" | tr '\n' ' ')"
[ "$(metric alpha nats_reconnects)" -ge 1 ] || fail "alpha's bridge counted no reconnect"
ok "metrics: alpha $(grep -E "nats_|export_failed" "$TMP/alpha/metrics" | tr '\n' ' ')"
