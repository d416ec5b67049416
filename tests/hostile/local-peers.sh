#!/usr/bin/env bash
# Finding 4: max_peers is shared by guests and local clients. Local (UNIX socket) links have their
# own share, max_local_peers (2 here, of max_peers = 12): a third local client is refused, and a
# guest still connects beside the local clients holding their share; the honest guests lose
# nothing.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker "max_peers = 12" "max_local_peers = 2"
honest_start
for s in 1 2; do
        bg env "$HOSTILE" "unix:$SOCK" collect x.lp 1000000 --seconds 60 >"$TMP/local$s.out" 2>&1
        wait_grep "^ready" "$TMP/local$s.out" || fail "local client $s: $(cat "$TMP/local$s.out")"
done
wait_grep "local uid .*: connected" "$TMP/broker.log" || fail "local clients not connected"
if env "$HOSTILE" "unix:$SOCK" collect x.lp 1 --seconds 10 >"$TMP/local3.out" 2>&1; then
        fail "a third local client was accepted: $(cat "$TMP/local3.out")"
fi
grep -q "the broker closed the link" "$TMP/local3.out" ||
        fail "third local client: $(cat "$TMP/local3.out")"
ok "a third local client is refused (max_local_peers = 2)"
g=$(guest late)
out=$(as_dom "$g" env VBUS_URL=vchan:0 "$RPCCHECK" call h.v1.Echo/Echo late 2>&1) ||
        fail "a guest beside the local clients: $out"
ok "a guest still connects beside them: $out"
honest_finish
rss_check
only_dropped "local uid"
