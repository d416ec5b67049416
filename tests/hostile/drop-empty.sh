#!/usr/bin/env bash
# Finding 1: a guest opens 255 DROP subscriptions (queue_limit 65536, no credit) and publishes
# empty messages to them. Each queued item is charged against the subscriber's budget with a fixed
# overhead, so the queues stop at peer_memory: the attacker loses its own messages (counted as
# drops), the broker's memory stays bounded, and the honest guests beside it lose nothing.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker
honest_start
g=$(attacker evil)
as_dom "$g" env "$HOSTILE" vchan:0 drop-empty --seconds 10 --frames 100000000 >"$TMP/evil.out" 2>&1 ||
        fail "attacker: $(cat "$TMP/evil.out")"
cat "$TMP/evil.out"
rss_report
# Its own subscriptions drop what does not fit: it may go on publishing (or be refused), and
# is never the cause of anyone else's loss.
case "$(tail -n 1 "$TMP/evil.out")" in
survived | "refused resource-exhausted"*) ;;
*) fail "unexpected outcome for the attacker: $(tail -n 1 "$TMP/evil.out")" ;;
esac
ok "attacker: $(tail -n 1 "$TMP/evil.out")"
honest_finish
rss_check
only_dropped "dom$g(evil)"
