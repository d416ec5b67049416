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

# The metrics listener (metrics_listen in vchand.conf): HTTP GET on a UNIX socket and on a
# loopback TCP port, the same exposition; bad requests answered, idle connections timed out,
# never holding the bus; only loopback addresses accepted.
cat >"$TMP/scrape.py" <<'PYEOF'
import socket, sys, time
from prometheus_client.parser import text_string_to_metric_families

def connect(addr):
    if addr.startswith('unix:'):
        s = socket.socket(socket.AF_UNIX)
        s.connect(addr[5:])
    else:
        s = socket.create_connection(('127.0.0.1', int(addr.rsplit(':', 1)[1])))
    s.settimeout(20)
    return s

def ask(addr, request):
    s = connect(addr)
    s.sendall(request)
    data = b''
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head, _, body = data.partition(b'\r\n\r\n')
    return head.decode(), body.decode()

addr, mode = sys.argv[1], sys.argv[2]
if mode == 'get':
    head, body = ask(addr, b'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
    assert head.startswith('HTTP/1.0 200 OK'), head
    assert 'Content-Type: text/plain; version=0.0.4' in head, head
    assert 'Content-Length: %d' % len(body.encode()) in head, head
    fam = {f.name: f for f in text_string_to_metric_families(body)}
    pub = [s.value for s in fam['vbus_messages_published'].samples]
    assert pub == [float(sys.argv[3])], pub
elif mode == 'bad':
    head, body = ask(addr, b'POST / HTTP/1.0\r\n\r\n')
    assert head.startswith('HTTP/1.0 405'), head
    head, body = ask(addr, b'GET /' + b'a' * 10000 + b' HTTP/1.0\r\n\r\n')
    assert head.startswith('HTTP/1.0 431'), head
elif mode == 'idle':
    # More idle connections than the listener takes at once: it times them out, then serves.
    idle = [connect(addr) for _ in range(12)]
    t = time.monotonic()
    head, body = ask(addr, b'GET / HTTP/1.0\r\n\r\n')
    assert head.startswith('HTTP/1.0 200 OK'), head
    for s in idle:
        s.settimeout(20)
        assert s.recv(1) == b'', 'an idle connection was not closed'
PYEOF
broker_kill9
port=$("$PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
printf 'metrics_listen = unix:%s\n' "$TMP/metrics.sock" >"$TMP/unix.conf"
printf 'metrics_listen = tcp:localhost:%s\n' "$port" >"$TMP/tcp.conf"
broker_start --config "$TMP/unix.conf"
wait_grep "metrics on unix:$TMP/metrics.sock" "$TMP/broker.log" || fail "no metrics listener"
[ "$(stat -c %a "$TMP/metrics.sock")" = 660 ] || fail "the metrics socket is not 0660"
"$VBUSCTL" pub a.b x --count 3 || fail "publish"
"$PY" "$TMP/scrape.py" "unix:$TMP/metrics.sock" get 3 || fail "GET on the UNIX socket"
"$PY" "$TMP/scrape.py" "unix:$TMP/metrics.sock" bad || fail "bad requests"
"$PY" "$TMP/scrape.py" "unix:$TMP/metrics.sock" idle &
p_idle=$!
sleep 0.5
"$VBUSCTL" stats --json >/dev/null || fail "the bus is held by idle metrics connections"
wait "$p_idle" || fail "idle connections: the listener did not recover"
ok "metrics_listen unix: GET parsed by prometheus_client; 405, 431; idle connections timed out"
broker_kill9
[ ! -e "$TMP/metrics.sock" ] || rm -f "$TMP/metrics.sock"
broker_start --config "$TMP/tcp.conf"
wait_grep "metrics on tcp:127.0.0.1:$port" "$TMP/broker.log" || fail "no TCP metrics listener"
"$VBUSCTL" pub a.b x --count 2 || fail "publish"
"$PY" "$TMP/scrape.py" "tcp:127.0.0.1:$port" get 2 || fail "GET on TCP"
ok "metrics_listen tcp:localhost:$port: GET parsed by prometheus_client"
for bad in tcp:0.0.0.0:9000 tcp:10.0.0.1:9000 tcp:localhost:0 tcp:localhost:70000 unix:rel/path; do
        printf 'metrics_listen = %s\n' "$bad" >"$TMP/bad.conf"
        "$VCHAND" --config "$TMP/bad.conf" --check-config >"$TMP/bad.out" 2>&1 &&
                fail "metrics_listen = $bad was accepted"
        grep -q "metrics_listen wants" "$TMP/bad.out" || fail "$bad: $(cat "$TMP/bad.out")"
done
"$VCHAND" --config "$TMP/tcp.conf" --check-config | grep -qx "metrics_listen = tcp:127.0.0.1:$port" ||
        fail "--check-config does not show metrics_listen"
ok "metrics_listen: only loopback or a UNIX path; --check-config shows it"
