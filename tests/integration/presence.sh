#!/usr/bin/env bash
# Presence: the broker publishes vbus.peer.up/down and vbus.service.up/down (PresenceEvent,
# stamped with the broker's own identity) when a guest connects, when its process is killed with
# SIGKILL, when its domain is destroyed, and when a service gets its first server or loses its
# last one. Events are numbered without gaps. A late joiner that subscribes, then asks for the
# Peers snapshot (which carries the seq of the last event), and applies only the events after
# it, ends with exactly the broker's list of peers: no race. A subscriber of '>' does not get the
# broker's topics.
. "$(dirname "$0")/lib.sh" "$1"
PC=$B/tests/integration/presence-check
PY=python3
xs_up
g1=$(guest sensor)
g2=$(guest victim)
g3=$(guest doomed)
kv=$(guest kv)
g5=$(guest late)
broker_start
export VBUS_URL=unix:$SOCK

bg "$PC" --ready "$TMP/r-watch" >"$TMP/watch.out" 2>"$TMP/watch.log"
wait_file "$TMP/r-watch" || fail "watcher not ready"
bg "$VBUSCTL" sub '>' --count 1 >"$TMP/all.out" 2>"$TMP/all.log"
p_all=$!

# A guest connects: peer.up with its identity, from the broker.
bg "$XS" run --domid "$g1" -- env VBUS_URL=vchan:0 "$VBUSCTL" sub x.y >/dev/null 2>"$TMP/g1.log"
wait_grep "event vbus.peer.up .* domid=$g1 name=sensor transport=vchan local=0 .* sender=local" \
        "$TMP/watch.out" || fail "no vbus.peer.up for dom$g1"
ok "connect: vbus.peer.up for dom$g1(sensor), stamped by the broker"

# The late joiner: subscribe, snapshot, then events.
bg "$PC" --snapshot --ready "$TMP/r-late" >"$TMP/late.out" 2>"$TMP/late.log"
wait_file "$TMP/r-late" || fail "late joiner not ready"
grep -q "^peer id=[0-9]* domid=$g1 name=sensor transport=vchan" "$TMP/late.out" ||
        fail "the snapshot does not list dom$g1: $(cat "$TMP/late.out")"

# SIGKILL of a guest's process: peer.down.
bg "$XS" run --domid "$g2" -- env VBUS_URL=vchan:0 "$VBUSCTL" sub x.y >/dev/null 2>"$TMP/g2.log"
p2=$!
wait_grep "event vbus.peer.up .* domid=$g2 " "$TMP/watch.out" || fail "no vbus.peer.up for dom$g2"
kill -9 "$p2"
wait_grep "event vbus.peer.down .* domid=$g2 name=victim .* reason=[a-z]" "$TMP/watch.out" ||
        fail "no vbus.peer.down for dom$g2 after kill -9"
ok "kill -9: vbus.peer.down for dom$g2(victim), with the reason"

# Domain destroy: peer.down.
bg "$XS" run --domid "$g3" -- env VBUS_URL=vchan:0 "$VBUSCTL" sub x.y >/dev/null 2>"$TMP/g3.log"
wait_grep "event vbus.peer.up .* domid=$g3 " "$TMP/watch.out" || fail "no vbus.peer.up for dom$g3"
"$XS" domain destroy "$g3" >/dev/null || fail "domain destroy"
wait_grep "event vbus.peer.down .* domid=$g3 name=doomed" "$TMP/watch.out" ||
        fail "no vbus.peer.down for dom$g3 after domain destroy"
ok "domain destroy: vbus.peer.down for dom$g3(doomed)"

# A service comes and goes with its only server.
bg "$XS" run --domid "$kv" -- env VBUS_URL=vchan:0 "$VBUSCTL" serve kv.v1.Store --exec cat \
        >"$TMP/kv.log" 2>&1
pkv=$!
wait_grep "event vbus.service.up .* domid=$kv name=kv .* service=kv.v1.Store " "$TMP/watch.out" ||
        fail "no vbus.service.up for kv.v1.Store"
kill -9 "$pkv"
wait_grep "event vbus.service.down .* service=kv.v1.Store " "$TMP/watch.out" ||
        fail "no vbus.service.down for kv.v1.Store"
ok "vbus.service.up and vbus.service.down for kv.v1.Store"

# Connections that never complete HELLO (garbage, silence, a HELLO cut short) are not peers:
# no vbus.peer.up nor down for them. The next event is dom$g5's up.
n_before=$(grep -c '^event vbus.peer' "$TMP/watch.out")
$PY - "$SOCK" <<'HALF' || fail "could not connect the half-peers"
import socket, sys, time
socks = []
for payload in (b"GET / HTTP/1.0\r\n\r\n", b"", b"\xb5\x01\x01\x00\x40\x00\x00\x00"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.sendall(payload)
    socks.append(s)
time.sleep(0.5)
for s in socks:
    s.close()
HALF
bg "$XS" run --domid "$g5" -- env VBUS_URL=vchan:0 "$VBUSCTL" sub x.y >/dev/null 2>"$TMP/g5.log"
wait_grep "event vbus.peer.up .* domid=$g5 " "$TMP/watch.out" || fail "no vbus.peer.up for dom$g5"
n_after=$(grep -c '^event vbus.peer' "$TMP/watch.out")
[ "$n_after" = $((n_before + 1)) ] ||
        fail "connections without HELLO made presence events: $(tail -n 5 "$TMP/watch.out")"
ok "connections that never finish HELLO make no vbus.peer.up/down"

# Numbered without gaps, from the watcher's first event on.
$PY - "$TMP/watch.out" <<'EOF' || fail "presence seq has gaps: $(cat "$TMP/watch.out")"
import re, sys
seqs = [int(re.search(r' seq=(\d+)', l).group(1)) for l in open(sys.argv[1]) if l.startswith('event')]
assert seqs and seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
EOF
ok "events are numbered without gaps"

# The late joiner's view (snapshot + events after its seq) is the broker's list of peers, once
# it has seen every event up to the seq of a fresh Peers reply.
"$VBUSCTL" peers --json >"$TMP/peers.json" || fail "peers"
want=$($PY -c "import json; print(json.load(open('$TMP/peers.json'))['presence_seq'])")
for i in $(seq 1 300); do
        last=$(grep -o ' seq=[0-9]*' "$TMP/late.out" | tail -n 1 | cut -d= -f2)
        [ -n "$last" ] && [ "$last" -ge "$want" ] && break
        sleep 0.05
done
$PY - "$TMP/late.out" "$TMP/peers.json" <<'EOF' || fail "the late joiner's view differs"
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
snap = int(lines[0].split('=')[1])
ids = {int(re.search(r'id=(\d+)', l).group(1)) for l in lines if l.startswith('peer ')}
reply = json.load(open(sys.argv[2]))
upto = reply['presence_seq']
# Events up to the reply's seq: the ones it reflects (the vbusctl that asked is in it).
for l in lines:
    m = re.match(r'event vbus\.peer\.(up|down) seq=(\d+) id=(\d+)', l)
    if m and snap < int(m.group(2)) <= upto:
        (ids.add if m.group(1) == 'up' else ids.discard)(int(m.group(3)))
want = {p['id'] for p in reply['peers']}
last = max(int(re.search(r' seq=(\d+)', l).group(1)) for l in lines if l.startswith('event'))
assert last >= upto, (last, upto)
assert ids == want, (sorted(ids), sorted(want))
EOF
ok "late joiner: snapshot + later events == the broker's peers"

# '>' never matched the broker's topics: the subscriber of everything got nothing.
kill -0 "$p_all" 2>/dev/null || fail "the '>' subscriber got something: $(cat "$TMP/all.out")"
[ ! -s "$TMP/all.out" ] || fail "the '>' subscriber got: $(cat "$TMP/all.out")"
ok "a '>' subscriber does not get vbus.* events"
