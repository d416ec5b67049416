# Shared setup for the bridge tests (sourced). Usage: . lib.sh BUILD_DIR
# Each test starts its own processes in a private directory and removes them at exit:
#   nats_cluster N            N nats-server nodes on 127.0.0.1, routed to each other, random
#                             free ports: NATS_URL[i] (i from 1), NATS_PID[i], $NATS_URLS (all)
#   nats_kill9 I              kill -9 node I
#   host_up NAME              a xensim instance, its vchand: $TMP/NAME/{xs,broker.sock}
#   guest HOST DOMNAME        creates a guest domain on HOST, prints its domid
#   as_guest HOST DOMID CMD   runs CMD in that guest, connected to HOST's broker over vchan
#   on_host HOST CMD          runs CMD in HOST's dom0, connected over the broker's socket
#   bg_on_host HOST OUT CMD   the same in the background (stdout OUT, stderr OUT.err), killed
#                             at exit; its pid in $!
#   bridge_start HOST CONF    vbus-bridge for HOST with config file CONF (waits until ready);
#                             its pid in $TMP/HOST/bridge.pid, log $TMP/HOST/bridge.log
#   bridge_stop HOST          SIGTERM, waits; bridge_kill9 HOST
#   metric HOST NAME          the bridge's counter NAME now (SIGUSR1, then reads the file)
#   bg CMD...                 background process, killed at exit
set -u
B=${1:?usage: $0 BUILD_DIR}
B=$(cd "$B" && pwd)
XS=$B/xensim/xensim
VCHAND=$B/vchand/vchand
VBUSCTL=$B/clients/vbusctl/vbusctl
BRIDGE=$B/bridge/vbus-bridge
BSUB=$B/bridge/vbus-bridge-sub
NCHECK=$B/bridge/tests/bridge-nats-check
TMP=$(mktemp -d /tmp/vbus-bridge-it.XXXXXX)
PIDS=""
HOSTS=""
declare -A NATS_URL NATS_PID

command -v nats-server >/dev/null || { echo "SKIP: nats-server is not installed"; exit 77; }

cleanup() {
        local p h
        for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
        for h in $HOSTS; do
                [ -f "$TMP/$h/bridge.pid" ] && kill -9 "$(cat "$TMP/$h/bridge.pid")" 2>/dev/null
                XENSIM_DIR=$TMP/$h/xs "$XS" down >/dev/null 2>&1
        done
        for p in "${NATS_PID[@]}" $(cat "$TMP/nats.pids" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        wait 2>/dev/null
        [ "${KEEP:-0}" = 1 ] && { echo "kept $TMP" >&2; return; }
        rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
        echo "FAIL: $*" >&2
        grep -rh -A 40 "ERROR: .*Sanitizer\|runtime error" "$TMP" --include='*.log' --include='*.err' \
                2>/dev/null | head -n 60 >&2
        for f in $(find "$TMP" -name '*.log' -o -name '*.out' -o -name '*.err' | sort); do
                [ -s "$f" ] && { echo "--- $f" >&2; tail -n 25 "$f" >&2; }
        done
        exit 1
}

ok() {
        echo "ok: $*"
}

bg() {
        "$@" &
        PIDS="$PIDS $!"
}

# Waits up to 20 s for a file to exist.
wait_file() {
        local i
        for i in $(seq 1 400); do
                [ -e "$1" ] && return 0
                sleep 0.05
        done
        return 1
}

# Waits up to 20 s for a grep pattern in a file.
wait_grep() {
        local i
        for i in $(seq 1 400); do
                grep -q -- "$1" "$2" 2>/dev/null && return 0
                sleep 0.05
        done
        return 1
}

# Prints N free TCP ports on 127.0.0.1 (bound by the kernel, then released).
free_ports() {
        python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
for s in ss: s.close()' "$1"
}

nats_node_start() { # I CLIENT-PORT CLUSTER-PORT ROUTES
        local i=$1
        nats-server -a 127.0.0.1 -p "$2" --cluster "nats://127.0.0.1:$3" --cluster_name vbt \
                --routes "$4" -l "$TMP/nats$i.log" &
        NATS_PID[$i]=$!
        echo $! >>"$TMP/nats.pids"
        NATS_URL[$i]=nats://127.0.0.1:$2
}

nats_cluster() {
        local n=$1 i ports cports routes
        read -r -a ports <<<"$(free_ports "$n")"
        read -r -a cports <<<"$(free_ports "$n")"
        NATS_CPORTS=("${cports[@]}")
        NATS_PORTS=("${ports[@]}")
        routes=""
        for i in $(seq 0 $((n - 1))); do routes="$routes${routes:+,}nats://127.0.0.1:${cports[$i]}"; done
        NATS_ROUTES=$routes
        NATS_URLS=""
        for i in $(seq 1 "$n"); do
                nats_node_start "$i" "${ports[$((i - 1))]}" "${cports[$((i - 1))]}" "$routes"
                NATS_URLS="$NATS_URLS ${NATS_URL[$i]}"
        done
        for i in $(seq 1 "$n"); do
                wait_grep "Server is ready" "$TMP/nats$i.log" || fail "nats-server $i did not start"
        done
        # Every node routed to every other one.
        for i in $(seq 1 "$n"); do
                local k
                for k in $(seq 1 100); do
                        [ "$(grep -c "Route connection created" "$TMP/nats$i.log")" -ge $((n - 1)) ] && break
                        sleep 0.1
                done
        done
        ok "NATS cluster of $n nodes:$NATS_URLS"
}

nats_kill9() {
        kill -9 "${NATS_PID[$1]}" 2>/dev/null
        wait "${NATS_PID[$1]}" 2>/dev/null
}

host_up() {
        local h=$1
        mkdir -p "$TMP/$h"
        HOSTS="$HOSTS $h"
        XENSIM_DIR=$TMP/$h/xs "$XS" up >/dev/null || fail "xensim up ($h)"
        XENSIM_DIR=$TMP/$h/xs "$XS" run --domid 0 -- "$VCHAND" --socket "$TMP/$h/broker.sock" --policy open \
                >>"$TMP/$h/broker.log" 2>&1 &
        PIDS="$PIDS $!"
        wait_file "$TMP/$h/broker.sock" || fail "broker of $h did not start"
}

guest() {
        XENSIM_DIR=$TMP/$1/xs "$XS" domain create "$2" || fail "domain create $2 on $1"
}

as_guest() {
        local h=$1 d=$2
        shift 2
        XENSIM_DIR=$TMP/$h/xs "$XS" run --domid "$d" -- env VBUS_URL=vchan:0 "$@"
}

on_host() {
        local h=$1
        shift
        XENSIM_DIR=$TMP/$h/xs VBUS_URL=unix:$TMP/$h/broker.sock "$@"
}

bg_on_host() {
        local h=$1 out=$2
        shift 2
        # Not through a function or a subshell: $! must be the command itself.
        XENSIM_DIR=$TMP/$h/xs VBUS_URL=unix:$TMP/$h/broker.sock "$@" >"$out" 2>"$out.err" &
        PIDS="$PIDS $!"
}

# bridge_start HOST CONF [ARGS]: CONF is a file; the broker line is added here.
bridge_start() {
        local h=$1 conf=$2
        shift 2
        rm -f "$TMP/$h/bridge.ready"
        {
                echo "broker unix:$TMP/$h/broker.sock"
                cat "$conf"
        } >"$TMP/$h/bridge.conf"
        "$BRIDGE" --config "$TMP/$h/bridge.conf" --ready "$TMP/$h/bridge.ready" \
                --metrics-file "$TMP/$h/metrics" "$@" >>"$TMP/$h/bridge.log" 2>&1 &
        echo $! >"$TMP/$h/bridge.pid"
        wait_file "$TMP/$h/bridge.ready" || fail "bridge of $h not ready"
}

bridge_stop() {
        local p
        p=$(cat "$TMP/$1/bridge.pid")
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
        local rc=$?
        rm -f "$TMP/$1/bridge.pid"
        return $rc
}

bridge_kill9() {
        local p
        p=$(cat "$TMP/$1/bridge.pid")
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
        rm -f "$TMP/$1/bridge.pid"
}

metric() {
        local f=$TMP/$1/metrics
        rm -f "$f"
        kill -USR1 "$(cat "$TMP/$1/bridge.pid")"
        wait_file "$f" || fail "no metrics from the bridge of $1"
        awk -v n="$2" '$1 == n { print $2 }' "$f"
}

# Sends probe messages from HOST's dom0 on TOPIC until FILE shows one arrived (interest in the
# NATS cluster propagates asynchronously along the routes).
probe_until() {
        local h=$1 topic=$2 file=$3 i
        for i in $(seq 1 100); do
                on_host "$h" "$VBUSCTL" pub "$topic" probe >/dev/null 2>&1
                grep -q probe "$file" 2>/dev/null && return 0
                sleep 0.1
        done
        return 1
}
