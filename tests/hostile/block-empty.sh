#!/usr/bin/env bash
# Finding 1: a guest publishes empty messages to its own BLOCK subscription, which never grants
# credit. Empty messages cost no window, so only the broker's per-item charge and the BLOCK
# queue's entry cap bound them: the attacker's subscription is refused (RESOURCE_EXHAUSTED), the
# broker's memory stays bounded, and the honest guests beside it lose nothing.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker
honest_start
g=$(attacker evil)
as_dom "$g" env "$HOSTILE" vchan:0 block-empty --seconds 10 --frames 100000000 >"$TMP/evil.out" 2>&1 ||
        fail "attacker: $(cat "$TMP/evil.out")"
cat "$TMP/evil.out"
rss_report
tail -n 1 "$TMP/evil.out" | grep -q "^refused resource-exhausted" ||
        fail "the attacker was not refused: $(tail -n 1 "$TMP/evil.out")"
ok "the attacker was refused: $(tail -n 1 "$TMP/evil.out")"
honest_finish
rss_check
only_dropped "dom$g(evil)"
