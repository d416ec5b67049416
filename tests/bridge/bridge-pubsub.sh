#!/usr/bin/env bash
# Pub/sub across two hosts through a 3-node NATS cluster: both directions, the original sender's
# identity (host:domN(name)), wildcards (in exports, imports and the host of an import), exact
# counts, nothing exported that is not configured, a plain libnats subscriber that sees the
# identity headers, and a bridge restart that the subscriber sees as a possible gap.
. "$(dirname "$0")/lib.sh" "$1"
nats_cluster 3
host_up alpha
host_up beta

cat >"$TMP/alpha.conf" <<CONF
host alpha
nats ${NATS_URL[1]} ${NATS_URL[2]} ${NATS_URL[3]}
export s.>
export probe.*
import beta t.>
import * probe.*
CONF
cat >"$TMP/beta.conf" <<CONF
host beta
nats ${NATS_URL[2]} ${NATS_URL[3]} ${NATS_URL[1]}
export t.*.x
export probe.*
import alpha s.>
import * probe.*
CONF
bridge_start alpha "$TMP/alpha.conf"
bridge_start beta "$TMP/beta.conf"
ok "bridges ready: $(grep -h ready "$TMP"/*/bridge.log | tr '\n' ' ')"

sensor=$(guest alpha sensor)
actor=$(guest beta actor)

# Subscribers: on beta everything imported from alpha; on alpha everything from beta.
bg_on_host beta "$TMP/beta-sub.out" "$BSUB" --bridge-pid-file "$TMP/beta/bridge.pid" 'remote.alpha.>'
bg_on_host alpha "$TMP/alpha-sub.out" "$BSUB" --bridge-pid-file "$TMP/alpha/bridge.pid" 'remote.>'
"$NCHECK" sub "${NATS_URL[3]}" 'vbus.alpha.s.>' 5 30000 >"$TMP/nats-sub.out" 2>"$TMP/nats-sub.err" &
nsub=$!
PIDS="$PIDS $nsub"
wait_grep ready "$TMP/nats-sub.err" || fail "plain NATS subscriber not ready"
probe_until alpha probe.a "$TMP/beta-sub.out" || fail "alpha -> beta: no probe arrived"
probe_until beta probe.b "$TMP/alpha-sub.out" || fail "beta -> alpha: no probe arrived"
ok "interest propagated both ways"

# alpha -> beta: 200 messages on two topics from a guest, one not exported.
as_guest alpha "$sensor" "$VBUSCTL" pub s.kitchen.temp 21.5C --count 150 >/dev/null || fail "pub"
as_guest alpha "$sensor" "$VBUSCTL" pub s.hall.door open --count 50 >/dev/null || fail "pub"
as_guest alpha "$sensor" "$VBUSCTL" pub private.diary secret --count 5 >/dev/null || fail "pub"
# beta -> alpha: 100 on t.a.x (exported: t.*.x), 7 on t.a.y (not exported).
as_guest beta "$actor" "$VBUSCTL" pub t.a.x go --count 100 >/dev/null || fail "pub"
as_guest beta "$actor" "$VBUSCTL" pub t.a.y nope --count 7 >/dev/null || fail "pub"

count() { grep -c -- "$1" "$2"; }
for i in $(seq 1 100); do
        [ "$(count "21.5C" "$TMP/beta-sub.out")" -ge 150 ] && [ "$(count " open" "$TMP/beta-sub.out")" -ge 50 ] &&
                [ "$(count " go" "$TMP/alpha-sub.out")" -ge 100 ] && break
        sleep 0.1
done
sleep 0.5 # anything extra would arrive now
n=$(grep -c "^remote.alpha.s.kitchen.temp alpha:dom$sensor(sensor) seq=[0-9]* gap=0 dropped=0 unknown=[01] 21.5C$" "$TMP/beta-sub.out")
[ "$n" = 150 ] || fail "beta got $n of 150 s.kitchen.temp with alpha's identity"
n=$(grep -c "^remote.alpha.s.hall.door alpha:dom$sensor(sensor) seq=[0-9]* gap=0 dropped=0 unknown=[01] open$" "$TMP/beta-sub.out")
[ "$n" = 50 ] || fail "beta got $n of 50 s.hall.door"
grep -q "diary\|secret" "$TMP/beta-sub.out" && fail "a topic that is not exported reached beta"
# seq runs 1..150 on the subject; only the first message of a topic may say unknown=1.
[ "$(grep "s.kitchen.temp" "$TMP/beta-sub.out" | grep -c "unknown=1")" -le 1 ] || fail "unknown gaps"
grep "s.kitchen.temp" "$TMP/beta-sub.out" | awk '{ print $3 }' | sed 's/seq=//' | sort -n |
        awk 'NR != $1 { bad = 1 } END { exit bad || NR != 150 }' || fail "sequence numbers not 1..150"
ok "alpha -> beta: 150 + 50 messages, exact, as alpha:dom$sensor(sensor), private.* not exported"

n=$(grep -c "^remote.beta.t.a.x beta:dom$actor(actor) seq=[0-9]* gap=0 dropped=0 unknown=[01] go$" "$TMP/alpha-sub.out")
[ "$n" = 100 ] || fail "alpha got $n of 100 t.a.x with beta's identity"
grep -q "nope" "$TMP/alpha-sub.out" && fail "t.a.y (not matching t.*.x) reached alpha"
grep -q FORGED "$TMP/alpha-sub.out" "$TMP/beta-sub.out" && fail "a bridged message looked forged"
ok "beta -> alpha: 100 messages, exact, as beta:dom$actor(actor); t.a.y not exported"

# The plain libnats subscriber saw the first five exports with the identity headers.
wait "$nsub" || fail "plain NATS subscriber: $(cat "$TMP/nats-sub.err")"
[ "$(grep -c "^vbus.alpha.s.kitchen.temp Vbus-From=alpha:dom$sensor(sensor) Vbus-Seq=[1-5] Vbus-Topic=s.kitchen.temp Vbus-Domid=$sensor | 21.5C$" "$TMP/nats-sub.out")" = 5 ] ||
        fail "plain NATS subscriber: $(cat "$TMP/nats-sub.out")"
ok "plain libnats subscriber: $(head -n 1 "$TMP/nats-sub.out")"

# Metrics: exact counts on both sides.
[ "$(metric alpha exported_messages)" -ge 200 ] || fail "alpha exported_messages"
[ "$(metric beta import_lost)" = 0 ] || fail "beta import_lost"
[ "$(metric beta imported_messages)" -ge 200 ] || fail "beta imported_messages"
[ "$(metric beta forged_seen)" = 0 ] || fail "beta forged_seen"
ok "metrics: $(tr '\n' ' ' <"$TMP/beta/metrics" | cut -c 1-200)..."

# A restart of beta's bridge: messages published meanwhile are not delivered, and the first
# message of the topic afterwards says so (unknown=1) to a subscriber that saw the topic before.
bridge_stop beta || fail "beta's bridge did not exit cleanly"
as_guest alpha "$sensor" "$VBUSCTL" pub s.kitchen.temp during-restart --count 3 >/dev/null
bridge_start beta "$TMP/beta.conf"
probe_until alpha probe.a2 "$TMP/beta-sub.out" || fail "no probe after the restart"
as_guest alpha "$sensor" "$VBUSCTL" pub s.kitchen.temp after-restart >/dev/null
wait_grep "after-restart" "$TMP/beta-sub.out" || fail "nothing after the restart"
grep -q "during-restart" "$TMP/beta-sub.out" && fail "a message sent while the bridge was down arrived"
grep "after-restart" "$TMP/beta-sub.out" | grep -q "unknown=1 after-restart" ||
        fail "the first message after the restart does not flag the gap: $(grep after-restart "$TMP/beta-sub.out")"
ok "bridge restart: $(grep after-restart "$TMP/beta-sub.out")"
