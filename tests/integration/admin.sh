#!/usr/bin/env bash
# vbusctl's admin commands against known traffic: a guest publishes exactly 10 messages (41 bytes)
# on sensors.temp and keeps its stream open, another subscribes to sensors.> and gets them.
# peers, topics, subs and stats, as text and as JSON (validated by python's json module), show
# exactly those counts; stats --watch refreshes with rates; kick disconnects a session by id and a
# domain by domN, with the reason in the broker's log and in the counters; reload re-reads
# vchand.conf, applies what it can and names what needs a restart. A guest without the admin
# right is refused each admin method with PERMISSION_DENIED (counted as its denials) and may still
# list services; nobody but the broker publishes under vbus.*.
. "$(dirname "$0")/lib.sh" "$1"
PY=python3
xs_up
s=$(guest sensor)
d=$(guest dash)
m=$(guest mallory)
k=$(guest kicked)
printf 'queue_messages = 100\n' >"$TMP/vchand.conf"
broker_start --config "$TMP/vchand.conf"
export VBUS_URL=unix:$SOCK

bg as_dom "$d" env VBUS_URL=vchan:0 "$VBUSCTL" sub 'sensors.>' >"$TMP/dash.out" 2>"$TMP/dash.log"
wait_grep "subscribed" "$TMP/dash.log" || fail "dash's subscription"
# The publisher's stdin stays open (sleep), so its publish stream stays listed.
bg sh -c "(for i in 1 2 3 4 5 6 7 8 9 10; do echo 21.\$i; done; sleep 600) |
        '$XS' run --domid $s -- env VBUS_URL=vchan:0 '$VBUSCTL' pub sensors.temp -" \
        >"$TMP/pub.log" 2>&1
for i in $(seq 1 300); do
        [ "$(wc -l <"$TMP/dash.out")" -ge 10 ] && break
        sleep 0.05
done
[ "$(wc -l <"$TMP/dash.out")" -eq 10 ] || fail "dash got $(wc -l <"$TMP/dash.out") of 10"

# JSON: one object, checked field by field.
json() {
        "$VBUSCTL" "$@" --json >"$TMP/j.out" 2>"$TMP/j.log" || fail "vbusctl $* --json"
        $PY -m json.tool "$TMP/j.out" >/dev/null || fail "vbusctl $* --json: not JSON: $(cat "$TMP/j.out")"
}
check() {
        $PY -c "import json,sys; j=json.load(open('$TMP/j.out')); $1" ||
                fail "$2: $(cat "$TMP/j.out")"
}

json peers
check "
ps = {p['domain_name']: p for p in j['peers']}
assert j['total'] == len(j['peers']) == 3 and not j['truncated'], j['total']
sen, das = ps['sensor'], ps['dash']
assert sen['domid'] == $s and sen['transport'] == 'vchan' and not sen['local']
assert sen['published'] == 10 and sen['streams'] == 1 and sen['subscriptions'] == 0
assert sen['frames_in'] >= 11 and sen['bytes_in'] >= 10 * 16 + 41, sen
# The broker may batch the ten messages to dash (protocol.md 5.5): fewer frames, every byte.
assert das['subscriptions'] == 1 and das['published'] == 0 and das['frames_out'] >= 2
assert das['bytes_out'] >= 10 * 4 + 41 and das['dropped'] == 0
assert sen['ring_in'] > 0 and sen['ring_out'] > 0
assert all(p['violations'] == 0 and p['denials'] == 0 for p in j['peers'])
me = [p for p in j['peers'] if p['local']]
assert len(me) == 1 and me[0]['transport'] == 'unix' and me[0]['uid'] == 0
assert j['presence_seq'] > 0
" "peers --json"
ok "peers --json: sensor published 10, dash subscribes, the caller is local"
"$VBUSCTL" peers >"$TMP/peers.txt" || fail "peers"
grep -q "^ID  *PEER  *LINK  *CONNECTED  *STREAMS" "$TMP/peers.txt" || fail "peers header: $(cat "$TMP/peers.txt")"
awk -v s="dom$s(sensor)" '$2 == s && $3 == "vchan" && $10 == 10 { f = 1 } END { exit !f }' \
        "$TMP/peers.txt" || fail "peers text: no sensor line with 10 published: $(cat "$TMP/peers.txt")"
[ "$(grep -c '^[0-9]' "$TMP/peers.txt")" -eq 3 ] || fail "peers text: not 3 sessions"
ok "peers: one line per session"

json topics
check "
t = {x['name']: x for x in j['topics']}
assert set(t) == {'sensors.temp', 'sensors.>'}, set(t)
p, q = t['sensors.temp'], t['sensors.>']
assert (p['publishers'], p['subscriptions'], p['messages'], p['bytes']) == (1, 0, 10, 41), p
assert (q['publishers'], q['subscriptions'], q['delivered'], q['dropped']) == (0, 1, 10, 0), q
assert p['oldest_us'] > 0 and p['rate_per_second'] > 0
" "topics --json"
"$VBUSCTL" topics >"$TMP/topics.txt" || fail "topics"
awk '$1 == "sensors.temp" && $2 == 1 && $4 == 10 && $5 == 41 { f = 1 } END { exit !f }' \
        "$TMP/topics.txt" || fail "topics text: $(cat "$TMP/topics.txt")"
awk '$1 == "sensors.>" && $3 == 1 && $6 == 10 { f = 1 } END { exit !f }' "$TMP/topics.txt" ||
        fail "topics text: $(cat "$TMP/topics.txt")"
ok "topics: sensors.temp 1 publisher 10 messages 41 bytes, sensors.> delivered 10"

json subs
check "
assert j['total'] == 1 and len(j['subs']) == 1
x = j['subs'][0]
assert x['pattern'] == 'sensors.>' and x['peer_label'] == 'dom$d(dash)' and x['policy'] == 'drop'
assert x['delivered'] == 10 and x['dropped'] == 0 and x['queue_limit'] == 100, x
" "subs --json"
"$VBUSCTL" subs >"$TMP/subs.txt" || fail "subs"
awk -v l="dom$d(dash)" '$1 == "sensors.>" && $3 == l && $5 == "drop" && $6 == "0/100" && $7 == 10 { f = 1 } END { exit !f }' \
        "$TMP/subs.txt" || fail "subs text: $(cat "$TMP/subs.txt")"
ok "subs: sensors.> of dom$d(dash), drop, queue limit 100 from vchand.conf, 10 delivered"

json stats
check "
assert (j['peers'], j['published'], j['delivered'], j['dropped']) == (3, 10, 10, 0), j
assert j['subscriptions'] == 1 and j['violations'] == 0 and j['kicks'] == 0
assert j['rss_bytes'] > 0 and j['fds'] > 0 and j['grant_mappings'] >= 2 and j['uptime_us'] > 0
" "stats --json"
"$VBUSCTL" stats >"$TMP/stats.txt" || fail "stats"
grep -q "^published  *10$" "$TMP/stats.txt" || fail "stats text: $(cat "$TMP/stats.txt")"
grep -q "^uptime " "$TMP/stats.txt" || fail "stats text: no uptime"
ok "stats: 3 peers, 10 published, 10 delivered"

# --watch: two refreshes (not a terminal: separated by a blank line), the second with rates.
"$VBUSCTL" stats --watch --count 2 --interval 200 >"$TMP/watch.txt" || fail "stats --watch"
[ "$(grep -c '^uptime' "$TMP/watch.txt")" -eq 2 ] || fail "stats --watch: $(cat "$TMP/watch.txt")"
grep -q "^published  *10  *0.0/s$" "$TMP/watch.txt" || fail "stats --watch rates: $(cat "$TMP/watch.txt")"
"$VBUSCTL" stats --watch --count 2 --interval 100 --json >"$TMP/watch.json" || fail "watch json"
[ "$(wc -l <"$TMP/watch.json")" -eq 2 ] || fail "stats --watch --json: not 2 lines"
while read -r line; do
        echo "$line" | $PY -m json.tool >/dev/null || fail "stats --watch --json line: $line"
done <"$TMP/watch.json"
ok "stats --watch: refreshes with rates; --json: one object per refresh"

# A guest without the admin right: every admin method refused, each counted as a denial.
for cmd in peers topics subs stats "stats --prom" "kick 1" reload "monitor --count 1"; do
        # shellcheck disable=SC2086 # the words of $cmd are arguments
        as_dom "$m" env VBUS_URL=vchan:0 "$VBUSCTL" $cmd >"$TMP/m.out" 2>"$TMP/m.log" &&
                fail "mallory's $cmd succeeded: $(cat "$TMP/m.out")"
        grep -q "permission-denied" "$TMP/m.log" || fail "mallory's $cmd: $(cat "$TMP/m.log")"
done
as_dom "$m" env VBUS_URL=vchan:0 "$VBUSCTL" services >"$TMP/m.out" 2>&1 ||
        fail "mallory may list services: $(cat "$TMP/m.out")"
json stats
check "assert j['denials'] == 8, j['denials']" "8 denials counted"
ok "a guest without the admin right is refused each of the 8 admin methods, and may list services"

# Nobody but the broker publishes under vbus.*: the publish stream is refused (PERMISSION_DENIED,
# logged), nothing is routed. (vbusctl pub does not read the broker's answer while it publishes
# a few messages, so its exit status does not show the refusal: the broker's side is checked.)
as_dom "$m" env VBUS_URL=vchan:0 "$VBUSCTL" pub vbus.peer.up fake >"$TMP/m.out" 2>"$TMP/m.log"
# Once mallory's session is gone, the broker has read all it sent (a closing peer is read to
# the end). (Its log line may be rate-limited by now: mallory was refused 8 times above.)
for i in $(seq 1 300); do
        "$VBUSCTL" peers --json >"$TMP/j.out" || fail "peers"
        grep -q '"domain_name":"mallory"' "$TMP/j.out" || break
        sleep 0.05
done
json stats
check "assert j['published'] == 10, j['published']" "mallory's message was not routed"
ok "a guest may not publish on vbus.peer.up (refused, nothing routed)"

# reload: vchand.conf again; a changed max_frame needs a restart and is named.
printf 'queue_messages = 200\nmax_frame = 32768\n' >"$TMP/vchand.conf"
"$VBUSCTL" reload >"$TMP/reload.txt" || fail "reload: $(cat "$TMP/reload.txt")"
grep -q "configuration reloaded from $TMP/vchand.conf; needs a restart: max_frame" \
        "$TMP/reload.txt" || fail "reload: $(cat "$TMP/reload.txt")"
bg as_dom "$k" env VBUS_URL=vchan:0 "$VBUSCTL" sub 'other.>' >/dev/null 2>"$TMP/k.log"
wait_grep "subscribed" "$TMP/k.log" || fail "kicked's subscription"
json subs
check "
q = {x['pattern']: x['queue_limit'] for x in j['subs']}
assert q == {'sensors.>': 100, 'other.>': 200}, q
" "reload applied queue_messages to new subscriptions only"
printf 'queue_messages = 7x\n' >"$TMP/vchand.conf"
"$VBUSCTL" reload --json >"$TMP/reload.txt" 2>&1 && fail "reload of a bad file succeeded"
grep -q "nothing changed" "$TMP/reload.txt" || fail "reload of a bad file: $(cat "$TMP/reload.txt")"
printf 'queue_messages = 300\n' >"$TMP/vchand.conf"
json reload
check "assert j['message'] == 'configuration reloaded from $TMP/vchand.conf; no policy to reload (--policy open)', j" "reload --json"
ok "reload: applied to new subscriptions, max_frame needs a restart, a bad file changes nothing"

# kick: by id (from peers), and a whole domain by domN.
json peers
id=$($PY -c "import json; print([p['id'] for p in json.load(open('$TMP/j.out'))['peers'] if p['domain_name'] == 'dash'][0])")
"$VBUSCTL" kick "$id" --reason "maintenance window" >"$TMP/kick.txt" || fail "kick $id"
grep -qx "kicked 1 session" "$TMP/kick.txt" || fail "kick: $(cat "$TMP/kick.txt")"
wait_grep "dom$d(dash): disconnected: kicked by an admin: maintenance window" "$TMP/broker.log" ||
        fail "kick not logged with its reason"
json kick "dom$k"
check "assert j == {'kicked': 1}, j" "kick domN --json"
wait_grep "dom$k(kicked): disconnected: kicked by an admin: no reason given" "$TMP/broker.log" ||
        fail "kick dom$k not logged"
"$VBUSCTL" kick 999999 >"$TMP/kick.txt" 2>&1 && fail "kick of no session succeeded"
grep -q "not-found: no session 999999" "$TMP/kick.txt" || fail "kick 999999: $(cat "$TMP/kick.txt")"
"$VBUSCTL" kick dom0 >"$TMP/kick.txt" 2>&1
[ $? -eq 2 ] || fail "kick dom0 is a usage error"
"$VBUSCTL" kick banana >"$TMP/kick.txt" 2>&1
[ $? -eq 2 ] || fail "kick banana is a usage error"
json stats
check "assert j['kicks'] == 2, j['kicks']" "2 kicks counted"
ok "kick: by id with a reason, by domain, unknown ids refused, counted"

"$VBUSCTL" peers --watch >/dev/null 2>&1
[ $? -eq 2 ] || fail "peers --watch is a usage error"
"$VBUSCTL" stats --help | grep -q "monitor \[PATTERN\]" || fail "stats --help"
ok "usage errors and --help"

# Under a policy, the policy decides (action admin, by class): a guest granted `list` may read
# the peers but not kick; Reload also reloads the policy.
broker_kill9
w=$(guest watcher)
mkdir -p "$TMP/policy"
cat >"$TMP/policy/10-admin.policy" <<POLICY
admin      *          @uid:0      allow
admin      list       watcher     allow
POLICY
BROKER_POLICY=$TMP/policy broker_start
as_dom "$w" env VBUS_URL=vchan:0 "$VBUSCTL" peers --json >"$TMP/j.out" 2>"$TMP/w.log" ||
        fail "watcher may list peers under the policy: $(cat "$TMP/w.log")"
check "assert any(p['domain_name'] == 'watcher' for p in j['peers'])" "watcher's peers"
as_dom "$w" env VBUS_URL=vchan:0 "$VBUSCTL" kick 1 >/dev/null 2>"$TMP/w.log" &&
        fail "watcher may not kick"
grep -q "permission-denied: policy: admin" "$TMP/w.log" || fail "watcher's kick: $(cat "$TMP/w.log")"
as_dom "$m" env VBUS_URL=vchan:0 "$VBUSCTL" stats >/dev/null 2>"$TMP/m.log" &&
        fail "mallory may not read stats under the policy"
"$VBUSCTL" reload >"$TMP/reload.txt" || fail "reload under the policy: $(cat "$TMP/reload.txt")"
grep -q "; policy reloaded: 2 rules from $TMP/policy, 0 streams revoked$" "$TMP/reload.txt" ||
        fail "reload under the policy: $(cat "$TMP/reload.txt")"
ok "under a policy: admin list granted to a guest, kick not; reload reloads the policy"
