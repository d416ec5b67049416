#!/usr/bin/env bash
# The broker out of file descriptors: accept() fails with EMFILE while the listening socket stays
# readable. The broker must not spin on it (nor log a line per turn of its loop): the socket rests
# (LIMIT_ACCEPT_PAUSE_MS), one line is logged, the peers already connected are served meanwhile,
# and the connections that waited in the backlog are taken once fds are free again.
. "$(dirname "$0")/lib.sh" "$1"
command -v prlimit >/dev/null || fail "prlimit (util-linux) is missing"
# A local-only broker (no Xen) with few fds: the flood below exhausts them.
bg prlimit --nofile=40:40 "$VCHAND" --no-xen --policy open --socket "$SOCK" \
        >>"$TMP/broker.log" 2>&1
wait_file "$SOCK" || fail "broker did not start"
export VBUS_URL="unix:$SOCK"

# 80 local connections to socket $1, held for 2 s (more than the daemon has fds for; the rest
# wait in the backlog or are refused by the kernel), then closed.
flood() {
python3 - "$1" <<'PY'
import errno, socket, sys, time
held = []
for _ in range(80):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(sys.argv[1])
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EINPROGRESS):
            raise
    held.append(s)
time.sleep(2)
for s in held:
    s.close()
PY
}

# An honest pair, connected before the flood: 20 messages, one every 200 ms.
bg "$VBUSCTL" sub --count 20 --timeout 60000 emf.x >"$TMP/sub.out" 2>"$TMP/sub.err"
sub=$!
wait_grep "# subscribed to emf.x" "$TMP/sub.err" || fail "subscriber not active"
bg "$VBUSCTL" pub --count 20 --interval 200 emf.x hello >"$TMP/pub.out" 2>&1
pub=$!
wait_grep "emf.x" "$TMP/sub.out" || fail "the first message did not arrive"

flood "$SOCK"
wait_grep "accept: Too many open files: new local connections wait in the backlog" \
        "$TMP/broker.log" || fail "no EMFILE line in the log: $(tail -5 "$TMP/broker.log")"
wait "$pub" || fail "the publisher failed: $(cat "$TMP/pub.out")"
wait "$sub" || fail "the subscriber failed: $(cat "$TMP/sub.err")"
[ "$(grep -c '^emf.x ' "$TMP/sub.out")" = 20 ] ||
        fail "the subscriber got $(grep -c '^emf.x ' "$TMP/sub.out") of 20 messages"
ok "connected peers are served while accept() fails with EMFILE: 20 of 20 messages"
n=$(grep -c 'accept:' "$TMP/broker.log")
[ "$n" -le 2 ] || fail "$n accept lines logged in ~2 s (a spinning loop logs one per turn)"
ok "the broker logged $n accept line(s) for the whole exhaustion (rate-limited, no spin)"
out=$("$VBUSCTL" --timeout 15000 services 2>&1) || fail "a new client after the flood: $out"
ok "a new client connects once the flood is gone"

# The guest agent's socket, the same way (the agent relays its processes to the broker above).
bg prlimit --nofile=40:40 "$VCHAND" --agent --upstream "unix:$SOCK" --socket "$TMP/agent.sock" \
        >>"$TMP/agent.log" 2>&1
wait_file "$TMP/agent.sock" || fail "agent did not start"
VBUS_URL="unix:$TMP/agent.sock" "$VBUSCTL" --timeout 15000 services >/dev/null 2>&1 ||
        fail "no client through the agent before the flood"
flood "$TMP/agent.sock"
wait_grep "agent: accept: Too many open files: new local connections wait in the backlog" \
        "$TMP/agent.log" || fail "agent: no EMFILE line: $(tail -5 "$TMP/agent.log")"
n=$(grep -c 'accept:' "$TMP/agent.log")
[ "$n" -le 2 ] || fail "the agent logged $n accept lines in ~2 s"
out=$(VBUS_URL="unix:$TMP/agent.sock" "$VBUSCTL" --timeout 15000 services 2>&1) ||
        fail "a client through the agent after the flood: $out"
ok "the agent rests its socket on EMFILE too ($n line), and takes clients again after"
