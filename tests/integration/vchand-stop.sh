#!/usr/bin/env bash
# vchand's configuration and its orderly stop, as a new operator meets them:
# - vchand.conf: a '#' after a value starts a comment; --check-config prints every key (its
#   output is itself a configuration that reads back the same);
# - log lines carry the "<N>" priority prefix only when stderr is the journal ($JOURNAL_STREAM);
# - SIGTERM: the socket goes at once (a new client finds no broker), a publication is refused
#   SHUTTING_DOWN and counted, a guest discovered meanwhile is refused, the peers left at the
#   deadline are closed before the last line, and the last line ("stopped: ...") counts it all.
. "$(dirname "$0")/lib.sh" "$1"
xs_up

# --- configuration ---
cat >"$TMP/vchand.conf" <<'CONF'
# a whole-line comment
queue_messages = 10 # the default is too many here
max_calls=7	# a tab before the comment
max_service_calls = 9#not a comment: no blank before it
CONF
"$VCHAND" --check-config -c "$TMP/vchand.conf" >"$TMP/o" 2>&1 && fail "a '#' glued to a value was taken as a comment"
grep -qx "vchand: $TMP/vchand.conf: line 4: max_service_calls wants an integer in 1..1048576" "$TMP/o" ||
        fail "line 4: $(cat "$TMP/o")"
ok "a '#' inside a value is part of it: $(cat "$TMP/o")"
sed -i 's/9#not a comment: no blank before it/9/' "$TMP/vchand.conf"
"$VCHAND" --check-config -c "$TMP/vchand.conf" >"$TMP/check1" 2>&1 || fail "--check-config: $(cat "$TMP/check1")"
for kv in "queue_messages = 10" "max_calls = 7" "max_service_calls = 9" "socket = /run/vbus/broker.sock" \
        "xen = yes" "hello_timeout_ms = 10000"; do
        grep -qx "$kv" "$TMP/check1" || fail "--check-config lacks '$kv': $(cat "$TMP/check1")"
done
ok "comments after values; --check-config prints $(wc -l <"$TMP/check1") keys, max_calls and max_service_calls among them"
"$VCHAND" --check-config -c "$TMP/check1" >"$TMP/check2" 2>&1 || fail "--check-config of its own output: $(cat "$TMP/check2")"
cmp -s "$TMP/check1" "$TMP/check2" || fail "--check-config's output does not read back the same"
ok "--check-config's output is a configuration that reads back the same"

# --- the priority prefix only for the journal ---
"$VCHAND" --socket "$TMP/x.sock" --no-xen --check-config >/dev/null || fail "check"
touch "$TMP/journal.log"
(
        exec 2>>"$TMP/journal.log"
        JOURNAL_STREAM=$(stat -c '%d:%i' "$TMP/journal.log") exec "$VCHAND" --no-xen --policy open --socket "$TMP/j.sock"
) &
jpid=$!
PIDS="$PIDS $jpid"
wait_file "$TMP/j.sock" || fail "journal broker did not start"
# Its first line is written once it is set up (signals included): SIGTERM is then an orderly stop.
wait_grep "listening on $TMP/j.sock" "$TMP/journal.log" || fail "journal broker: no first line"
kill -TERM "$jpid"
wait "$jpid" || fail "journal broker exit status $?"
grep -q "^<6>vchand: vbus broker .* listening on $TMP/j.sock" "$TMP/journal.log" ||
        fail "no priority prefix with JOURNAL_STREAM: $(cat "$TMP/journal.log")"
ok "stderr is the journal: $(head -n 1 "$TMP/journal.log")"

broker_start
# The socket exists before the first line is written: wait for the line.
wait_grep "^vchand: vbus broker .* listening on $SOCK" "$TMP/broker.log" ||
        fail "a file as stderr: $(head -n 1 "$TMP/broker.log")"
grep -q "<[0-9]>" "$TMP/broker.log" && fail "a priority prefix in a plain file: $(cat "$TMP/broker.log")"
ok "stderr is a file: $(head -n 1 "$TMP/broker.log")"

# --- the orderly stop ---
export VBUS_URL=unix:$SOCK
bg "$VBUSCTL" sub 'stop.>' >"$TMP/sub.out" 2>"$TMP/sub.log"
wait_grep "# subscribed" "$TMP/sub.log" || fail "subscriber not active"
"$VBUSCTL" pub stop.x a --count 1000000 --interval 20 >"$TMP/pub.out" 2>&1 &
pub_pid=$!
PIDS="$PIDS $pub_pid"
wait_grep "stop.x" "$TMP/sub.out" || fail "nothing published before the stop"
kill -TERM "$BROKER_PID"
wait_grep "stopping: sending GOAWAY" "$TMP/broker.log" || fail "the broker did not begin its stop"
[ -e "$SOCK" ] && fail "the socket is still there during the stop"
"$VBUSCTL" pub stop.late x --timeout 300 >"$TMP/late.out" 2>&1 && fail "a new client was served during the stop"
ok "a client during the stop: $(head -n 1 "$TMP/late.out")"
g=$(guest late)
bg as_dom "$g" env VBUS_URL=vchan:0 "$VBUSCTL" pub stop.guest x --timeout 5000
wait "$pub_pid"
rc=$?
[ "$rc" = 1 ] || fail "the publisher's exit status was $rc"
grep -q "refused to publish: shutting-down: the broker is stopping" "$TMP/pub.out" ||
        fail "publisher: $(cat "$TMP/pub.out")"
ok "the publisher was told: $(cat "$TMP/pub.out")"
wait "$BROKER_PID" || fail "broker exit status $?"
BROKER_PID=""
last=$(tail -n 1 "$TMP/broker.log")
[[ "$last" == "vchand: stopped: "* ]] || fail "the last line is '$last'"
after_stop=$(sed -n '/stopping: sending GOAWAY/,$p' "$TMP/broker.log")
grep -q "): connected" <<<"$after_stop" && fail "a peer connected during the stop: $after_stop"
n_refused=$(sed 's/.* \([0-9]*\) publications refused while stopping.*/\1/' <<<"$last")
[ "$n_refused" -ge 1 ] || fail "no publication counted as refused: $last"
published=$(sed 's/^vchand: stopped: \([0-9]*\) published.*/\1/' <<<"$last")
received=$(grep -c "^stop.x " "$TMP/sub.out")
# Every message routed reached the one subscriber (DROP, far under its queue): the count matches
# what it printed, so nothing was routed behind the last line's back.
[ "$published" = "$received" ] || fail "the last line counts $published published, the subscriber got $received"
ok "last line: $last"
if grep -q "dom$g: not connected: the broker is stopping" "$TMP/broker.log"; then
        ok "the guest that came during the stop was refused"
else
        ok "the guest that came during the stop was not discovered before the broker exited"
fi
