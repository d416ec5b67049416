#!/usr/bin/env bash
# Malformed and hostile wire input (xs-malformed.py): Xen's error replies or a closed
# connection, never a crash, never an effect on other domains.
. "$(dirname "$0")/xs-lib.sh" "$1"
xs_up
A=$("$XS" domain create hostile) || fail "create"
B=$("$XS" domain create bystander) || fail "create"
python3 "$(dirname "$0")/xs-malformed.py" "$D" "$A" "$B" || fail "xs-malformed.py"
pid=$(cat "$D/xensimd.pid")
kill -0 "$pid" || fail "xensimd died"
[ "$(dom0 xenstore-read /local/domain/$B/name)" = bystander ] || fail "dom0 not served"
ok "xensimd survived hostile clients"
