#!/usr/bin/env bash
# Domain lifecycle through the CLI: create, list, run, destroy (@releaseDomain, processes
# killed, nodes and socket gone), errors, and two instances side by side.
. "$(dirname "$0")/xs-lib.sh" "$1"

"$XS" domain list >/dev/null 2>&1 && fail "list without an instance should fail"
"$XS" --help | grep -q 'domain create' || fail "xensim --help"
for c in up down run "domain"; do
        "$XS" $c --help >/dev/null || fail "xensim $c --help"
done
xs_up
"$XS" up >/dev/null 2>&1 && fail "second up in the same dir should fail"
[ "$(dom0 xenstore-read /local/domain/0/name)" = Domain-0 ] || fail "dom0 name"
[ "$(dom0 xenstore-read /local/domain/0/domid)" = 0 ] || fail "dom0 domid"

# @introduceDomain and @releaseDomain as seen by dom0's xenstore-watch.
dom0 timeout 10 xenstore-watch -n 2 @introduceDomain >"$TMP/intro" 2>&1 &
pi=$!
dom0 timeout 20 xenstore-watch -n 2 @releaseDomain >"$TMP/rel" 2>&1 &
pr=$!
XS_PIDS="$pi $pr"
wait_for grep -q . "$TMP/intro" || fail "introduce watch did not start"
wait_for grep -q . "$TMP/rel" || fail "release watch did not start"
N=$("$XS" domain create victim) || fail "create"
[ -S "$D/dom$N.sock" ] || fail "no socket for domain $N"
wait $pi || fail "no @introduceDomain event: $(cat "$TMP/intro")"
"$XS" domain list | grep -q "^$N victim$" || fail "list shows the domain"
"$XS" domain create victim >/dev/null 2>&1 && fail "duplicate name accepted"
"$XS" domain create 'bad name' >/dev/null 2>&1 && fail "invalid name accepted"

# Processes of the domain, including a child in the same group.
as_dom victim sh -c 'sleep 1000 & echo $! >"$0"; exec sleep 1000' "$TMP/child" &
prun=$!
wait_for test -s "$TMP/child" || fail "run did not start"
child=$(cat "$TMP/child")
as_dom $N sh -c '[ "$XENSIM_DOMID" = '$N' ] && [ "$XENSTORED_PATH" = "$XENSIM_DIR/dom'$N'.sock" ]' ||
        fail "run environment"
"$XS" run --domid 99 -- true 2>/dev/null && fail "run in unknown domain"
"$XS" run --domid $N -- /nonexistent 2>/dev/null; [ $? = 127 ] || fail "run of missing cmd"

"$XS" domain destroy $N || fail "destroy"
wait $pr || fail "no @releaseDomain event: $(cat "$TMP/rel")"
wait_for sh -c "! kill -0 $prun 2>/dev/null" || fail "domain process survived"
wait_for sh -c "! kill -0 $child 2>/dev/null" || fail "domain child process survived"
wait $prun 2>/dev/null
[ -e "$D/dom$N.sock" ] && fail "socket left behind"
dom0 xenstore-read /local/domain/$N/name 2>/dev/null && fail "nodes left behind"
"$XS" domain list | grep -q victim && fail "destroyed domain still listed"
"$XS" domain destroy $N 2>/dev/null && fail "destroying twice"
"$XS" domain destroy 0 2>/dev/null && fail "destroying dom0"
ok "create/destroy fire @introduceDomain/@releaseDomain and destroy kills processes"

# Ids are not reused at once; a second instance is independent.
M=$("$XS" domain create next) || fail "create after destroy"
[ "$M" -gt "$N" ] || fail "domid reused: $M"
"$XS" --dir "$TMP/other" up >/dev/null || fail "second instance"
O=$("$XS" --dir "$TMP/other" domain create lonely) || fail "create in second instance"
[ "$O" = 1 ] || fail "second instance numbers from 1"
XENSTORED_PATH=$TMP/other/dom0.sock xenstore-read /local/domain/$M/name 2>/dev/null &&
        fail "instances share state"
"$XS" --dir "$TMP/other" down || fail "down second instance"
[ -e "$TMP/other/dom0.sock" ] && fail "down left a socket"
ok "independent instances"

# down kills the processes of every domain.
as_dom next sleep 1000 &
pn=$!
wait_for test -d "$D/dom$M.procs" || fail "no process record"
"$XS" down || fail "down"
wait_for sh -c "! kill -0 $pn 2>/dev/null" || fail "down left a domain process"
"$XS" down 2>/dev/null && fail "down twice"
ok "down stops everything"
