#!/usr/bin/env bash
# Connecting never leaves a user guessing: every failure names the URL actually tried, where it
# came from (--url, $VBUS_URL, the default) and what it means; errors that waiting cannot mend
# fail at once (no 5 s budget spent: the message is the error's own, never "within 5 s");
# "--timeout 0" does not make connecting time out; under xensim a guest's default is its vchan,
# never dom0's socket; stale vchan keys of a dead guest process are recognised without a broker,
# while live ones are respected.
. "$(dirname "$0")/lib.sh" "$1"
xs_up
g1=$(guest alpha)
g2=$(guest beta)
V=$VBUSCTL
expect() { # expect NAME "exact message" CMD...
        local name=$1 want=$2 out st
        shift 2
        out=$("$@" 2>&1)
        st=$?
        [ $st = 1 ] || fail "$name: exit status $st (want 1): $out"
        [ "$out" = "$want" ] || fail "$name: got
  $out
want
  $want"
        ok "$name: $out"
}

expect "no socket" \
        "vbusctl: cannot connect to unix:$TMP/none.sock (--url): No such file or directory: no socket there: is vchand running (in a guest: vchand --agent)?" \
        "$V" --url "unix:$TMP/none.sock" pub a.b x
expect "no socket, from \$VBUS_URL" \
        "vbusctl: cannot connect to unix:$TMP/none.sock (\$VBUS_URL): No such file or directory: no socket there: is vchand running (in a guest: vchand --agent)?" \
        env VBUS_URL="unix:$TMP/none.sock" "$V" sub 'a.>' --timeout 0
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$TMP/dead.sock"
expect "refused" \
        "vbusctl: cannot connect to unix:$TMP/dead.sock (--url): Connection refused: nothing listens there: a broker or agent that died left its socket" \
        "$V" --url "unix:$TMP/dead.sock" call a.B/C x
expect "bad URL" \
        "vbusctl: cannot use URL 'tcp:host:1' (--url): Address family not supported by protocol; URLs are unix:<path> or vchan:<domid>" \
        "$V" --url tcp:host:1 pub a.b x
expect "bad URL from \$VBUS_URL" \
        "vbusctl: cannot use URL 'bogus' (\$VBUS_URL): Invalid argument; URLs are unix:<path> or vchan:<domid>" \
        env VBUS_URL=bogus "$V" pub a.b x

broker_start
# Permission: the socket is 0660 root:root here (no group vbus), so another user is refused.
chmod 0711 "$TMP"
expect "permission" \
        "vbusctl: cannot connect to unix:$SOCK (--url): Permission denied: the socket's permissions refuse this user (vchand.conf socket_group, socket_mode)" \
        setpriv --reuid=4242 --regid=4242 --clear-groups "$V" --url "unix:$SOCK" pub a.b x
grep -q "group 'vbus' does not exist: $SOCK stays in root's group (mode 0660)" "$TMP/broker.log" ||
        [ -n "$(getent group vbus)" ] || fail "the broker did not say why the socket is root's only"
ok "the broker said: $(grep -o "group 'vbus' does not exist.*" "$TMP/broker.log" | head -n 1)"

# --timeout 0 is the command's, not the connection's.
env VBUS_URL="unix:$SOCK" "$V" --timeout 0 services >"$TMP/t0.out" 2>&1 ||
        fail "--timeout 0 services: $(cat "$TMP/t0.out")"
ok "--timeout 0 does not make connecting time out (services answered)"

# Under xensim, a guest's default URL is its domain's vchan: stamped domN, never local.
bg env VBUS_URL="unix:$SOCK" "$V" sub 'who.>' --count 1 >"$TMP/who.out" 2>&1
p_who=$!
wait_grep "subscribed" "$TMP/who.out" || fail "subscriber not active"
[ "$(env -u VBUS_URL "$XS" run --domid "$g1" -- printenv VBUS_URL)" = vchan:0 ] ||
        fail "xensim run --domid $g1 does not point a guest at its vchan"
[ "$(env VBUS_URL=unix:/x "$XS" run --domid "$g1" -- printenv VBUS_URL)" = unix:/x ] ||
        fail "xensim run overrides the user's VBUS_URL"
[ -z "$(env -u VBUS_URL "$XS" run --domid 0 -- printenv VBUS_URL)" ] ||
        fail "xensim run --domid 0 sets VBUS_URL"
env -u VBUS_URL "$XS" run --domid "$g1" -- "$V" pub who.am.i x >/dev/null ||
        fail "a guest's vbusctl without --url"
wait "$p_who" || fail "subscriber: $(cat "$TMP/who.out")"
grep -q "^who.am.i dom$g1(alpha) x$" "$TMP/who.out" || fail "a guest's default URL: $(cat "$TMP/who.out")"
ok "xensim run --domid $g1 without VBUS_URL: stamped dom$g1(alpha)"

# A live holder of a domain's vchan is respected, at once and by name.
bg as_dom "$g2" "$V" sub 'hold.>' >"$TMP/holder.out" 2>&1
wait_grep "dom$g2(beta): connected" "$TMP/broker.log" || fail "the holder did not connect"
expect "vchan held" \
        "vbusctl: cannot connect to vchan:0 (\$VBUS_URL): Address already in use: another vbus process of this domain holds its vchan to the broker (one per domain: run vchand --agent and connect through it)" \
        as_dom "$g2" "$V" pub hold.x y

# Stale keys: a process that publishes while no broker runs, killed, leaves its keys; the next
# process of the domain recognises them as stale by itself and publishes its own.
broker_kill9
g3=$(guest gamma)
"$XS" run --domid "$g3" -- "$V" sub 'stale.>' >/dev/null 2>&1 &
victim=$!
for _ in $(seq 1 100); do
        as_dom "$g3" xenstore-read "/local/domain/$g3/data/vchan/0/vbus/ring-ref" >/dev/null 2>&1 && break
        sleep 0.05
done
kill -9 "$victim"
wait "$victim" 2>/dev/null
as_dom "$g3" xenstore-read "/local/domain/$g3/data/vchan/0/vbus/ring-ref" >/dev/null ||
        fail "the dead process left no keys: nothing to test"
ok "a process killed while no broker ran left its keys"
bg as_dom "$g3" "$V" pub stale.x fresh >"$TMP/fresh.out" 2>&1
p_fresh=$!
broker_start
bg env VBUS_URL="unix:$SOCK" "$V" sub 'stale.>' --count 1 >"$TMP/stale-sub.out" 2>&1
wait "$p_fresh" || fail "after stale keys: $(cat "$TMP/fresh.out")"
grep -q "Address already in use" "$TMP/fresh.out" && fail "stale keys taken for a live holder"
ok "the next process took the stale keys for what they are and published through a new broker"
