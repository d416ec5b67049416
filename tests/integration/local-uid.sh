#!/usr/bin/env bash
# The identity stamp of a local peer carries its uid. Every other test runs as root, where a
# dropped uid and uid 0 look the same; here the local peers run as other users (setpriv; the
# uids need not exist): a subscriber sees Meta.sender uid, a server sees Open.caller uid, and
# ListServices reports a server's uid, each the one the broker read from SO_PEERCRED.
. "$(dirname "$0")/lib.sh" "$1"
RPC=$B/tests/integration/rpc-check
U1=4242
U2=4343
xs_up
# The socket is 0660 for root and group vbus by default: these users are in neither, so the
# test opens it to everyone (vchand.conf socket_mode); its directory must let them through, and
# they need a place to write their --ready files.
printf 'socket_mode = 0666\n' >"$TMP/vchand.conf"
broker_start --config "$TMP/vchand.conf"
export VBUS_URL="unix:$SOCK"
chmod 0711 "$TMP"
mkdir -m 1777 "$TMP/u"
as_user() {
        local uid=$1
        shift
        setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"
}
[ "$(as_user $U1 id -u)" = $U1 ] || fail "cannot run a process as uid $U1 (setpriv)"
as_user $U1 test -x "$CHECK" || fail "uid $U1 cannot run $CHECK: make the build tree readable"

# Pub/sub: a subscriber as root and one as another user each see the publisher's uid.
bg "$CHECK" sub 'uid.>' 5 --sender "local(uid=$U1)" \
        --ready "$TMP/u/r1" >"$TMP/sub-root.out" 2>&1
p_root=$!
bg as_user $U2 "$CHECK" sub 'uid.>' 5 --sender "local(uid=$U1)" --ready "$TMP/u/r2" \
        >"$TMP/sub-u2.out" 2>&1
p_u2=$!
wait_file "$TMP/u/r1" || fail "root subscriber not active"
wait_file "$TMP/u/r2" || fail "uid $U2 subscriber not active"
as_user $U1 "$CHECK" pub uid.x 5 64 >/dev/null || fail "publish as uid $U1"
wait "$p_root" || fail "root subscriber: $(cat "$TMP/sub-root.out")"
wait "$p_u2" || fail "uid $U2 subscriber: $(cat "$TMP/sub-u2.out")"
ok "pub/sub: subscribers as uid 0 and uid $U2 saw every message stamped local(uid=$U1)"

# Calls: a server as root sees the caller's uid; a server as another user is listed with it.
"$RPC" serve uid.v1.Root root --ready "$TMP/u/s1" >"$TMP/srv-root.out" 2>&1 &
PIDS="$PIDS $!"
# Not through as_user: $! must be the server itself (setpriv and env exec it), for its pid.
setpriv --reuid=$U2 --regid=$U2 --clear-groups \
        "$RPC" serve uid.v1.User user --ready "$TMP/u/s2" >"$TMP/srv-u2.out" 2>&1 &
p_srv_u2=$!
PIDS="$PIDS $p_srv_u2"
wait_file "$TMP/u/s1" || fail "root server not active"
wait_file "$TMP/u/s2" || fail "uid $U2 server not active"
as_user $U1 "$RPC" call uid.v1.Root/Echo x >"$TMP/call1.out" 2>&1 || fail "call as $U1: $(cat "$TMP/call1.out")"
grep -qx "caller local uid $U1" "$TMP/srv-root.out" ||
        fail "the root server saw: $(grep caller "$TMP/srv-root.out")"
"$RPC" call uid.v1.User/Echo x >"$TMP/call2.out" 2>&1 || fail "call as root: $(cat "$TMP/call2.out")"
as_user $U1 "$RPC" call uid.v1.User/Echo x >"$TMP/call3.out" 2>&1 || fail "call as $U1: $(cat "$TMP/call3.out")"
[ "$(grep caller "$TMP/srv-u2.out" | xargs)" = "caller local uid 0 caller local uid $U1" ] ||
        fail "the uid $U2 server saw: $(grep caller "$TMP/srv-u2.out")"
ok "calls: servers as uid 0 and uid $U2 saw each caller's uid (0, $U1)"

"$VBUSCTL" services uid.v1.User >"$TMP/list.out" || fail "services"
[ "$(awk 'NR > 1 { print $1, $2 }' "$TMP/list.out")" = "uid.v1.User local(uid=$U2,pid=$p_srv_u2)" ] ||
        fail "ListServices: $(cat "$TMP/list.out")"
ok "ListServices names the server local(uid=$U2,pid=$p_srv_u2)"
