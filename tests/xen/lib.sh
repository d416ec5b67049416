# Helpers for the payload checks of the real-Xen stage (tests/xen/checks.d/*.sh).
# Sourced by /init inside the guests (busybox ash), in dom0 and in the domUs alike.
#
# A check defines check_dom0 and one function per domU it uses: check_domU1 (or check_domU,
# the same) and check_domU2. The parts run at the same time, one per domain.
#
# Environment every check sees:
#   XT_ROLE   dom0 | domU1 | domU2   where this part runs
#   XT_PARTS  the roles taking part in this check ("dom0 domU1", "dom0 domU1 domU2", ...)
#   XT_SELF   this domain's id
#   XT_PEER   dom0's peer in xt_xfer: domU1's id in dom0, 0 in a domU
#   XT_DOMU1, XT_DOMU2  the domUs' ids (the same in every part); XT_DOMU is XT_DOMU1
#   XT_BASE   xenstore directory every domain can read and write (/xt, made by dom0)
#   XT_CHECK  name of the running check (its file name without .sh)
#   XT_SIZE   bytes per direction for transfers (host option --size)
#   XT_TMP    a private scratch directory for this check, in tmpfs
#
# Verdicts: `xt_result NAME PASS|FAIL DETAIL`. In dom0 it prints the line
# "XENTEST NAME PASS|FAIL DETAIL" on the console (the serial port the host reads).
# In a domU it stores the line in xenstore, and dom0 prints it when the check ends.
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
        xenstore-write "$XT_BASE/results/$XT_CHECK/$XT_ROLE/$n" "$name $verdict $*"
        xt_log "result $name $verdict $*"
    fi
}

# xt_wait [-t SECONDS] KEY...: wait until every KEY exists in xenstore (watch, no polling),
# print their values one per line. Returns 1 on timeout (default 60 s).
xt_wait() {
    xt-wait "$@"
}

# xt_barrier NAME [SECONDS]: rendezvous of every part of the check (the roles in XT_PARTS).
xt_barrier() {
    # shellcheck disable=SC2086
    xt__meet "$1" "${2:-120}" $XT_PARTS
}

# xt__meet NAME SECONDS ROLE...: rendezvous of the given roles (this one among them).
xt__meet() {
    local b="$XT_BASE/barrier/$XT_CHECK/$1" t="$2" r keys=
    shift 2
    for r in "$@"; do
        [ "$r" = "$XT_ROLE" ] || keys="$keys $b/$r"
    done
    xenstore-write "$b/$XT_ROLE" 1
    # shellcheck disable=SC2086
    if [ -n "$keys" ] && ! xt-wait -t "$t" $keys >/dev/null; then
        xt_log "barrier $1: not every one of '$*' arrived within ${t}s"
        return 1
    fi
}

# xt__defines FILE FUNCTION: does the check FILE define FUNCTION? (One subshell; the
# callers define no check_* function themselves.)
xt__defines() {
    (
        . "$1" >/dev/null 2>&1
        command -v "$2" >/dev/null
    )
}

# xt__parts FILE: the domU roles that take part in the check FILE (dom0 always does).
xt__parts() {
    (
        . "$1" >/dev/null 2>&1
        p=
        if command -v check_domU1 >/dev/null || command -v check_domU >/dev/null; then p=domU1; fi
        command -v check_domU2 >/dev/null && p="$p domU2"
        echo $p
    )
}

# xt_wait_file FILE TEXT [SECONDS]: wait until FILE contains the fixed string TEXT
# (a daemon's "ready" line). Polls every 0.2 s; returns 1 on timeout (default 120 s).
xt_wait_file() {
    local i=0 n=$((${3:-120} * 5))
    while ! grep -qF -- "$2" "$1" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -le "$n" ] || return 1
        sleep 0.2
    done
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
# Hash-checked transfer in both directions at once over one vchan, between dom0 and domU1
# (its keys and verdicts call domU1 "domU"). Both parts call it with
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
    local d="$XT_TMP/xfer-$tag" k="$XT_BASE/xfer/$tag" me=domU limit="${XT_XFER_TIMEOUT:-240}"
    local other=dom0
    [ "$XT_ROLE" = dom0 ] && me=dom0 && other=domU
    local t0 t1 rxpid feeder cmd wd rc why size
    mkdir -p "$d"
    head -c "$XT_SIZE" /dev/urandom >"$d/tx"
    xenstore-write "$k/$me/tx-sha" "$(xt__sha "$d/tx")" "$k/$me/cmd" "$(xt__desc "$@")"
    mkfifo "$d/in" "$d/out"
    if ! xt__meet "xfer-$tag" 120 dom0 domU1; then
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
    # sees the close. The 60 s start once the other side has received everything too: this
    # end is still sending until then, and under load one direction can take minutes longer
    # than the other (killing this end then cut the other side's data short).
    # (10 s only when the transfer already failed: an end still waiting for a peer that
    # is gone would never exit.)
    wd=60
    [ "$why" = complete ] || wd=10
    (
        [ "$why" = complete ] && xt-wait -t "$limit" "$k/$other/rx-done" >/dev/null
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

# ---------------------------------------------------------------- the broker (dom0)
# vchand in dom0 for the broker checks: guests are found through xenstore (the broker reads
# its own domid from dom0's "domid" key, written by xen-init-dom0); local clients use the
# UNIX socket XT_BROKER_SOCK. Its log (stderr, with --verbose) is XT_TMP/broker.log.
XT_BROKER_SOCK=/tmp/xt-broker.sock

# xt_broker_start: start vchand and wait until it listens. Returns 1 and sets XT_WHY when
# it does not come up within 60 s. (Not in a $(...) subshell: the broker must stay this
# shell's child for xt_broker_stop.)
xt_broker_start() {
    local i=0 pid
    rm -f "$XT_BROKER_SOCK"
    vchand --socket "$XT_BROKER_SOCK" --verbose --policy "${XT_POLICY:-open}" >"$XT_TMP/broker.log" 2>&1 &
    pid=$!
    echo "$pid" >"$XT_TMP/broker.pid"
    while [ ! -S "$XT_BROKER_SOCK" ]; do
        if ! xt__alive "$pid"; then
            wait "$pid"
            XT_WHY="vchand exited $? at start: $(tail -n 3 "$XT_TMP/broker.log" | tr '\n' ' ')"
            return 1
        fi
        i=$((i + 1))
        if [ "$i" -gt 300 ]; then
            XT_WHY="vchand did not create $XT_BROKER_SOCK within 60 s: $(tail -n 3 "$XT_TMP/broker.log" | tr '\n' ' ')"
            return 1
        fi
        sleep 0.2
    done
}

# xt_broker_stop: SIGTERM, wait up to 20 s (it promises 2 s), set XT_RC to its exit status
# (137: it had to be killed). The log's last line has its statistics.
xt_broker_stop() {
    local pid i=0
    XT_RC=none
    read -r pid <"$XT_TMP/broker.pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    while xt__alive "$pid" && [ "$i" -lt 100 ]; do
        i=$((i + 1))
        sleep 0.2
    done
    xt__alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid"
    XT_RC=$?
}

# xt_broker_log_tail [LINES]: the broker's log on the console (dom0's console is the
# console log the host keeps).
xt_broker_log_tail() {
    echo "----- tail of vchand's log ($XT_CHECK) -----"
    tail -n "${1:-60}" "$XT_TMP/broker.log" | sed 's/^/vchand| /'
    echo "----- end of vchand's log -----"
}

# xt_check_failed: did any part of this check report a FAIL so far? (dom0; call it after
# the other parts are done, e.g. after a final xt_barrier.)
xt_check_failed() {
    grep -q FAIL "$XT_TMP/.verdicts" 2>/dev/null && return 0
    xenstore-ls "$XT_BASE/results/$XT_CHECK" 2>/dev/null | grep -q ' FAIL '
}

# xt_show NAME FILE: a file on this domain's console (a domU's console is in the log when a
# check failed).
xt_show() {
    echo "----- $XT_ROLE: $1 -----"
    sed "s/^/$XT_ROLE| /" "$2"
    echo "----- end of $1 -----"
}
