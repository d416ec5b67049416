#!/usr/bin/env bash
# Xen's own xenstore test suite as an unprivileged domain (with quotas in force). It works
# below the domain's home, in xenstore-test/, which the toolstack (dom0) hands to the domain
# first, as a toolstack hands out any writable directory.
. "$(dirname "$0")/xs-lib.sh" "$1"
TX=/usr/lib/xen-4.17/bin/test-xenstore
[ -x $TX ] || fail "$TX missing (install xen-utils-4.17)"
xs_up
N=$("$XS" domain create guest) || fail "domain create"
dom0 xenstore-write /local/domain/$N/xenstore-test "" || fail "write"
dom0 xenstore-chmod /local/domain/$N/xenstore-test n$N || fail "chmod"
out=$(as_dom $N $TX 2>&1) || fail "test-xenstore as domain $N: $out"
echo "$out"
n=$(echo "$out" | grep -c ' ns$')
[ "$n" -eq "$($TX -l | wc -l)" ] || fail "expected every test to report, got $n"
# Without the grant, the same suite must be refused (the domain cannot write its home).
N2=$("$XS" domain create guest2) || fail "domain create 2"
as_dom $N2 $TX >/dev/null 2>&1 && fail "test-xenstore ran without write access to its home"
ok "test-xenstore passes in full as domain $N"
