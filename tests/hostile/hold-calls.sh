#!/usr/bin/env bash
# Finding 4: a guest opens calls to the honest service and never ends them (timeout 0), to fill
# max_service_calls (64 here) for everyone. Once the service is full the caller holding more than
# its share (max_service_calls / live peers) is refused (RESOURCE_EXHAUSTED); the honest caller,
# under its share, is still served; and the held calls expire at max_call_timeout_ms, so a
# timeout of 0 holds nothing for ever.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker "max_service_calls = 64" "max_call_timeout_ms = 4000"
honest_start
g=$(attacker evil)
bg as_dom "$g" env "$HOSTILE" vchan:0 hold-calls h.v1.Echo/Echo --seconds 60 --linger 8 \
        >"$TMP/evil.out" 2>&1
p_evil=$!
wait_grep "^refused\|^survived\|^disconnected" "$TMP/evil.out" || fail "attacker: $(cat "$TMP/evil.out")"
cat "$TMP/evil.out"
grep -q "^refused resource-exhausted on call" "$TMP/evil.out" ||
        fail "the attacker was not refused: $(cat "$TMP/evil.out")"
ok "the attacker was refused once the service was full"
# Meanwhile (it still holds its 64 calls) the honest caller, under its share, is served.
# shellcheck disable=SC2154 # g_call: set by honest_start (hlib.sh)
out=$(as_dom "$g_call" env VBUS_URL=vchan:0 "$RPCCHECK" call h.v1.Echo/Echo x --count 3 2>&1) ||
        fail "while the service is full of the attacker's calls: $out"
ok "the honest caller is served beside the attacker's 64 held calls"
wait "$p_evil" || fail "attacker: $(cat "$TMP/evil.out")"
rss_report
grep -qx "expired 64" "$TMP/evil.out" ||
        fail "the held calls did not all expire at max_call_timeout_ms: $(tail -n 1 "$TMP/evil.out")"
ok "its 64 calls without a timeout expired at max_call_timeout_ms"
honest_finish
rss_check
only_dropped "dom$g(evil)"
