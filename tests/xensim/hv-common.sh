# shellcheck shell=bash
# Sourced by tests/xensim/hv-*.sh: a private xensim instance with domains 1 and 2, torn down
# on exit whatever happens. $1 is the build's xensim directory (xensim, xensim-hv-tool, lib/).
set -euo pipefail
HV_BIN=$(cd "$1" && pwd)
HV_TMP=$(mktemp -d "${TMPDIR:-/tmp}/hv-test.XXXXXX")
HV_DIR=$HV_TMP/xensim
HV_TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

hv_cleanup() {
        local rc=$?
        "$HV_BIN/xensim" down --dir "$HV_DIR" >/dev/null 2>&1 || true
        if [ "$rc" -ne 0 ]; then
                echo "--- hvd.log" >&2
                cat "$HV_DIR/hvd.log" >&2 2>/dev/null || true
        fi
        rm -rf "$HV_TMP"
        exit "$rc"
}
trap hv_cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$HV_DIR"
"$HV_BIN/xensim" up --dir "$HV_DIR" >/dev/null
[ "$("$HV_BIN/xensim" domain create guest1 --dir "$HV_DIR")" = 1 ]
[ "$("$HV_BIN/xensim" domain create guest2 --dir "$HV_DIR")" = 2 ]

# hv_scenario NAME: run one scenario of hv-driver.py against this instance.
hv_scenario() {
        python3 "$HV_TESTS/hv-driver.py" "$1" "$HV_BIN" "$HV_DIR"
}
