#!/usr/bin/env bash
# Finding 2: a guest calls an honest server with an OPEN as large as a control frame may be. The
# broker adds the caller's identity (Open.caller) to the OPEN it sends on, which then no longer
# fits: the caller is refused (RESOURCE_EXHAUSTED, "headers are too large"), and the server is
# never disconnected for it: it goes on serving the honest caller beside.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker
honest_start
g=$(attacker evil)
for i in 1 2 3 4 5; do
        as_dom "$g" env "$HOSTILE" vchan:0 big-open h.v1.Echo/Echo --seconds 30 \
                >"$TMP/evil.out" 2>&1 || fail "attacker: $(cat "$TMP/evil.out")"
        tail -n 1 "$TMP/evil.out" | grep -q "^refused resource-exhausted on call" ||
                fail "attempt $i: the attacker was not refused: $(tail -n 1 "$TMP/evil.out")"
done
rss_report
ok "the attacker was refused 5 times: $(tail -n 1 "$TMP/evil.out")"
honest_finish
rss_check
only_dropped "dom$g(evil)"
