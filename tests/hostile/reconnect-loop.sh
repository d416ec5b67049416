#!/usr/bin/env bash
# Finding 8: a guest reconnects in a loop, sending garbage each time. Every line the broker logs
# about it (its connections, its violations, its disconnections) comes out of one budget per
# domain (LIMIT_LOG_PER_MINUTE = 20 a minute, and one line saying how many were suppressed), so
# the guest cannot fill dom0's journal; the honest guests beside lose nothing.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker
honest_start
g=$(attacker evil)
start=$(date +%s)
as_dom "$g" env "$HOSTILE" vchan:0 reconnect-loop 60 --seconds 120 >"$TMP/evil.out" 2>&1 ||
        fail "attacker: $(cat "$TMP/evil.out")"
end=$(date +%s)
cat "$TMP/evil.out"
n=$(tail -n 1 "$TMP/evil.out" | sed -n 's/^disconnected \([0-9]*\)$/\1/p')
[ -n "$n" ] && [ "$n" -ge 30 ] || fail "the attacker was not dropped each time: $(tail -n 1 "$TMP/evil.out")"
lines=$(grep -c "dom$g(evil)\|dom$g:" "$TMP/broker.log")
# One budget per started minute of the attack, and one "suppressed" line for each.
allowed=$(((20 + 1) * ((end - start) / 60 + 1)))
echo "$n drops of the attacker in $((end - start)) s: $lines log lines about it (allowed $allowed)"
[ "$lines" -le "$allowed" ] || fail "the broker logged $lines lines about the attacker"
ok "log lines about the attacker bounded: $lines for $n connections"
honest_finish
rss_check
only_dropped "dom$g(evil)"
