#!/usr/bin/env bash
# Forging. Today's broker lets anyone publish on the import root (remote.>); the bridge's
# envelope is trustworthy only when the broker's own stamp of the publisher is the bridge.
# A guest and a local process that publish a perfect copy of an envelope on remote.alpha.* are
# shown as FORGED by vbus-bridge-sub (with their real identity), counted by the bridge
# (forged_seen), and never exported again. On the NATS side, a message on alpha's subjects
# whose Vbus-Host is not alpha, or without the Vbus-* headers, is refused; one with correct
# headers is accepted (NATS permissions are what bind a subject prefix to a host) and its
# sequence numbers are checked like any other.
. "$(dirname "$0")/lib.sh" "$1"
nats_cluster 3
host_up alpha
host_up beta

cat >"$TMP/alpha.conf" <<CONF
host alpha
nats ${NATS_URL[1]} ${NATS_URL[2]} ${NATS_URL[3]}
export s.>
CONF
cat >"$TMP/beta.conf" <<CONF
host beta
nats ${NATS_URL[2]} ${NATS_URL[3]} ${NATS_URL[1]}
import alpha s.>
export >
CONF
bridge_start alpha "$TMP/alpha.conf"
bridge_start beta "$TMP/beta.conf"
sensor=$(guest alpha sensor)
evil=$(guest beta evil)

bg_on_host beta "$TMP/sub.out" "$BSUB" --bridge-pid-file "$TMP/beta/bridge.pid" 'remote.>'
"$NCHECK" sub "${NATS_URL[1]}" 'vbus.beta.>' 1 30000 >"$TMP/nats-beta.out" 2>"$TMP/nats-beta.err" &
nsub=$!
PIDS="$PIDS $nsub"
wait_grep ready "$TMP/nats-beta.err" || fail "plain NATS subscriber not ready"
probe_until alpha s.probe "$TMP/sub.out" || fail "no probe arrived"

# The genuine article.
as_guest alpha "$sensor" "$VBUSCTL" pub s.door open >/dev/null
wait_grep "remote.alpha.s.door alpha:dom$sensor(sensor) " "$TMP/sub.out" || fail "no genuine message"
genuine=$(grep "remote.alpha.s.door" "$TMP/sub.out" | head -n 1)
ok "genuine: $genuine"

# A guest of beta copies the envelope exactly, claiming to be alpha's sensor.
env_line="vbus-bridge/1 from=alpha:dom$sensor(sensor) host=alpha domid=$sensor name=sensor uid=0 local=0 topic=s.door seq=99 gap=0 dropped=0 unknown=0"
printf '%s\nunlocked' "$env_line" >"$TMP/forged.msg"
as_guest beta "$evil" "$VBUSCTL" pub --binary remote.alpha.s.door - <"$TMP/forged.msg" >/dev/null ||
        fail "the guest's publish failed"
wait_grep "remote.alpha.s.door FORGED by dom$evil(evil) " "$TMP/sub.out" ||
        fail "the guest's forgery was not recognised: $(tail -n 2 "$TMP/sub.out")"
ok "guest forgery: $(grep "FORGED by dom" "$TMP/sub.out" | cut -c 1-90)..."
# A local process of the same user as the bridge, another pid.
on_host beta "$VBUSCTL" pub --binary remote.alpha.s.door - <"$TMP/forged.msg" >/dev/null
wait_grep "remote.alpha.s.door FORGED by local(uid=$(id -u),pid=" "$TMP/sub.out" ||
        fail "the local forgery was not recognised"
ok "local forgery: $(grep "FORGED by local" "$TMP/sub.out" | cut -c 1-90)..."
grep -q "alpha:dom$sensor(sensor) .* unlocked" "$TMP/sub.out" && fail "a forgery passed as genuine"
for i in $(seq 1 40); do [ "$(metric beta forged_seen)" = 2 ] && break; sleep 0.1; done
[ "$(metric beta forged_seen)" = 2 ] || fail "beta's bridge saw $(metric beta forged_seen) forgeries, not 2"
grep -q "forged import: dom$evil(evil) published on remote.alpha.s.door" "$TMP/beta/bridge.log" ||
        fail "the bridge did not log the forgery"
ok "beta's bridge: forged_seen 2, logged: $(grep -m 1 "forged import" "$TMP/beta/bridge.log")"

# beta exports everything ('>'), yet nothing under remote.> left: the first message on
# vbus.beta.> is beta's own.
as_guest beta "$evil" "$VBUSCTL" pub own.topic mine >/dev/null
wait "$nsub" || fail "plain NATS subscriber on vbus.beta.>: $(cat "$TMP/nats-beta.err")"
grep -q "^vbus.beta.own.topic .* | mine$" "$TMP/nats-beta.out" ||
        fail "beta exported something else first: $(cat "$TMP/nats-beta.out")"
[ "$(metric beta export_skipped_imports)" -ge 3 ] || fail "export_skipped_imports"
ok "beta exported no import and no forgery (export_skipped_imports $(metric beta export_skipped_imports))"

# NATS side: wrong Vbus-Host, no headers: refused and counted.
before=$(metric beta import_invalid)
"$NCHECK" pub "${NATS_URL[3]}" vbus.alpha.s.door hijack Vbus-Host=gamma Vbus-Topic=s.door \
        Vbus-Domid=0 Vbus-Uid=0 Vbus-Local=1 Vbus-Epoch=1 Vbus-Seq=1 || fail "nats pub"
"$NCHECK" pub "${NATS_URL[3]}" vbus.alpha.s.door bare || fail "nats pub"
for i in $(seq 1 40); do [ "$(metric beta import_invalid)" = $((before + 2)) ] && break; sleep 0.1; done
[ "$(metric beta import_invalid)" = $((before + 2)) ] || fail "import_invalid $(metric beta import_invalid)"
grep -q "hijack\|bare" "$TMP/sub.out" && fail "an invalid NATS message was imported"
ok "NATS messages with a foreign Vbus-Host or no headers: refused (import_invalid +2)"

# Correct headers from a plain NATS client: accepted (only NATS permissions can stop it), and
# its numbering is checked: seq 1 then 5 is a gap of 3.
for seq in 1 5; do
        "$NCHECK" pub "${NATS_URL[3]}" vbus.alpha.s.inject "n$seq" Vbus-Host=alpha Vbus-Topic=s.inject \
                Vbus-Domid=7 Vbus-Name=x Vbus-Uid=0 Vbus-Local=0 Vbus-Epoch=42 Vbus-Seq=$seq || fail "nats pub"
done
wait_grep "remote.alpha.s.inject .* n5$" "$TMP/sub.out" || fail "injected messages not imported"
grep -q "remote.alpha.s.inject alpha:dom7(x) seq=5 gap=3 dropped=0 unknown=0 n5$" "$TMP/sub.out" ||
        fail "gap not counted: $(grep s.inject "$TMP/sub.out")"
ok "NATS injection with alpha's headers is imported (NATS permissions must prevent it); gap counted: $(grep "n5$" "$TMP/sub.out")"
