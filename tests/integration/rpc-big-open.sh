#!/usr/bin/env bash
# A call whose headers fit the caller's OPEN but not the OPEN the broker sends on to the server
# (which also carries the caller's identity) fails for the caller alone, with RESOURCE_EXHAUSTED:
# the server's link stays up and it goes on taking calls. (It used to be the server that was
# disconnected, as if it did not read its link.)
. "$(dirname "$0")/lib.sh" "$1"
xs_up
broker_start
export VBUS_URL=unix:$SOCK

bg "$VBUSCTL" serve t.v1.Big --exec "cat" 2>"$TMP/serve.log"
for i in $(seq 1 100); do grep -q "# serving" "$TMP/serve.log" && break; sleep 0.05; done
grep -q "# serving t.v1.Big" "$TMP/serve.log" || fail "vbusctl serve did not start"

# Five headers of $1 bytes each: the OPEN grows with $1 around the 4096-byte control limit.
call_big() {
        local v
        v=$(head -c "$1" /dev/zero | tr '\0' v)
        "$VBUSCTL" call t.v1.Big/Echo --header a="$v" --header b="$v" --header c="$v" \
                --header d="$v" --header e="$v" hi 2>&1
}

# Somewhere in this range the caller's OPEN still fits and the server's does not.
hit=""
for n in $(seq 760 4 840); do
        out=$(call_big "$n")
        rc=$?
        case "$rc:$out" in
        0:hi) ;;
        1:*resource-exhausted*"headers are too large"*) hit="$n: $out" ;;
        *) ;; # refused by the client library itself: the OPEN does not fit the caller's frame
        esac
        # Whatever happened to the call, the server is still there.
        grep -q "disconnected" "$TMP/broker.log" && grep -v "disconnected: closed$" \
                "$TMP/broker.log" | grep -q "disconnected" &&
                fail "headers of $n bytes: a link was dropped: $(grep disconnected "$TMP/broker.log")"
done
[ -n "$hit" ] || fail "no header size in the range made the server's OPEN too large"
ok "headers of $hit"

out=$("$VBUSCTL" call t.v1.Big/Echo "still here" 2>&1) || fail "after the large headers: $out"
[ "$out" = "still here" ] || fail "after the large headers: '$out'"
ok "the server still takes calls: $out"
grep "disconnected\|violation" "$TMP/broker.log" | grep -v "disconnected: closed$" >"$TMP/dropped"
[ -s "$TMP/dropped" ] && fail "a link was dropped or a violation logged: $(cat "$TMP/dropped")"
ok "no link dropped by the broker, no violation logged"
