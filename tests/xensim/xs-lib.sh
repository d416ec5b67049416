# Shared setup for the xensim integration tests (sourced, not run).
# Usage: . xs-lib.sh "$1"   where $1 is the directory holding the xensim binaries.
# Gives: $XS (xensim CLI), $D (instance dir), $TMP (scratch), fail, xs_up, and a trap that
# stops the instance and removes the scratch directory however the test ends.
set -u
BIN=${1:?usage: $0 BUILD_DIR/xensim}
XS=$BIN/xensim
TMP=$(mktemp -d /tmp/xs-test.XXXXXX)
D=$TMP/inst
export XENSIM_DIR=$D
XS_PIDS=""

xs_cleanup() {
        for p in $XS_PIDS; do kill "$p" 2>/dev/null; done
        "$XS" down >/dev/null 2>&1
        rm -rf "$TMP"
}
trap xs_cleanup EXIT
trap 'exit 1' INT TERM

fail() {
        echo "FAIL: $*" >&2
        for f in "$D"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
        exit 1
}

ok() {
        echo "ok: $*"
}

xs_up() {
        "$XS" up >/dev/null || fail "xensim up"
}

# dom0 xenstore-utils against the instance.
dom0() {
        XENSTORED_PATH=$D/dom0.sock "$@"
}

# Runs a command as domain $1 through xensim run.
as_dom() {
        local n=$1
        shift
        "$XS" run --domid "$n" -- "$@"
}

# Waits (up to 10 s) until the command succeeds.
wait_for() {
        local i
        for i in $(seq 1 200); do
                "$@" && return 0
                sleep 0.05
        done
        return 1
}
