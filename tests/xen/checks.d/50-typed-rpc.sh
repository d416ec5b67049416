# the broker vchand in dom0: typed RPC (protobuf-c), kvstore-server in domU1, kvstore-client in domU2
# xt-needs: /usr/sbin/vchand examples/kvstore/kvstore-server examples/kvstore/kvstore-client
# The broker vchand runs in dom0. domU1 runs the example typed server kvstore-server
# (examples/kvstore: storage.v1.Store, generated protobuf-c service) over its vchan; domU2
# runs kvstore-client, one process per call: Put xt-colour "deep blue" through the generated
# stubs (must print "ok (new)"), Get it back (must print "deep blue"), Get a key never put
# (the example's documented answer: found = false, "not found" on stderr, exit 1), Delete
# it ("deleted") and Get it again through the blocking vbus_protobuf_call() (--sync; "not
# found", exit 1). domU1 then checks its server's log: each call was seen from
# dom<domU2>(xt-domu2), as the broker stamped it, with a deadline left of at most the
# caller's 60 s. domU1 stops the server (SIGTERM, exit 0), and a last Get from domU2 must
# fail with not-found: no responders (exit 3). Last, the broker must stop on SIGTERM with
# exit status 0. On any failure the broker's log goes to the console.

K_KV=$XT_BASE/kv
KV_TIMEOUT_MS=60000

# kv_check TAG WANT_RC WANT_OUT WANT_ERR_GLOB KVSTORE-CLIENT-ARGS...: run one kvstore-client
# call, give a verdict on its exit status, its stdout (exactly) and its stderr (a glob
# pattern: "" means empty).
kv_check() {
    local tag="$1" want_rc="$2" want_out="$3" want_err="$4" rc out err
    shift 4
    kvstore-client --timeout "$KV_TIMEOUT_MS" "$@" >"$XT_TMP/call.out" 2>"$XT_TMP/call.err"
    rc=$?
    out=$(cat "$XT_TMP/call.out")
    err=$(tr '\n' ' ' <"$XT_TMP/call.err" | cut -c1-300)
    err=${err% }
    # shellcheck disable=SC2254 # $want_err is a pattern
    if [ "$rc" = "$want_rc" ] && [ "$out" = "$want_out" ] &&
        case $err in $want_err) true ;; *) false ;; esac; then
        xt_result "$tag" PASS "kvstore-client $* -> exit $rc${out:+, '$out'}${err:+, stderr '$err'}"
    else
        xt_result "$tag" FAIL "kvstore-client $* -> exit $rc (want $want_rc), stdout '$out'" \
            "(want '$want_out'), stderr '$err' (want '$want_err')"
    fi
}

# kv_wait_broker: a domU waits for dom0's word on the broker; returns 1 when there is no
# broker (dom0 reported why, or this part reports that dom0 never said).
kv_wait_broker() {
    local v
    v=$(xt_wait -t 300 "$K_KV/broker") || v="no answer"
    if [ "$v" = "no answer" ]; then
        xt_result "$XT_CHECK:$XT_ROLE" FAIL "dom0 never said whether the broker started (300 s)"
        return 1
    fi
    [ "$v" = ok ]
}

check_dom0() {
    local rc
    if ! xt_have vchand; then
        xt_result typed-rpc FAIL "vchand not built (tests/xen/run --build DIR)"
        xenstore-write "$K_KV/broker" "not built"
        return 0
    fi
    if ! xt_broker_start; then
        xt_result kv.broker-start FAIL "$XT_WHY"
        xenstore-write "$K_KV/broker" failed
        xt_broker_log_tail
        return 0
    fi
    xenstore-write "$K_KV/broker" ok
    xt_barrier end 500
    xt_broker_stop
    rc=$XT_RC
    if [ "$rc" = 0 ]; then
        xt_result kv.broker-stop PASS "vchand exited 0 on SIGTERM:" \
            "$(grep -o 'stopped: .*' "$XT_TMP/broker.log" | tail -n 1 | cut -c1-200)"
    else
        xt_result kv.broker-stop FAIL "vchand exit status $rc after SIGTERM, want 0;" \
            "last log line: $(tail -n 1 "$XT_TMP/broker.log" | cut -c1-200)"
    fi
    if xt_check_failed; then xt_broker_log_tail 80; else xt_broker_log_tail 40; fi
    return 0
}

# judge_server_log FILE: what kvstore-server logged, one line per call
# ("METHOD key=KEY caller dom<ID>(NAME) deadline-left=Nms"), must be exactly the five calls
# of domU2, in order, each from dom<domU2>(xt-domu2) with 0 < N <= KV_TIMEOUT_MS.
judge_server_log() {
    local f="$1" who="dom$XT_DOMU2(xt-domu2)" i=0 bad='' first='' line want left
    set -- Put:xt-colour Get:xt-colour Get:xt-missing Delete:xt-colour Get:xt-colour
    while IFS= read -r line; do
        case $line in "serving "*) continue ;; esac
        i=$((i + 1))
        [ -n "$bad" ] && continue
        if [ $# = 0 ]; then
            bad="call $i (one more than 5) logged: '$line'"
            continue
        fi
        want="${1%%:*} key=${1#*:} caller $who deadline-left="
        shift
        case $line in
        "$want"*ms)
            left=${line#"$want"}
            left=${left%ms}
            case $left in
            '' | *[!0-9]*) bad="call $i logged as '$line', want '${want}Nms'" ;;
            *)
                [ "$left" -gt 0 ] && [ "$left" -le "$KV_TIMEOUT_MS" ] ||
                    bad="call $i: '$line', want deadline-left 1..${KV_TIMEOUT_MS}ms"
                ;;
            esac
            ;;
        *) bad="call $i logged as '$line', want '${want}Nms'" ;;
        esac
        [ "$i" = 1 ] && first=$line
    done <"$f"
    [ "$i" = 5 ] || bad="${bad:-$i calls logged, want 5}"
    if [ -z "$bad" ]; then
        xt_result kv.server-saw-caller PASS "5 calls logged in order, each from $who" \
            "with a deadline left <= ${KV_TIMEOUT_MS}ms; first: '$first'"
    else
        xt_result kv.server-saw-caller FAIL "$bad"
    fi
}

# domU1: the typed server, until domU2's calls are done.
check_domU1() {
    local v pid rc
    if ! xt_have kvstore-server; then
        xt_result kv.serve FAIL "kvstore-server not in the initramfs (examples not built)"
        xenstore-write "$K_KV/serve-ready" "not built"
        xt_barrier end 300
        return 0
    fi
    kv_wait_broker || return 0 # no broker: dom0 ends the check without a barrier
    VBUS_URL=vchan:0 kvstore-server --ready "$XT_TMP/ready" \
        >"$XT_TMP/server.out" 2>"$XT_TMP/server.err" &
    pid=$!
    if xt_wait_file "$XT_TMP/server.out" "serving storage.v1.Store" 180 && [ -e "$XT_TMP/ready" ]; then
        v=ok
    else
        v="not serving after 180 s: $(tr '\n' ' ' <"$XT_TMP/server.err" | cut -c1-300)"
        xt_result kv.serve FAIL "kvstore-server in domU1: $v"
    fi
    xenstore-write "$K_KV/serve-ready" "$v"
    if [ "$v" = ok ]; then
        xt_wait -t 400 "$K_KV/calls-done" >/dev/null
        judge_server_log "$XT_TMP/server.out"
    fi
    if xt__alive "$pid"; then
        kill -TERM "$pid"
        wait "$pid"
        rc=$?
        if [ "$v" != ok ]; then
            :
        elif [ "$rc" = 0 ]; then
            xt_result kv.serve PASS "kvstore-server in domU1 served the calls and exited 0 on SIGTERM"
        else
            xt_result kv.serve FAIL "kvstore-server in domU1 exited $rc on SIGTERM, want 0:" \
                "$(tail -n 2 "$XT_TMP/server.err" | tr '\n' ' ' | cut -c1-300)"
        fi
    else
        wait "$pid"
        rc=$?
        [ "$v" = ok ] && xt_result kv.serve FAIL "kvstore-server in domU1 exited $rc during the calls:" \
            "$(tail -n 2 "$XT_TMP/server.err" | tr '\n' ' ' | cut -c1-300)"
    fi
    xenstore-write "$K_KV/server-gone" 1
    xt_show "kvstore-server stdout" "$XT_TMP/server.out"
    xt_show "kvstore-server stderr" "$XT_TMP/server.err"
    xt_barrier end 300
}

# domU2: the typed client, one kvstore-client process per call.
check_domU2() {
    local v
    if ! xt_have kvstore-client; then
        xt_result kv.client FAIL "kvstore-client not in the initramfs (examples not built)"
        xenstore-write "$K_KV/calls-done" 1
        xt_barrier end 300
        return 0
    fi
    kv_wait_broker || return 0
    v=$(xt_wait -t 300 "$K_KV/serve-ready") || v="timeout"
    export VBUS_URL=vchan:0
    if [ "$v" != ok ]; then
        xt_result kv.client FAIL "the server in domU1 never got ready: $v"
    else
        kv_check kv.put-domU2-to-domU1 0 "ok (new)" "" put xt-colour "deep blue"
        kv_check kv.get-value 0 "deep blue" "" get xt-colour
        kv_check kv.get-missing-key 1 "" "not found" get xt-missing
        kv_check kv.delete 0 "deleted" "" delete xt-colour
        kv_check kv.get-deleted-sync 1 "" "not found" --sync get xt-colour
    fi
    xenstore-write "$K_KV/calls-done" 1
    if [ "$v" = ok ]; then
        xt_wait -t 300 "$K_KV/server-gone" >/dev/null
        kv_check kv.no-server-not-found 3 "" "kvstore-client: not-found: no responders*" \
            get xt-colour
    fi
    xt_barrier end 300
}
