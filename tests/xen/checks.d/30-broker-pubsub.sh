# the broker vchand in dom0: vbusctl pub in domU1 -> vbusctl sub in domU2 and in dom0
# xt-needs: /usr/sbin/vchand /usr/bin/vbusctl
# The broker vchand runs in dom0 and finds the guests through xenstore. domU2 subscribes
# with `vbusctl sub 'sensors.>'` over its vchan (VBUS_URL=vchan:0), and so does a local
# client in dom0 over the broker's UNIX socket. Then domU1 runs three publishers, one after
# the other (one vbus process per domain at a time, so each one's vchan must be taken down
# and a fresh one found by the broker): N numbered messages on sensors.hall.temp, one on
# other.topic (matches no subscriber), one on sensors.hall.done. Each subscriber must get
# exactly the N messages in order, then the last one, every one stamped
# dom<domU1>(xt-domu1), and nothing from other.topic. Last, the broker must stop on SIGTERM
# and count N+2 publications. On any failure the broker's log goes to the console.

XT_PUBSUB_N=20
K_PS=$XT_BASE/pubsub

# judge_sub TAG FILE: verdicts on what one subscriber printed (`vbusctl sub` text lines:
# "TOPIC SENDER PAYLOAD").
judge_sub() {
    local tag="$1" f="$2" n="$XT_PUBSUB_N" who="dom$XT_DOMU1(xt-domu1)"
    local i=0 ok=0 bad= line want last= other=0
    while IFS= read -r line; do
        i=$((i + 1))
        case $line in *other.topic*) other=$((other + 1)) ;; esac
        if [ "$i" -le "$n" ]; then
            want="sensors.hall.temp $who reading-$i"
            if [ "$line" = "$want" ]; then
                ok=$((ok + 1))
            elif [ -z "$bad" ]; then
                bad="line $i is '$line', not '$want'"
            fi
        elif [ "$i" = $((n + 1)) ]; then
            last=$line
        fi
    done <"$f"
    if [ "$ok" = "$n" ]; then
        xt_result "$tag" PASS "$n of $n messages in order, each stamped $who"
    else
        xt_result "$tag" FAIL "$ok of $n messages as expected (${bad:-only $i lines})"
    fi
    want="sensors.hall.done $who done"
    if [ "$last" = "$want" ] && [ "$other" = 0 ] && [ "$i" = $((n + 1)) ]; then
        xt_result "$tag.filter-and-later-publisher" PASS \
            "other.topic not delivered; the third publisher process of domU1 reached it too"
    else
        xt_result "$tag.filter-and-later-publisher" FAIL \
            "$i lines, $other from other.topic, line $((n + 1)) is '${last:-none}' not '$want'"
    fi
}

# start_sub OUT: `vbusctl sub 'sensors.>'` in the background (extra vbusctl options before
# the command in "$@"); waits until it says it is subscribed. Sets XT_WHY to "ok" or why
# not. (Not in a $(...) subshell: the subscriber must stay this shell's child.)
start_sub() {
    local out="$1" pid
    shift
    vbusctl "$@" sub 'sensors.>' --count $((XT_PUBSUB_N + 1)) --timeout 240000 \
        >"$out" 2>"$out.err" &
    pid=$!
    echo "$pid" >"$out.pid"
    if xt_wait_file "$out.err" "# subscribed to" 180; then
        XT_WHY=ok
    else
        XT_WHY="not subscribed after 180 s: $(tr '\n' ' ' <"$out.err" | cut -c1-300)"
    fi
}

# wait_sub OUT: once domU1's publishers are done, give the subscriber 30 s to get the rest
# and exit (it is killed then); sets XT_RC to its exit status.
wait_sub() {
    local pid i=0
    read -r pid <"$1.pid"
    xt_wait -t 300 "$K_PS/pub-done" >/dev/null
    while xt__alive "$pid" && [ "$i" -lt 150 ]; do
        i=$((i + 1))
        sleep 0.2
    done
    xt__alive "$pid" && kill "$pid" 2>/dev/null
    wait "$pid"
    XT_RC=$?
}

check_dom0() {
    local why rc
    if ! xt_have vchand || ! xt_have vbusctl; then
        xt_result broker-pubsub FAIL "vchand or vbusctl not built (tests/xen/run --build DIR)"
        xenstore-write "$K_PS/broker" "not built"
        return 0
    fi
    if ! xt_broker_start; then
        xt_result pubsub.broker-start FAIL "$XT_WHY"
        xenstore-write "$K_PS/broker" failed
        xt_broker_log_tail
        return 0
    fi
    xenstore-write "$K_PS/broker" ok
    start_sub "$XT_TMP/local" --url "unix:$XT_BROKER_SOCK"
    why=$XT_WHY
    xenstore-write "$K_PS/local-sub" "$why"
    if [ "$why" != ok ]; then
        xt_result pubsub.domU1-to-dom0-local FAIL "local subscriber: $why"
        read -r rc <"$XT_TMP/local.pid" && kill "$rc" 2>/dev/null
    else
        wait_sub "$XT_TMP/local"
        rc=$XT_RC
        if [ "$rc" = 0 ]; then
            judge_sub pubsub.domU1-to-dom0-local "$XT_TMP/local"
        else
            xt_result pubsub.domU1-to-dom0-local FAIL "vbusctl sub exited $rc:" \
                "$(tail -n 2 "$XT_TMP/local.err" | tr '\n' ' ' | cut -c1-300)"
            xt_show "local vbusctl sub output" "$XT_TMP/local"
        fi
    fi
    xt_barrier end 300
    xt_broker_stop
    rc=$XT_RC
    if [ "$rc" = 0 ] && grep -q "stopped: $((XT_PUBSUB_N + 2)) published" "$XT_TMP/broker.log"; then
        xt_result pubsub.broker-stop PASS "vchand exited 0 on SIGTERM:" \
            "$(grep -o 'stopped: .*' "$XT_TMP/broker.log" | tail -n 1 | cut -c1-200)"
    else
        xt_result pubsub.broker-stop FAIL "vchand exit status $rc after SIGTERM, want 0 and" \
            "$((XT_PUBSUB_N + 2)) published; last log line: $(tail -n 1 "$XT_TMP/broker.log" | cut -c1-200)"
    fi
    # The broker's log goes into the console log (not on the host's terminal) in any case,
    # so a passing run shows what the broker saw too; it ends with XENTEST-END.
    if xt_check_failed; then xt_broker_log_tail 80; else xt_broker_log_tail 40; fi
    return 0
}

# domU1: the publishers.
check_domU1() {
    local v i rc=0 err=
    xt_have vbusctl || return 0
    v=$(xt_wait -t 300 "$K_PS/broker") || v="no answer"
    if [ "$v" = "no answer" ]; then
        xt_result "$XT_CHECK:$XT_ROLE" FAIL "dom0 never said whether the broker started (300 s)"
        return 0
    fi
    [ "$v" = ok ] || return 0 # dom0 reported why
    v=$(xt_wait -t 300 "$K_PS/sub-ready" "$K_PS/local-sub" | tr '\n' ' ')
    if [ "$v" != "ok ok " ]; then
        xt_result pubsub.publish FAIL "the subscribers did not both get ready (domU2, dom0): ${v:-timeout}"
        xenstore-write "$K_PS/pub-done" "not published"
        xt_barrier end 300
        return 0
    fi
    export VBUS_URL=vchan:0
    i=1
    while [ "$i" -le "$XT_PUBSUB_N" ]; do
        echo "reading-$i"
        i=$((i + 1))
    done >"$XT_TMP/lines"
    vbusctl pub sensors.hall.temp - --timeout 60000 <"$XT_TMP/lines" 2>"$XT_TMP/pub1.err" ||
        { rc=$?; err="first publisher (N messages) exited $rc: $(tr '\n' ' ' <"$XT_TMP/pub1.err")"; }
    vbusctl pub other.topic must-not-arrive --timeout 60000 2>"$XT_TMP/pub2.err" ||
        { rc=$?; err="$err second publisher (other.topic) exited $rc: $(tr '\n' ' ' <"$XT_TMP/pub2.err")"; }
    vbusctl pub sensors.hall.done done --timeout 60000 2>"$XT_TMP/pub3.err" ||
        { rc=$?; err="$err third publisher (sensors.hall.done) exited $rc: $(tr '\n' ' ' <"$XT_TMP/pub3.err")"; }
    if [ -z "$err" ]; then
        xt_result pubsub.publish PASS "three vbusctl pub processes in turn in domU1 exited 0" \
            "($XT_PUBSUB_N + 1 + 1 messages)"
    else
        xt_result pubsub.publish FAIL "$(echo "$err" | cut -c1-600)"
        cat "$XT_TMP"/pub*.err
    fi
    xenstore-write "$K_PS/pub-done" "$rc"
    xt_barrier end 300
}

# domU2: the subscriber over its vchan.
check_domU2() {
    local v rc
    xt_have vbusctl || return 0
    v=$(xt_wait -t 300 "$K_PS/broker") || v="no answer"
    if [ "$v" = "no answer" ]; then
        xt_result "$XT_CHECK:$XT_ROLE" FAIL "dom0 never said whether the broker started (300 s)"
        return 0
    fi
    [ "$v" = ok ] || return 0 # dom0 reported why
    export VBUS_URL=vchan:0
    start_sub "$XT_TMP/sub"
    v=$XT_WHY
    xenstore-write "$K_PS/sub-ready" "$v"
    if [ "$v" = ok ]; then
        wait_sub "$XT_TMP/sub"
        rc=$XT_RC
        if [ "$rc" = 0 ]; then
            judge_sub pubsub.domU1-to-domU2 "$XT_TMP/sub"
        else
            xt_result pubsub.domU1-to-domU2 FAIL "vbusctl sub exited $rc:" \
                "$(tail -n 2 "$XT_TMP/sub.err" | tr '\n' ' ' | cut -c1-300)"
        fi
    else
        xt_result pubsub.domU1-to-domU2 FAIL "subscriber in domU2: $v"
        read -r rc <"$XT_TMP/sub.pid" && kill "$rc" 2>/dev/null
    fi
    xt_show "vbusctl sub output" "$XT_TMP/sub"
    xt_show "vbusctl sub stderr" "$XT_TMP/sub.err"
    xt_barrier end 300
}
