#!/usr/bin/env bash
# test-xenstore's random mode for 30 seconds, as dom0 and as a domU at the same time.
. "$(dirname "$0")/xs-lib.sh" "$1"
TX=/usr/lib/xen-4.17/bin/test-xenstore
[ -x $TX ] || fail "$TX missing (install xen-utils-4.17)"
xs_up
N=$("$XS" domain create guest) || fail "domain create"
dom0 xenstore-write /local/domain/$N/xenstore-test "" || fail "write"
dom0 xenstore-chmod /local/domain/$N/xenstore-test n$N || fail "chmod"
dom0 $TX -r 30 >"$TMP/dom0.out" 2>&1 &
p0=$!
XS_PIDS="$p0"
as_dom $N $TX -r 30 >"$TMP/domu.out" 2>&1 || fail "random as domain $N: $(tail -5 "$TMP/domu.out")"
wait $p0 || fail "random as dom0: $(tail -5 "$TMP/dom0.out")"
grep -q failed "$TMP/dom0.out" "$TMP/domu.out" && fail "a test failed"
ok "test-xenstore -r 30 passes as dom0 and as domain $N concurrently"
