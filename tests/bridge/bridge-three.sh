#!/usr/bin/env bash
# Three hosts, each exporting everything ('>') and importing everything from every host
# ('import * >'): each message reaches each other host exactly once, and nothing imported is
# exported again (no remote.*.remote.* topic anywhere, exact counts, no growth over time).
. "$(dirname "$0")/lib.sh" "$1"
nats_cluster 3
i=0
for h in alpha beta gamma; do
        i=$((i + 1))
        host_up "$h"
        cat >"$TMP/$h.conf" <<CONF
host $h
nats ${NATS_URL[$i]} ${NATS_URL[$((i % 3 + 1))]}
export >
import * >
CONF
        bridge_start "$h" "$TMP/$h.conf"
        bg_on_host "$h" "$TMP/$h-sub.out" "$BSUB" --bridge-pid-file "$TMP/$h/bridge.pid" 'remote.>'
done
for h in alpha beta gamma; do
        for o in alpha beta gamma; do
                [ "$h" = "$o" ] && continue
                probe_until "$h" "probe.$h" "$TMP/$o-sub.out" || fail "no probe from $h to $o"
        done
done
ok "every host hears every other host"

n_alpha=50 n_beta=30 n_gamma=20
for h in alpha beta gamma; do
        d=$(guest "$h" "app-$h")
        eval "n=\$n_$h"
        as_guest "$h" "$d" "$VBUSCTL" pub "data.$h" "from-$h" --count "$n" >/dev/null || fail "pub on $h"
done
sleep 2 # time for anything that would loop
for h in alpha beta gamma; do
        for o in alpha beta gamma; do
                [ "$h" = "$o" ] && continue
                eval "want=\$n_$o"
                got=$(grep -c "^remote.$o.data.$o $o:dom[0-9]*(app-$o) .* from-$o$" "$TMP/$h-sub.out")
                [ "$got" = "$want" ] || fail "$h got $got of $want messages from $o"
        done
        grep -q "^remote\.[a-z]*\.remote\." "$TMP/$h-sub.out" && fail "$h saw a re-exported import"
        grep -q "from-$h$" "$TMP/$h-sub.out" && fail "$h got its own messages back"
        grep -q FORGED "$TMP/$h-sub.out" && fail "$h saw a forgery"
        ok "$h: exactly $(grep -c "from-" "$TMP/$h-sub.out") messages from the other two hosts, none looped"
done
for h in alpha beta gamma; do
        [ "$(metric "$h" import_invalid)" = 0 ] || fail "$h import_invalid"
        [ "$(metric "$h" export_skipped_imports)" -gt 0 ] || fail "$h skipped no import"
done
ok "metrics: gamma $(grep -E "exported_messages|imported_messages|export_skipped" "$TMP/gamma/metrics" | tr '\n' ' ')"
