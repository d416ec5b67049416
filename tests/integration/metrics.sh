#!/usr/bin/env bash
# vbusctl stats --prom (vbus.v1.Broker/Metrics) parsed by an independent parser, the text parser
# of python3-prometheus-client (Debian's): against known traffic (7 messages published, 5 calls to
# kv.v1.Store that succeed, 2 to bad.v1.Svc that fail), every family has HELP and TYPE, every
# name starts with vbus_, counters end in _total, and the values are exactly the traffic's: the
# message counters, the latency histogram of each service (cumulative buckets, +Inf == count),
# the finished calls by outcome, per-peer series labelled with the broker's identities, and the
# resource gauges (memory, fds, grant pages).
. "$(dirname "$0")/lib.sh" "$1"
# Debian's python3 (python3-prometheus-client), not another one first on PATH.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c "import prometheus_client.parser" 2>/dev/null ||
        fail "python3-prometheus-client is missing (scripts/deps.sh installs it)"
xs_up
s=$(guest sensor)
d=$(guest dash)
kv=$(guest kv)
bad=$(guest bad)
cl=$(guest caller)
broker_start
export VBUS_URL=unix:$SOCK

bg as_dom "$d" env VBUS_URL=vchan:0 "$VBUSCTL" sub 'sensors.>' --count 7 >"$TMP/dash.out" 2>&1
p_dash=$!
wait_grep "subscribed" "$TMP/dash.out" || fail "dash's subscription"
as_dom "$s" env VBUS_URL=vchan:0 "$VBUSCTL" pub sensors.temp 21.5 --count 7 ||
        fail "publish"
wait "$p_dash" || fail "dash did not get 7 messages"

bg as_dom "$kv" env VBUS_URL=vchan:0 "$VBUSCTL" serve kv.v1.Store --exec cat >"$TMP/kv.log" 2>&1
bg as_dom "$bad" env VBUS_URL=vchan:0 "$VBUSCTL" serve bad.v1.Svc --exec 'exit 103' \
        >"$TMP/bad.log" 2>&1
wait_grep "serving kv.v1.Store" "$TMP/kv.log" || fail "kv server"
wait_grep "serving bad.v1.Svc" "$TMP/bad.log" || fail "bad server"
for i in 1 2 3 4 5; do
        as_dom "$cl" env VBUS_URL=vchan:0 "$VBUSCTL" call kv.v1.Store/Get "key$i" >/dev/null ||
                fail "call $i"
done
for i in 1 2; do
        as_dom "$cl" env VBUS_URL=vchan:0 "$VBUSCTL" call bad.v1.Svc/Do x >/dev/null 2>&1 &&
                fail "bad call $i succeeded"
done

"$VBUSCTL" stats --prom >"$TMP/prom.txt" || fail "stats --prom"
"$PY" - "$TMP/prom.txt" "$kv" "$bad" <<'EOF' || fail "the exposition: $(head -c 3000 "$TMP/prom.txt")"
import sys
from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1]).read()
kv, bad = 'dom%s(kv)' % sys.argv[2], 'dom%s(bad)' % sys.argv[3]
families = {f.name: f for f in text_string_to_metric_families(text)}
samples = {}
for f in families.values():
    assert f.name.startswith('vbus_'), f.name
    assert f.documentation, f.name + ' has no HELP'
    assert f.type in ('counter', 'gauge', 'histogram'), (f.name, f.type)
    for s in f.samples:
        samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        if f.type == 'counter':
            assert s.name.endswith('_total'), s.name
# Every TYPE line names a family the parser found (nothing unparsed or untyped).
for line in text.splitlines():
    if line.startswith('# TYPE '):
        name = line.split()[2]
        assert name in families or name[:-len('_total')] in families, name

def one(name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]

assert one('vbus_messages_published_total') == 7
assert one('vbus_messages_delivered_total') == 7
assert one('vbus_messages_dropped_total') == 0
assert one('vbus_calls_total') >= 7 and one('vbus_calls_failed_total') == 2
assert one('vbus_services') == 2
assert one('vbus_resident_memory_bytes') > 0 and one('vbus_open_fds') > 0
assert one('vbus_grant_mapped_pages') >= 3
assert one('vbus_uptime_seconds') > 0

# Per-peer series carry the broker's identities: the two servers are connected (one SERVE
# stream each, received frames counted), and the asking vbusctl is a local session.
peers = {dict(l)['peer']: dict(l) for (n, l), v in samples.items() if n == 'vbus_peer_streams'}
assert kv in peers and bad in peers, sorted(peers)
assert peers[kv]['transport'] == 'vchan'
assert one('vbus_peer_streams', **peers[kv]) == 1
assert one('vbus_peer_received_frames_total', **peers[kv]) >= 5
assert any(p.startswith('local uid 0 pid ') and l['transport'] == 'unix' for p, l in peers.items())

# Latency histograms: cumulative, +Inf == count == calls of the service.
def hist(service):
    b = sorted(((float(dict(l)['le']), v) for (n, l), v in samples.items()
                if n == 'vbus_call_duration_seconds_bucket' and dict(l)['service'] == service))
    counts = [v for _, v in b]
    assert counts == sorted(counts), counts
    assert b[-1][0] == float('inf')
    assert b[-1][1] == one('vbus_call_duration_seconds_count', service=service)
    assert one('vbus_call_duration_seconds_sum', service=service) > 0
    return b[-1][1]

assert families['vbus_call_duration_seconds'].type == 'histogram'
assert hist('kv.v1.Store') == 5
assert hist('bad.v1.Svc') == 2
assert one('vbus_calls_finished_total', service='kv.v1.Store', outcome='ok') == 5
assert one('vbus_calls_finished_total', service='kv.v1.Store', outcome='error') == 0
assert one('vbus_calls_finished_total', service='bad.v1.Svc', outcome='error') == 2
EOF
ok "stats --prom: parsed by prometheus_client, conventions kept, values are the traffic's"

# A guest without the admin right gets no metrics.
as_dom "$cl" env VBUS_URL=vchan:0 "$VBUSCTL" stats --prom >"$TMP/m.out" 2>&1 &&
        fail "a guest read the metrics"
grep -q "permission-denied" "$TMP/m.out" || fail "metrics refusal: $(cat "$TMP/m.out")"
ok "a guest without the admin right is refused the metrics"
