# Shared setup for the broker integration tests (sourced). Usage: . lib.sh BUILD_DIR
# Starts nothing by itself; gives:
#   $TMP (scratch dir, removed at exit), $D (xensim instance), fail/ok,
#   xs_up, guest NAME (creates a domain, prints its id), as_dom N CMD...,
#   broker_start [ARGS] (vchand in dom0, socket $SOCK; --policy open unless $BROKER_POLICY
#   names a policy directory, as the policy tests do), broker_kill9, local_env,
#   wait_file FILE, bg CMD... (runs in the background, tracked for cleanup).
set -u
B=${1:?usage: $0 BUILD_DIR}
B=$(cd "$B" && pwd)
XS=$B/xensim/xensim
VCHAND=$B/vchand/vchand
VBUSCTL=$B/clients/vbusctl/vbusctl
CHECK=$B/tests/integration/pubsub-check
TMP=$(mktemp -d /tmp/vbus-it.XXXXXX)
D=$TMP/xs
SOCK=$TMP/broker.sock
export XENSIM_DIR=$D
PIDS=""
BROKER_PID=""

# Kills each pid given and every process under it: a background shell function or pipeline
# (bg dom0 ..., bg sh -c "... | ...") would otherwise leave its children running after the test.
# The tree is read from /proc/PID/stat (no procps needed), before anything is killed.
kill_tree() {
        local f st pid ppid queue="$*" all="" next
        local -A kids=()
        for f in /proc/[0-9]*/stat; do
                { st=$(<"$f"); } 2>/dev/null || continue
                pid=${st%% *}
                st=${st##*) } # after the command name, which may hold spaces and parentheses
                ppid=${st#* }
                ppid=${ppid%% *}
                kids[$ppid]="${kids[$ppid]:-} $pid"
        done
        while [ -n "${queue// /}" ]; do
                next=""
                for pid in $queue; do
                        all="$all $pid"
                        next="$next ${kids[$pid]:-}"
                done
                queue=$next
        done
        for pid in $all; do kill -9 "$pid" 2>/dev/null; done
}

cleanup() {
        # shellcheck disable=SC2086 # lists of pids
        kill_tree $PIDS $BROKER_PID
        "$XS" down >/dev/null 2>&1
        rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
        echo "FAIL: $*" >&2
        # A sanitizer report is worth more than the last lines of a log.
        grep -h -A 40 "ERROR: .*Sanitizer\|runtime error" "$TMP"/*.log 2>/dev/null | head -n 60 >&2
        for f in "$TMP"/*.log "$TMP"/*.out; do
                [ -f "$f" ] && { echo "--- $f" >&2; tail -n 25 "$f" >&2; }
        done
        exit 1
}

ok() {
        echo "ok: $*"
}

xs_up() {
        "$XS" up >/dev/null || fail "xensim up"
}

guest() {
        "$XS" domain create "$1" || fail "domain create $1"
}

as_dom() {
        local n=$1
        shift
        "$XS" run --domid "$n" -- "$@"
}

# Runs a command in the background and remembers it for cleanup; its pid is in $!.
bg() {
        "$@" &
        PIDS="$PIDS $!"
}

broker_start() {
        # Not through as_dom: $! must be vchand itself (xensim run execs it), so signals reach it.
        "$XS" run --domid 0 -- "$VCHAND" --socket "$SOCK" --policy "${BROKER_POLICY:-open}" "$@" \
                >>"$TMP/broker.log" 2>&1 &
        BROKER_PID=$!
        wait_file "$SOCK" || fail "broker did not start"
}

broker_kill9() {
        [ -n "$BROKER_PID" ] && kill -9 "$BROKER_PID" 2>/dev/null
        wait "$BROKER_PID" 2>/dev/null
        BROKER_PID=""
        rm -f "$SOCK"
}

# Waits up to 15 s for a file to exist.
wait_file() {
        local i
        for i in $(seq 1 300); do
                [ -e "$1" ] && return 0
                sleep 0.05
        done
        return 1
}

# Waits up to 15 s for a grep pattern in a file.
wait_grep() {
        local i
        for i in $(seq 1 300); do
                grep -q "$1" "$2" 2>/dev/null && return 0
                sleep 0.05
        done
        return 1
}
