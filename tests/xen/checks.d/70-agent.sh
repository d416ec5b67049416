# the guest agent: two vbus programs in one domU share its one vchan through vchand --agent
# xt-needs: /usr/sbin/vchand /usr/bin/vbusctl
# The broker vchand runs in dom0. domU1 runs the guest agent `vchand --agent` (on a socket of
# its own) and then, through it, at the same time: `vbusctl serve demo.v1.Agent` and
# `vbusctl sub 'agent.>'`; then a third and a fourth program call the service and publish.
# Without the agent the second program would find the domain's vchan taken. The call's reply
# must name the caller dom<id>(xt-domu1) (the domain, as the broker established it); the
# subscriber must receive the message stamped dom<id>(xt-domu1) with the agent's claims
# (command vbusctl) beside it. The broker must log the agent's sessions. Last, the agent and
# the broker stop on SIGTERM with exit status 0.

K_AG=$XT_BASE/agent
AG_SOCK=/tmp/xt-agent.sock
AG_EXEC='printf "%s from %s: " "$VBUS_METHOD" "$VBUS_CALLER"; cat'

check_dom0() {
    local v rc
    if ! xt_have vchand || ! xt_have vbusctl; then
        xt_result agent FAIL "vchand or vbusctl not built (tests/xen/run --build DIR)"
        xenstore-write "$K_AG/broker" "not built"
        return 0
    fi
    if ! xt_broker_start; then
        xt_result agent.broker-start FAIL "$XT_WHY"
        xenstore-write "$K_AG/broker" failed
        xt_broker_log_tail
        return 0
    fi
    xenstore-write "$K_AG/broker" ok
    v=$(xt_wait -t 400 "$K_AG/done") || v="no answer"
    if grep -q "session 2: started" "$XT_TMP/broker.log"; then
        xt_result agent.sessions PASS "the broker saw the agent's sessions:" \
            "$(grep -o 'session [0-9]*: started.*' "$XT_TMP/broker.log" | head -n 2 | tr '\n' ' ' | cut -c1-240)"
    else
        xt_result agent.sessions FAIL "no second session in the broker's log (domU1: $v)"
    fi
    xt_barrier end 300
    xt_broker_stop
    rc=$XT_RC
    if [ "$rc" = 0 ]; then
        xt_result agent.broker-stop PASS "vchand exited 0 on SIGTERM"
    else
        xt_result agent.broker-stop FAIL "vchand exit status $rc after SIGTERM, want 0"
    fi
    if xt_check_failed; then xt_broker_log_tail 80; else xt_broker_log_tail 20; fi
    return 0
}

# domU1: the agent and four programs behind it.
check_domU1() {
    local v apid spid bpid rc out
    xt_have vchand || return 0
    v=$(xt_wait -t 300 "$K_AG/broker") || v="no answer"
    if [ "$v" != ok ]; then
        [ "$v" = "no answer" ] && xt_result agent:domU1 FAIL "dom0 never said whether the broker started"
        xenstore-write "$K_AG/done" "no broker"
        xt_barrier end 300
        return 0
    fi
    rm -f "$AG_SOCK"
    vchand --agent --socket "$AG_SOCK" --upstream vchan:0 >"$XT_TMP/agent.log" 2>&1 &
    apid=$!
    if ! xt_wait_file "$XT_TMP/agent.log" "connected to the broker" 180; then
        xt_result agent.connect FAIL "the agent did not connect in 180 s:" \
            "$(tail -n 3 "$XT_TMP/agent.log" | tr '\n' ' ' | cut -c1-300)"
        kill "$apid" 2>/dev/null
        xenstore-write "$K_AG/done" "agent did not connect"
        xt_barrier end 300
        return 0
    fi
    xt_result agent.connect PASS "vchand --agent holds the domain's vchan and serves $AG_SOCK"
    export VBUS_URL=unix:$AG_SOCK
    vbusctl serve demo.v1.Agent --exec "$AG_EXEC" >"$XT_TMP/ag-serve.out" 2>"$XT_TMP/ag-serve.err" &
    spid=$!
    vbusctl sub 'agent.>' --count 1 --timeout 120000 >"$XT_TMP/ag-sub.out" 2>"$XT_TMP/ag-sub.err" &
    bpid=$!
    if ! xt_wait_file "$XT_TMP/ag-serve.err" "# serving demo.v1.Agent" 120 ||
        ! xt_wait_file "$XT_TMP/ag-sub.out" "# subscribed" 120; then
        xt_result agent.two-programs FAIL "serve and sub did not both start through the agent:" \
            "$(cat "$XT_TMP/ag-serve.err" "$XT_TMP/ag-sub.err" | tr '\n' ' ' | cut -c1-300)"
    else
        xt_result agent.two-programs PASS "vbusctl serve and vbusctl sub run side by side in domU1"
        out=$(vbusctl call demo.v1.Agent/Say hi --timeout 60000 2>&1)
        rc=$?
        if [ "$rc" = 0 ] && [ "$out" = "Say from dom$XT_DOMU1(xt-domu1): hi" ]; then
            xt_result agent.call PASS "a third program's call: '$out'"
        else
            xt_result agent.call FAIL "vbusctl call -> exit $rc, '$out'" \
                "(want 'Say from dom$XT_DOMU1(xt-domu1): hi')"
        fi
        vbusctl pub agent.x hello >/dev/null 2>"$XT_TMP/ag-pub.err" ||
            xt_result agent.pub FAIL "vbusctl pub: $(cut -c1-200 "$XT_TMP/ag-pub.err")"
        wait "$bpid"
        rc=$?
        out=$(grep '^agent.x ' "$XT_TMP/ag-sub.out")
        case $out in
        "agent.x dom$XT_DOMU1(xt-domu1) claims(session="*",command=vbusctl) hello")
            xt_result agent.sub PASS "a fourth program's message: '$out'" ;;
        *)
            xt_result agent.sub FAIL "sub exit $rc, got '$out'" \
                "(want 'agent.x dom$XT_DOMU1(xt-domu1) claims(...,command=vbusctl) hello')" ;;
        esac
    fi
    kill "$spid" "$bpid" 2>/dev/null
    wait "$spid" 2>/dev/null
    kill -TERM "$apid"
    wait "$apid"
    rc=$?
    if [ "$rc" = 0 ]; then
        xt_result agent.stop PASS "the agent exited 0 on SIGTERM"
    else
        xt_result agent.stop FAIL "the agent exited $rc on SIGTERM, want 0"
    fi
    xt_check_failed && xt_show "agent log" "$XT_TMP/agent.log"
    xenstore-write "$K_AG/done" ok
    xt_barrier end 300
}
