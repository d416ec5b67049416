#!/usr/bin/env bash
# Policy against the attacks of issue 12. (1) The hijack: a guest that holds many SERVE streams
# on another guest's service used to answer most honest calls (and read their headers); with a
# policy it is refused every one, and every call reaches the rightful server. (2) Reading
# others' traffic: a guest subscribed to '>' receives only the topics policy lets it read (here
# its own prefix), never another guest's, in the order published; a subscriber without any
# subscribe right is refused. Two servers of one service share it only where policy allows both.
. "$(dirname "$0")/lib.sh" "$1"
PROBE=$B/tests/integration/policy-probe
RPC=$B/tests/integration/rpc-check
xs_up
store=$(guest store)
evil=$(guest evil)
web=$(guest web)
store2=$(guest store2)
mkdir -p "$TMP/policy"
cat >"$TMP/policy/10-test.policy" <<EOF
serve     storage.Store    store      allow
serve     storage.Store    store2     allow
call      storage.Store    @anyvm     allow
publish   guests.@self.>   @anyvm     allow
subscribe guests.@self.>   @anyvm     allow
publish   >                @local     allow
EOF
BROKER_POLICY=$TMP/policy broker_start

# (1) The hijack: evil opens 50 SERVE streams on storage.Store, each refused.
VBUS_URL=vchan:0 as_dom "$store" "$RPC" serve storage.Store store --ready "$TMP/store.ready" \
        >"$TMP/store.out" 2>&1 &
PIDS="$PIDS $!"
wait_file "$TMP/store.ready" || fail "store's server not active"
for i in $(seq 1 50); do
        out=$(VBUS_URL=vchan:0 as_dom "$evil" "$PROBE" serve storage.Store 2>&1)
        [ "$out" = permission-denied ] || fail "evil's SERVE $i: '$out'"
done
ok "50 SERVE attempts of evil on storage.Store: permission-denied each"
VBUS_URL=vchan:0 as_dom "$web" "$RPC" call storage.Store/Echo secret --count 20 \
        >"$TMP/calls.out" 2>&1 || fail "calls from web: $(cat "$TMP/calls.out")"
[ "$(grep -c '^ok store:secret$' "$TMP/calls.out")" = 20 ] ||
        fail "not every call reached store: $(sort "$TMP/calls.out" | uniq -c)"
ok "20 calls of web, each answered by store (none by evil)"

# Two servers allowed by policy share the service.
VBUS_URL=vchan:0 as_dom "$store2" "$RPC" serve storage.Store store2 --ready "$TMP/store2.ready" \
        >"$TMP/store2.out" 2>&1 &
PIDS="$PIDS $!"
wait_file "$TMP/store2.ready" || fail "store2's server not active"
VBUS_URL=vchan:0 as_dom "$web" "$RPC" call storage.Store/Slow x --count 8 >"$TMP/calls2.out" 2>&1 ||
        fail "calls from web: $(cat "$TMP/calls2.out")"
{ grep -q '^ok store$' "$TMP/calls2.out" && grep -q '^ok store2$' "$TMP/calls2.out"; } ||
        fail "the two allowed servers did not share the calls: $(sort "$TMP/calls2.out" | uniq -c)"
ok "two servers that policy allows share storage.Store: $(sort "$TMP/calls2.out" | uniq -c | tr -s ' \n' ' ')"

# (2) web subscribes to '>': accepted (it may read guests.web.>), filtered per topic.
VBUS_URL=vchan:0 as_dom "$web" "$VBUSCTL" sub '>' --count 2 >"$TMP/web-sub.out" 2>"$TMP/web-sub.log" &
p_sub=$!
PIDS="$PIDS $p_sub"
wait_grep '# subscribed to' "$TMP/web-sub.log" || fail "web's '>' subscription not active"
export VBUS_URL="unix:$SOCK"
"$VBUSCTL" pub guests.store.secret "store's secret" || fail "publish guests.store.secret"
"$VBUSCTL" pub other.topic "not for web" || fail "publish other.topic"
"$VBUSCTL" pub guests.web.one "for web 1" || fail "publish guests.web.one"
"$VBUSCTL" pub guests.store.secret "store's secret 2" || fail "publish guests.store.secret"
"$VBUSCTL" pub guests.web.two "for web 2" || fail "publish guests.web.two"
timeout 20 tail --pid="$p_sub" -f /dev/null
got=$(cut -d' ' -f1,3- "$TMP/web-sub.out")
want=$'guests.web.one for web 1\nguests.web.two for web 2'
[ "$got" = "$want" ] || fail "web's '>' subscriber got: $got"
ok "a '>' subscriber got only the topics it may read, in order: $(tr '\n' '|' <<<"$got")"

# A subscriber with no subscribe right at all (a local peer here) is refused.
out=$("$PROBE" sub '>')
[ "$out" = permission-denied ] || fail "local '>' subscription: '$out'"
ok "a '>' subscriber without any right: permission-denied"
