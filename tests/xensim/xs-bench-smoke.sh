#!/usr/bin/env bash
# xs-bench runs to completion against a fresh instance, as dom0 and as a domain, and reports
# a rate for every operation (behaviour only: the figures themselves are not asserted).
. "$(dirname "$0")/xs-lib.sh" "$1"
xs_up
N=$("$XS" domain create bench) || fail "create"
for dom in 0 "$N"; do
        out=$("$BIN/xs-bench" --dir "$D" --domid "$dom" --seconds 0.3) || fail "xs-bench as $dom"
        echo "$out"
        [ "$(echo "$out" | grep -c 'ops/s')" = 4 ] || fail "missing figures"
done
ok "xs-bench"
