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
#
# Starting a process costs a few hundred milliseconds of CPU in a PV guest under QEMU's
# software emulation: these helpers use shell builtins where they can, batch xenstore
# accesses (xenstore-write and xenstore-read take several keys), and wait on xenstore
# watches (xt-wait) instead of polling.

xt_log() {
    echo "xt[$XT_ROLE] $*"
}

# Seconds since boot, with two decimals (no process started).
xt_uptime() {
    local _up _idle
    read -r _up _idle </proc/uptime
    echo "$_up"
}

xt_result() {
    local name="$1" verdict="$2" n=0
    shift 2
    case $verdict in
    PASS | FAIL) ;;
    *)
        verdict=FAIL
        set -- "bad verdict given by the check: $*"
        ;;
    esac
    if [ "$XT_ROLE" = dom0 ]; then
        echo "XENTEST $name $verdict $*"
        # Counted for the XENTEST-END line, so the host notices a garbled console line.
        echo "$verdict" >>"$XT_TMP/.verdicts"
    else
        [ -f "$XT_TMP/.nres" ] && read -r n <"$XT_TMP/.nres"
        n=$((n + 1))
        echo "$n" >"$XT_TMP/.nres"
        xenstore-write "$XT_BASE/results/$XT_CHECK/$n" "$name $verdict $*"
        xt_log "result $name $verdict $*"
    fi
}

# xt_wait [-t SECONDS] KEY...: wait until every KEY exists in xenstore (watch, no polling),
# print their values one per line. Returns 1 on timeout (default 60 s).
xt_wait() {
    xt-wait "$@"
}

# xt_barrier NAME [SECONDS]: rendezvous of the dom0 part and the domU part of a check.
xt_barrier() {
    local b="$XT_BASE/barrier/$XT_CHECK/$1" other=dom0
    [ "$XT_ROLE" = dom0 ] && other=domU
    xenstore-write "$b/$XT_ROLE" 1
    if ! xt-wait -t "${2:-120}" "$b/$other" >/dev/null; then
        xt_log "barrier $1: $other did not arrive"
        return 1
    fi
}

# xt_have PROGRAM: is PROGRAM in the initramfs?
xt_have() {
    command -v "$1" >/dev/null 2>&1
}

# Program name and its leading words up to the first domain id: "vchan-cat server".
xt__desc() {
    local desc="${1##*/}" a
    shift
    for a in "$@"; do
        case $a in
        *[!0-9]* | '') desc="$desc $a" ;;
        *) break ;;
        esac
    done
    echo "$desc"
}

xt__sha() {
    local sha rest
    read -r sha rest <<EOF
$(sha256sum <"$1")
EOF
    echo "$sha"
}

# xt_xfer TAG CMD [ARGS...]
# Hash-checked transfer in both directions at once over one vchan. Both parts call it with
# the same TAG, each with the command for its own end (for example a vchan server in one
# domain and a client in the other). CMD must copy its stdin into the vchan and the vchan
# to its stdout.
# Each side sends XT_SIZE random bytes and keeps its stdin open until BOTH sides have
# received everything, so no data is in flight when the first end closes (Xen's
# vchan-socket-proxy discards what is left in the ring once its peer closed). Then both
# ends must exit 0 by themselves. With XT_START_DELAY=SEC in its environment, a side starts
# its command SEC seconds after the other (a client that comes before its server, say).
# dom0 decides and prints one verdict per direction,
# "TAG.dom0-to-domU" and "TAG.domU-to-dom0", plus one FAIL per end that did not exit 0.
xt_xfer() {
    local tag="$1"
    shift
    local d="$XT_TMP/xfer-$tag" k="$XT_BASE/xfer/$tag" me="$XT_ROLE" limit="${XT_XFER_TIMEOUT:-240}"
    local other=dom0
    [ "$me" = dom0 ] && other=domU
    local t0 t1 rxpid feeder cmd wd rc why size
    mkdir -p "$d"
    head -c "$XT_SIZE" /dev/urandom >"$d/tx"
    xenstore-write "$k/$me/tx-sha" "$(xt__sha "$d/tx")" "$k/$me/cmd" "$(xt__desc "$@")"
    mkfifo "$d/in" "$d/out"
    if ! xt_barrier "xfer-$tag"; then
        xenstore-write "$k/$me/rx-sha" none "$k/$me/rx-size" 0 "$k/$me/rx-time" 0 \
            "$k/$me/rx-done" barrier-timeout "$k/$me/err" "" "$k/$me/end" barrier-timeout
        [ "$me" = dom0 ] && xt_result "$tag" FAIL "the domU part never reached the transfer"
        return 1
    fi
    t0=$(xt_uptime)
    # Receiver: exactly XT_SIZE bytes (or what comes before the end exits).
    head -c "$XT_SIZE" <"$d/out" >"$d/rx" &
    rxpid=$!
    # Feeder: the data, then stdin stays open until both sides got everything.
    (
        cat "$d/tx"
        xt-wait -t "$limit" "$k/dom0/rx-done" "$k/domU/rx-done" >/dev/null
        echo "feeder: xt-wait rc=$? t=$(xt_uptime)" >>"$d/log"
    ) >"$d/in" &
    feeder=$!
    if [ -n "${XT_START_DELAY:-}" ]; then
        echo "started ${XT_START_DELAY}s late on purpose" >>"$d/log"
        sleep "$XT_START_DELAY"
    fi
    "$@" <"$d/in" >"$d/out" 2>"$d/err" &
    cmd=$!
    # Stop receiving after the time limit, or at once when the other side gave up.
    (
        xt-wait -t "$limit" "$k/$other/abort" >/dev/null &
        echo $! >"$d/wd.pid"
        wait $!
        kill "$rxpid"
    ) 2>/dev/null &
    wait "$rxpid"
    t1=$(xt_uptime)
    wd=0
    while [ ! -s "$d/wd.pid" ] && [ "$wd" -lt 100 ]; do
        wd=$((wd + 1))
        sleep 0.1
    done
    read -r wd <"$d/wd.pid" && kill "$wd" 2>/dev/null
    size=$(stat -c %s "$d/rx")
    echo "receiver: head done t=$t1 size=$size (start t=$t0)" >>"$d/log"
    why=complete
    if [ "$size" != "$XT_SIZE" ]; then
        why="end exited first"
        xt__alive "$cmd" && why="stopped after ${limit}s or when the other side gave up"
        xenstore-write "$k/$me/abort" "$why"
    fi
    xenstore-write "$k/$me/rx-sha" "$(xt__sha "$d/rx")" "$k/$me/rx-size" "$size" \
        "$k/$me/rx-time" "$(echo "$t1 $t0" | awk '{printf "%.1f", $1 - $2}')" \
        "$k/$me/rx-done" "$why"
    # Both ends must now finish on their own: one sees stdin EOF and closes, the other
    # sees the close.
    # (10 s only when the transfer already failed: an end still waiting for a peer that
    # is gone would never exit.)
    wd=60
    [ "$why" = complete ] || wd=10
    (
        sleep "$wd"
        kill -9 "$cmd"
    ) 2>/dev/null &
    wd=$!
    wait "$cmd"
    rc=$?
    kill "$wd" 2>/dev/null
    [ "$rc" = 137 ] && echo "did not exit by itself after the transfer (killed)" >>"$d/err"
    kill "$feeder" 2>/dev/null
    wait "$feeder" 2>/dev/null
    xt_log "$tag: $(tr '\n' ';' <"$d/log")"
    xenstore-write "$k/$me/err" "stderr: $(tail -n 3 "$d/err" | tr '\n' ' ' | cut -c1-300) log: $(tr '\n' ' ' <"$d/log")" \
        "$k/$me/end" "$rc"
    rm -f "$d/tx" "$d/rx"
    [ "$me" = dom0 ] || return 0
    xt__xfer_judge "$tag" "$k"
}

# True while PID runs (a zombie counts as gone).
xt__alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

# dom0 decides on a transfer from what both sides stored in xenstore.
xt__xfer_judge() {
    local tag="$1" k="$2" fails=0
    local d0tx d0cmd d0rxsha d0rxn d0t d0why d0err d0end
    local dUtx dUcmd dUrxsha dUrxn dUt dUwhy dUerr dUend how
    if ! xt-wait -t $((${XT_XFER_TIMEOUT:-240} + 120)) "$k/domU/end" >/dev/null; then
        xt_result "$tag" FAIL "the domU part did not finish"
        return 1
    fi
    {
        read -r d0tx
        read -r d0cmd
        read -r d0rxsha
        read -r d0rxn
        read -r d0t
        read -r d0why
        read -r d0err
        read -r d0end
        read -r dUtx
        read -r dUcmd
        read -r dUrxsha
        read -r dUrxn
        read -r dUt
        read -r dUwhy
        read -r dUerr
        read -r dUend
    } <<EOF
$(for s in dom0 domU; do for f in tx-sha cmd rx-sha rx-size rx-time rx-done err end; do
        echo "$k/$s/$f"
    done; done | xargs xenstore-read)
EOF
    how="$d0cmd in dom0, $dUcmd in domU"
    if [ "$d0tx" = "$dUrxsha" ] && [ "$dUrxn" = "$XT_SIZE" ]; then
        xt_result "$tag.dom0-to-domU" PASS "$dUrxn bytes in ${dUt}s, sha256 match ($how)"
    else
        fails=$((fails + 1))
        xt_result "$tag.dom0-to-domU" FAIL "domU received $dUrxn of $XT_SIZE bytes ($dUwhy)," \
            "sha256 sent $d0tx received $dUrxsha ($how)"
    fi
    if [ "$dUtx" = "$d0rxsha" ] && [ "$d0rxn" = "$XT_SIZE" ]; then
        xt_result "$tag.domU-to-dom0" PASS "$d0rxn bytes in ${d0t}s, sha256 match ($how)"
    else
        fails=$((fails + 1))
        xt_result "$tag.domU-to-dom0" FAIL "dom0 received $d0rxn of $XT_SIZE bytes ($d0why)," \
            "sha256 sent $dUtx received $d0rxsha ($how)"
    fi
    if [ "$d0end" != 0 ]; then
        fails=$((fails + 1))
        xt_result "$tag.exit-dom0" FAIL "$d0cmd in dom0 exited $d0end; $d0err"
    fi
    if [ "$dUend" != 0 ]; then
        fails=$((fails + 1))
        xt_result "$tag.exit-domU" FAIL "$dUcmd in domU exited $dUend; $dUerr"
    fi
    [ "$fails" = 0 ]
}
