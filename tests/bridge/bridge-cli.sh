#!/usr/bin/env bash
# vbus-bridge's command line and configuration errors: --help, --check of a good and of bad
# files (each error names its line; exit status 2), usage errors; and a bridge that starts
# while no NATS server is up (it keeps trying) and stops cleanly on SIGTERM.
. "$(dirname "$0")/lib.sh" "$1"

"$BRIDGE" --help | grep -q "^usage: vbus-bridge" || fail "--help"
"$BRIDGE" --bogus >/dev/null 2>&1
[ $? = 2 ] || fail "an unknown option is not a usage error"
ok "--help, usage error"

cat >"$TMP/good.conf" <<'CONF'
host alpha
nats nats://127.0.0.1:1
export sensors.>
CONF
out=$("$BRIDGE" --check --config "$TMP/good.conf") || fail "--check of a good file: $out"
[ "$out" = "$TMP/good.conf: ok" ] || fail "--check said: $out"
ok "--check: $out"

check_bad() { # EXPECTED-MESSAGE, then the file on stdin
        cat >"$TMP/bad.conf"
        local out rc
        out=$("$BRIDGE" --check --config "$TMP/bad.conf" 2>&1)
        rc=$?
        [ "$rc" = 2 ] && [ "$out" = "$TMP/bad.conf:$1" ] || fail "expected exit 2, '$1'; got $rc, '$out'"
        ok "bad config: ${out#"$TMP/"}"
}
printf 'host alpha\nnats nats://x:1\n\nimport beta\n' |
        check_bad "4: wrong number of arguments: import HOST|* PATTERN"
printf '# comment\nhost alpha\nnats nats://x:1\nexport remote.beta.>\n' |
        check_bad "4: export remote.beta.>: topics under the import root remote are never exported (they would loop)"
printf 'host alpha\nnats nats://x:1\nexpor sensors.>\n' | check_bad "3: unknown directive 'expor'"
printf 'host alpha\n' | check_bad " no 'nats URL' directive (at least one is required)"

# No NATS server at all: the bridge starts, keeps trying, and exits cleanly on SIGTERM.
host_up alpha
port=$(free_ports 1)
printf 'host alpha\nnats nats://127.0.0.1:%s\nexport s.>\n' "$port" >"$TMP/alpha.conf"
{ echo "broker unix:$TMP/alpha/broker.sock"; cat "$TMP/alpha.conf"; } >"$TMP/alpha/bridge.conf"
"$BRIDGE" --config "$TMP/alpha/bridge.conf" --metrics-file "$TMP/alpha/metrics" \
        >"$TMP/alpha/bridge.log" 2>&1 &
echo $! >"$TMP/alpha/bridge.pid"
sleep 1
kill -0 "$(cat "$TMP/alpha/bridge.pid")" || fail "the bridge gave up without NATS"
on_host alpha "$VBUSCTL" pub s.x lost >/dev/null || fail "pub"
bridge_stop alpha || fail "the bridge did not exit cleanly"
grep -q "^exported_messages" "$TMP/alpha/metrics" || fail "no metrics at exit"
ok "no NATS: the bridge waits for it, and stops cleanly ($(grep -E "^export(ed_messages|_failed)" "$TMP/alpha/metrics" | tr '\n' ' '))"

# --metrics-format prom: the same counters in the Prometheus text format, parsed by
# python3-prometheus-client (Debian's python3 has it).
"$BRIDGE" --config "$TMP/alpha/bridge.conf" --metrics-file "$TMP/alpha/metrics.prom" \
        --metrics-format prom >"$TMP/alpha/bridge.log" 2>&1 &
echo $! >"$TMP/alpha/bridge.pid"
sleep 1
on_host alpha "$VBUSCTL" pub s.x lost >/dev/null || fail "pub"
bridge_stop alpha || fail "the bridge did not exit cleanly"
/usr/bin/python3 - "$TMP/alpha/metrics.prom" <<'PYEOF' || fail "prom metrics: $(cat "$TMP/alpha/metrics.prom")"
import sys
from prometheus_client.parser import text_string_to_metric_families
fam = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
assert fam['vbus_bridge_uptime_seconds'].type == 'gauge'
assert fam['vbus_bridge_exported_messages'].type == 'counter'
s = fam['vbus_bridge_exported_messages'].samples[0]
assert s.name == 'vbus_bridge_exported_messages_total' and s.labels == {'host': 'alpha'}, s
assert all(f.type in ('counter', 'gauge') and f.documentation for f in fam.values())
assert len(fam) == 30, len(fam)
PYEOF
"$BRIDGE" --metrics-format json --check >/dev/null 2>&1
[ $? -eq 2 ] || fail "--metrics-format json is a usage error"
ok "--metrics-format prom: parsed by prometheus_client, host label, counters _total"
