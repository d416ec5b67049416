# the broker vchand in dom0: RPC, vbusctl serve in domU2, vbusctl call from domU1 and dom0
# xt-needs: /usr/sbin/vchand /usr/bin/vbusctl
# The broker vchand runs in dom0. domU2 serves demo.v1.Echo with `vbusctl serve --exec`:
# each call runs a shell command that answers "METHOD from CALLER: REQUEST" (the caller as
# the broker stamped it), and fails the call with an application error for the method
# Fail. domU1 then calls, one vbusctl process after the other over its vchan:
# demo.v1.Echo/Say (the reply must name domU1 as dom<id>(xt-domu1)), a service nobody
# serves (vbusctl must exit 1 and print not-found) and demo.v1.Echo/Fail (exit 1,
# application error with the server's message). dom0 calls demo.v1.Echo/Say over the
# UNIX socket (the server sees local(uid=0)). Last, the broker must stop on SIGTERM with
# exit status 0. On any failure the broker's log goes to the console.

K_RPC=$XT_BASE/rpc
# The server's command (run with sh -c by vbusctl serve, the request on its stdin).
ECHO_EXEC='if [ "$VBUS_METHOD" = Fail ]; then echo "failing on purpose" >&2; exit 3; fi; printf "%s from %s: " "$VBUS_METHOD" "$VBUS_CALLER"; cat'

# call_check TAG WANT_RC WANT_OUT WANT_ERR_SUBSTRING VBUSCTL-ARGS...: run one vbusctl call,
# give a verdict on its exit status, its stdout (exactly) and its stderr (contains).
call_check() {
    local tag="$1" want_rc="$2" want_out="$3" want_err="$4" rc out err
    shift 4
    vbusctl "$@" >"$XT_TMP/call.out" 2>"$XT_TMP/call.err"
    rc=$?
    out=$(cat "$XT_TMP/call.out")
    err=$(tr '\n' ' ' <"$XT_TMP/call.err" | cut -c1-300)
    if [ "$rc" = "$want_rc" ] && [ "$out" = "$want_out" ] &&
        case $err in *"$want_err"*) true ;; *) false ;; esac; then
        xt_result "$tag" PASS "vbusctl $* -> exit $rc${out:+, reply '$out'}${want_err:+, '$err'}"
    else
        xt_result "$tag" FAIL "vbusctl $* -> exit $rc (want $want_rc), reply '$out'" \
            "(want '$want_out'), stderr '$err'${want_err:+ (want '$want_err' in it)}"
    fi
}

check_dom0() {
    local v rc
    if ! xt_have vchand || ! xt_have vbusctl; then
        xt_result broker-rpc FAIL "vchand or vbusctl not built (tests/xen/run --build DIR)"
        xenstore-write "$K_RPC/broker" "not built"
        return 0
    fi
    if ! xt_broker_start; then
        xt_result rpc.broker-start FAIL "$XT_WHY"
        xenstore-write "$K_RPC/broker" failed
        xt_broker_log_tail
        return 0
    fi
    xenstore-write "$K_RPC/broker" ok
    # After domU1's calls (one call at a time keeps the server's view simple).
    v=$(xt_wait -t 400 "$K_RPC/serve-ready" "$K_RPC/calls-done" | tr '\n' ' ')
    case $v in
    "ok "*)
        call_check rpc.local-call 0 "Say from local(uid=0): hi" "" \
            --url "unix:$XT_BROKER_SOCK" call demo.v1.Echo/Say hi --timeout 60000
        ;;
    esac
    xenstore-write "$K_RPC/stop" 1
    xt_barrier end 300
    xt_broker_stop
    rc=$XT_RC
    if [ "$rc" = 0 ]; then
        xt_result rpc.broker-stop PASS "vchand exited 0 on SIGTERM:" \
            "$(grep -o 'stopped: .*' "$XT_TMP/broker.log" | tail -n 1 | cut -c1-200)"
    else
        xt_result rpc.broker-stop FAIL "vchand exit status $rc after SIGTERM, want 0;" \
            "last log line: $(tail -n 1 "$XT_TMP/broker.log" | cut -c1-200)"
    fi
    # The broker's log goes into the console log (not on the host's terminal) in any case,
    # so a passing run shows what the broker saw too; it ends with XENTEST-END.
    if xt_check_failed; then xt_broker_log_tail 80; else xt_broker_log_tail 40; fi
    return 0
}

# domU1: the caller.
check_domU1() {
    local v
    xt_have vbusctl || return 0
    v=$(xt_wait -t 300 "$K_RPC/broker") || v="no answer"
    if [ "$v" = "no answer" ]; then
        xt_result "$XT_CHECK:$XT_ROLE" FAIL "dom0 never said whether the broker started (300 s)"
        return 0
    fi
    [ "$v" = ok ] || return 0 # dom0 reported why
    v=$(xt_wait -t 300 "$K_RPC/serve-ready") || v="timeout"
    if [ "$v" != ok ]; then
        xt_result rpc.call FAIL "the server in domU2 never got ready: $v"
    else
        export VBUS_URL=vchan:0
        call_check rpc.call-domU1-to-domU2 0 "Say from dom$XT_DOMU1(xt-domu1): hello" "" \
            call demo.v1.Echo/Say hello --timeout 60000
        call_check rpc.no-server-not-found 1 "" "not-found" \
            call nobody.v1.Svc/Say hello --timeout 60000
        call_check rpc.application-error 1 "" "application: failing on purpose" \
            call demo.v1.Echo/Fail hello --timeout 60000
    fi
    xenstore-write "$K_RPC/calls-done" 1
    xt_barrier end 300
}

# domU2: the server, until dom0 says stop.
check_domU2() {
    local v pid
    xt_have vbusctl || return 0
    v=$(xt_wait -t 300 "$K_RPC/broker") || v="no answer"
    if [ "$v" = "no answer" ]; then
        xt_result "$XT_CHECK:$XT_ROLE" FAIL "dom0 never said whether the broker started (300 s)"
        return 0
    fi
    [ "$v" = ok ] || return 0 # dom0 reported why
    VBUS_URL=vchan:0 vbusctl serve demo.v1.Echo --exec "$ECHO_EXEC" --timeout 60000 \
        >"$XT_TMP/serve.out" 2>"$XT_TMP/serve.err" &
    pid=$!
    if xt_wait_file "$XT_TMP/serve.err" "# serving demo.v1.Echo" 180; then
        xenstore-write "$K_RPC/serve-ready" ok
    else
        v="not serving after 180 s: $(tr '\n' ' ' <"$XT_TMP/serve.err" | cut -c1-300)"
        xenstore-write "$K_RPC/serve-ready" "$v"
        xt_result rpc.serve FAIL "vbusctl serve in domU2: $v"
    fi
    xt_wait -t 400 "$K_RPC/stop" >/dev/null
    if xt__alive "$pid"; then
        [ "$v" = ok ] && xt_result rpc.serve PASS "vbusctl serve in domU2 still up after the calls"
        kill "$pid"
    else
        wait "$pid"
        xt_result rpc.serve FAIL "vbusctl serve in domU2 exited $? during the calls:" \
            "$(tail -n 2 "$XT_TMP/serve.err" | tr '\n' ' ' | cut -c1-300)"
    fi
    wait "$pid" 2>/dev/null
    xt_show "vbusctl serve stderr" "$XT_TMP/serve.err"
    xt_barrier end 300
}
