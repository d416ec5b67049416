# Helpers for the payload checks of the real-Xen stage (tests/xen/checks.d/*.sh).
# Sourced by /init inside the guests (busybox ash), in dom0 and in the domU alike.
#
# Environment every check sees:
#   XT_ROLE   dom0 | domU         where this part runs
#   XT_SELF   this domain's id
#   XT_PEER   the other domain's id (the domU's id in dom0, 0 in the domU)
#   XT_DOMU   the domU's id (the same in both parts)
#   XT_BASE   xenstore directory both parts can read and write (under the domU's data/)
#   XT_CHECK  name of the running check (its file name without .sh)
#   XT_SIZE   bytes per direction for transfers (host option --size)
#   XT_TMP    a private scratch directory for this check, in tmpfs
#
# Verdicts: `xt_result NAME PASS|FAIL DETAIL`. In dom0 it prints the line
# "XENTEST NAME PASS|FAIL DETAIL" on the console (the serial port the host reads).
# In the domU it stores the line in xenstore, and dom0 prints it when the check ends.
# A check part that exits non-zero is reported as a FAIL by the runner.

xt_log() {
    echo "xt[$XT_ROLE] $*"
}

# Seconds since boot, with two decimals.
xt_uptime() {
    cut -d' ' -f1 /proc/uptime
}

xt_result() {
    _name=$1
    _verdict=$2
    shift 2
    case $_verdict in
    PASS | FAIL) ;;
    *)
        _verdict=FAIL
        set -- "bad verdict given by the check: $*"
        ;;
    esac
    if [ "$XT_ROLE" = dom0 ]; then
        echo "XENTEST $_name $_verdict $*"
    else
        _n=$(cat "$XT_TMP/.nres" 2>/dev/null || echo 0)
        _n=$((_n + 1))
        echo "$_n" >"$XT_TMP/.nres"
        xenstore-write "$XT_BASE/results/$XT_CHECK/$_n" "$_name $_verdict $*"
        xt_log "result $_name $_verdict $*"
    fi
}

# xt_wait KEY [SECONDS]: wait until a xenstore key exists, print its value.
# Returns 1 on timeout (default 60 s).
xt_wait() {
    _key=$1
    _limit=$((${2:-60} * 5))
    _i=0
    while ! xenstore-read "$_key" 2>/dev/null; do
        _i=$((_i + 1))
        [ "$_i" -ge "$_limit" ] && return 1
        sleep 0.2
    done
    return 0
}

# xt_barrier NAME [SECONDS]: rendezvous of the dom0 part and the domU part.
xt_barrier() {
    _b=$XT_BASE/barrier/$XT_CHECK/$1
    xenstore-write "$_b/$XT_ROLE" 1
    if [ "$XT_ROLE" = dom0 ]; then _other=domU; else _other=dom0; fi
    if ! xt_wait "$_b/$_other" "${2:-90}" >/dev/null; then
        xt_log "barrier $1: $_other did not arrive"
        return 1
    fi
}

# xt_have PROGRAM: is PROGRAM in the initramfs?
xt_have() {
    command -v "$1" >/dev/null 2>&1
}

# True while PID runs (a zombie counts as gone).
xt__alive() {
    _st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    _st=${_st##*) }
    [ "${_st%% *}" != Z ]
}

xt__size() {
    stat -c %s "$1" 2>/dev/null || echo 0
}

# Program name and its leading words up to the first domain id: "vchan-cat server".
xt__desc() {
    _desc=${1##*/}
    shift
    for _a in "$@"; do
        case $_a in
        *[!0-9]* | '') _desc="$_desc $_a" ;;
        *) break ;;
        esac
    done
    echo "$_desc"
}

xt__sha() {
    sha256sum <"$1" | cut -d' ' -f1
}

# xt_xfer TAG CMD [ARGS...]
# Hash-checked transfer in both directions at once over one vchan. Both parts call it with
# the same TAG, each with the command for its own end (for example a vchan server in one
# domain and a client in the other). CMD must copy its stdin into the vchan and the vchan
# to its stdout.
# Each side sends XT_SIZE random bytes and keeps its stdin open until BOTH sides have
# received everything, so no data is in flight when the first end closes (Xen's
# vchan-socket-proxy discards what is left in the ring once its peer closed). Then both
# ends must exit 0 by themselves. dom0 decides and prints one verdict per direction:
# "TAG.dom0-to-domU" and "TAG.domU-to-dom0".
xt_xfer() {
    _tag=$1
    shift
    _d=$XT_TMP/xfer-$_tag
    _k=$XT_BASE/xfer/$_tag
    _me=$XT_ROLE
    if [ "$_me" = dom0 ]; then _other=domU; else _other=dom0; fi
    _limit=${XT_XFER_TIMEOUT:-90}
    mkdir -p "$_d"
    head -c "$XT_SIZE" /dev/urandom >"$_d/tx"
    xenstore-write "$_k/$_me/tx-sha" "$(xt__sha "$_d/tx")"
    xenstore-write "$_k/$_me/cmd" "$(xt__desc "$@")"
    rm -f "$_d/in"
    mkfifo "$_d/in"
    if ! xt_barrier "xfer-$_tag"; then
        xenstore-write "$_k/$_me/end" "barrier-timeout"
        [ "$_me" = dom0 ] && xt_result "$_tag" FAIL "the domU part never reached the transfer"
        return 1
    fi
    _t0=$(xt_uptime)
    # Feeder: the data, then hold stdin open until both sides got everything.
    (
        cat "$_d/tx"
        xt_wait "$_k/dom0/rx-done" "$_limit" >/dev/null
        xt_wait "$_k/domU/rx-done" "$_limit" >/dev/null
    ) >"$_d/in" &
    _feeder=$!
    "$@" <"$_d/in" >"$_d/rx" 2>"$_d/err" &
    _cmd=$!
    _i=0
    _why=complete
    while [ "$(xt__size "$_d/rx")" -lt "$XT_SIZE" ]; do
        if ! xt__alive "$_cmd"; then
            _why=exited-early
            break
        fi
        _i=$((_i + 1))
        if [ "$_i" -ge $((_limit * 5)) ]; then
            _why=timeout
            break
        fi
        sleep 0.2
    done
    _t1=$(xt_uptime)
    xenstore-write "$_k/$_me/rx-sha" "$(xt__sha "$_d/rx")"
    xenstore-write "$_k/$_me/rx-size" "$(xt__size "$_d/rx")"
    xenstore-write "$_k/$_me/rx-time" "$(echo "$_t1 $_t0" | awk '{printf "%.1f", $1 - $2}')"
    xenstore-write "$_k/$_me/rx-done" "$_why"
    # Both ends must now finish on their own: one sees stdin EOF and closes, the other
    # sees the close.
    _i=0
    while xt__alive "$_cmd"; do
        _i=$((_i + 1))
        if [ "$_i" -ge 150 ]; then
            xt_log "$_tag: $1 did not exit 30 s after the transfer; killing it"
            kill -9 "$_cmd" 2>/dev/null
            echo "did not exit by itself (killed)" >>"$_d/err"
            break
        fi
        sleep 0.2
    done
    wait "$_cmd"
    _rc=$?
    kill "$_feeder" 2>/dev/null
    wait "$_feeder" 2>/dev/null
    xenstore-write "$_k/$_me/err" "stderr: $(tail -n 3 "$_d/err" | tr '\n' ' ' | cut -c1-300)"
    xenstore-write "$_k/$_me/end" "$_rc"
    [ "$_me" = dom0 ] || return 0

    # dom0 judges both directions.
    if ! _orc=$(xt_wait "$_k/domU/end" 60); then
        xt_result "$_tag" FAIL "the domU part did not finish"
        return 1
    fi
    _fails=0
    for _dir in dom0-to-domU domU-to-dom0; do
        _from=${_dir%-to-*}
        _to=${_dir#*-to-}
        _tx=$(xenstore-read "$_k/$_from/tx-sha")
        _rx=$(xenstore-read "$_k/$_to/rx-sha")
        _rxn=$(xenstore-read "$_k/$_to/rx-size")
        _how="$(xenstore-read "$_k/dom0/cmd") in dom0, $(xenstore-read "$_k/domU/cmd") in domU"
        _sec=$(xenstore-read "$_k/$_to/rx-time")
        if [ "$_tx" = "$_rx" ] && [ "$_rxn" = "$XT_SIZE" ]; then
            xt_result "$_tag.$_dir" PASS "$_rxn bytes in ${_sec}s, sha256 match ($_how)"
        else
            _fails=$((_fails + 1))
            xt_result "$_tag.$_dir" FAIL "received $_rxn of $XT_SIZE bytes" \
                "($(xenstore-read "$_k/$_to/rx-done")), sha256 sent $_tx got $_rx ($_how)"
        fi
    done
    for _side in dom0 domU; do
        _rc=$(xenstore-read "$_k/$_side/end")
        if [ "$_rc" != 0 ]; then
            _fails=$((_fails + 1))
            xt_result "$_tag.exit-$_side" FAIL "$(xenstore-read "$_k/$_side/cmd") in $_side" \
                "exited $_rc: $(xenstore-read "$_k/$_side/err")"
        fi
    done
    [ "$_fails" = 0 ]
}
