#!/usr/bin/env bash
# Xen's own xenstore test suite (xen-utils-4.17's test-xenstore), every test, as dom0.
. "$(dirname "$0")/xs-lib.sh" "$1"
TX=/usr/lib/xen-4.17/bin/test-xenstore
[ -x $TX ] || fail "$TX missing (install xen-utils-4.17)"
xs_up
out=$(dom0 $TX 2>&1) || fail "test-xenstore as dom0: $out"
echo "$out"
n=$(echo "$out" | grep -c ' ns$')
[ "$n" -eq "$($TX -l | wc -l)" ] || fail "expected every test to report, got $n"
# Its cleanup removed its own directory again.
dom0 xenstore-read /local/domain/0/xenstore-test >/dev/null 2>&1 && fail "test dir left behind"
ok "test-xenstore passes in full as dom0"
