#!/usr/bin/env bash
# Debian's xenstore-utils as each domain, and Xen's permission rules between domains.
. "$(dirname "$0")/xs-lib.sh" "$1"
xs_up
A=$("$XS" domain create alice) || fail "create alice"
B=$("$XS" domain create bob) || fail "create bob"
[ "$A" = 1 ] && [ "$B" = 2 ] || fail "domids should be 1 and 2, got $A $B"

# Each domain sees its own identity and can use its data/ with relative and absolute paths.
[ "$(as_dom $A xenstore-read domid)" = "$A" ] || fail "alice reads her domid"
[ "$(as_dom $B xenstore-read name)" = bob ] || fail "bob reads his name"
as_dom $A xenstore-write data/x hello /local/domain/$A/data/y world || fail "alice writes data/"
[ "$(as_dom $A xenstore-read /local/domain/$A/data/x)" = hello ] || fail "alice reads back"
as_dom $A xenstore-ls data | grep -q '^y = "world"' || fail "alice lists data/"
[ "$(dom0 xenstore-read /local/domain/$A/data/y)" = world ] || fail "dom0 reads alice's node"
ok "xenstore-write/-read/-ls work as dom0 and as domains"

# Outside data/ a domain may not write, nor anywhere else in the tree.
as_dom $A xenstore-write /local/domain/$A/name mallory 2>/dev/null && fail "alice renamed herself"
as_dom $A xenstore-write /local/domain/$A/other x 2>/dev/null && fail "alice wrote outside data/"
as_dom $A xenstore-write /tool/x x 2>/dev/null && fail "alice wrote /tool"
as_dom $A xenstore-write /local/domain/$B/data/x x 2>/dev/null && fail "alice wrote into bob"
as_dom $A xenstore-rm /local/domain/$A/domid 2>/dev/null && fail "alice removed her domid"
ok "a domain cannot write outside its own data/"

# Bob cannot read (or list) alice's node until alice grants it.
as_dom $B xenstore-read /local/domain/$A/data/x 2>/dev/null && fail "bob read alice's node"
as_dom $B xenstore-ls /local/domain/$A/data 2>/dev/null && fail "bob listed alice's data/"
as_dom $B xenstore-chmod /local/domain/$A/data/x b$B 2>/dev/null && fail "bob chmod'ed alice's node"
as_dom $A xenstore-chmod data/x n$A r$B || fail "alice grants bob read"
[ "$(as_dom $B xenstore-read /local/domain/$A/data/x)" = hello ] || fail "bob reads after grant"
as_dom $B xenstore-write /local/domain/$A/data/x bob 2>/dev/null && fail "bob wrote with read grant"
as_dom $A xenstore-chmod data/x n$A b$B || fail "alice grants bob both"
as_dom $B xenstore-write /local/domain/$A/data/x bob || fail "bob writes after grant"
[ "$(as_dom $A xenstore-read data/x)" = bob ] || fail "alice sees bob's write"
as_dom $A xenstore-chmod data/x n$B 2>/dev/null && fail "alice gave her node away (owner change)"
as_dom $A xenstore-chmod data/x n$A 2>/dev/null || fail "alice revokes"
as_dom $B xenstore-read /local/domain/$A/data/x 2>/dev/null && fail "bob read after revoke"
ok "a domain's node is private until its owner grants access"

# dom0 may open a directory to a domain; the domain then owns what it creates there.
dom0 xenstore-write /shared "" && dom0 xenstore-chmod /shared n0 w$A || fail "dom0 shares /shared"
as_dom $A xenstore-write /shared/note hi || fail "alice writes in /shared"
as_dom $B xenstore-write /shared/note hi 2>/dev/null && fail "bob writes in /shared"
dom0 xenstore-ls -p /shared | grep -q "note = \"hi\".*(n$A,w$A)" || fail "alice owns /shared/note"
ok "writing outside data/ works where dom0 allows it"

# xenstore-rm, as owner and as intruder.
as_dom $B xenstore-rm /local/domain/$A/data/y 2>/dev/null && fail "bob removed alice's node"
as_dom $A xenstore-rm data/y || fail "alice removes her node"
as_dom $A xenstore-read data/y 2>/dev/null && fail "data/y still there"
ok "xenstore-rm obeys permissions"

# Watches: dom0 sees a domain's writes; bob does not see alice's private node change.
dom0 timeout 10 xenstore-watch -n 2 /local/domain/$A/data/w >"$TMP/w0" 2>&1 &
p0=$!
as_dom $B timeout 3 xenstore-watch /local/domain/$A/data/w >"$TMP/wb" 2>&1 &
pb=$!
XS_PIDS="$p0 $pb"
wait_for grep -q . "$TMP/w0" || fail "dom0 watch did not start"
wait_for grep -q . "$TMP/wb" || fail "bob's watch did not start"
as_dom $A xenstore-write data/w 1 || fail "alice writes data/w"
wait $p0 || fail "dom0's xenstore-watch did not see 2 events: $(cat "$TMP/w0")"
wait $pb
[ "$(grep -c . "$TMP/wb")" = 1 ] || fail "bob saw alice's private change: $(cat "$TMP/wb")"
ok "xenstore-watch sees changes, only where permitted"

# Quotas: node size (2048 bytes with its header) for domains, not for dom0.
big=$(head -c 2100 /dev/zero | tr '\0' a)
as_dom $A xenstore-write data/big "$big" 2>/dev/null && fail "alice exceeded the node size quota"
dom0 xenstore-write /big "$big" || fail "dom0 is not subject to quotas"
ok "node-size quota holds for domains only"

# A directory whose listing exceeds one message: libxenstore falls back to DIRECTORY_PART.
for i in $(seq 1 300); do echo "/wide/child-with-a-rather-long-name-$i"; echo x; done |
        XENSTORED_PATH=$D/dom0.sock xargs -n 200 xenstore-write || fail "write wide dir"
[ "$(dom0 xenstore-list /wide | wc -l)" = 300 ] || fail "xenstore-list of a 10 KiB directory"
ok "large directories are listed in parts"
