# policy on real Xen: a domU denied a subscription, another (tagged by dom0) allowed
# xt-needs: /usr/sbin/vchand /usr/bin/vbusctl
# dom0 tags domU2 "xt" in /local/domain/<domU2>/vbus-tags (a key a guest cannot write on Xen:
# /local/domain/<N> is (n0,r<N>) and a key dom0 creates below it inherits that) and starts
# vchand with a policy that lets @tag:xt subscribe to xt.> and nothing else of the guests.
# domU1 must fail to write its own vbus-tags, and its `vbusctl sub 'xt.>'` must end with
# permission-denied; domU2's subscription must be accepted and receive the message dom0
# publishes. Last the broker stops on SIGTERM, counting the denial. On any failure the
# broker's log goes to the console.

K_PO=$XT_BASE/policy

check_dom0() {
    local v rc
    if ! xt_have vchand || ! xt_have vbusctl; then
        xt_result policy FAIL "vchand or vbusctl not built (tests/xen/run --build DIR)"
        xenstore-write "$K_PO/broker" "not built"
        return 0
    fi
    mkdir -p "$XT_TMP/policy"
    cat >"$XT_TMP/policy/50-xt.policy" <<'EOF'
subscribe  xt.>   @tag:xt   allow
publish    xt.>   @uid:0    allow
EOF
    if ! xenstore-write "/local/domain/$XT_DOMU2/vbus-tags" xt; then
        xt_result policy.tag FAIL "dom0 could not write /local/domain/$XT_DOMU2/vbus-tags"
    fi
    xt_log "vbus-tags of domU2: $(xenstore-ls -p "/local/domain/$XT_DOMU2" 2>&1 | grep vbus-tags)"
    if ! XT_POLICY=$XT_TMP/policy xt_broker_start; then
        xt_result policy.broker-start FAIL "$XT_WHY"
        xenstore-write "$K_PO/broker" failed
        xt_broker_log_tail
        return 0
    fi
    xenstore-write "$K_PO/broker" ok
    v=$(xt_wait -t 300 "$K_PO/sub-ready" | tr '\n' ' ')
    if [ "$v" = "ok " ]; then
        vbusctl --url "unix:$XT_BROKER_SOCK" pub xt.policy.hello hi --timeout 60000 \
            2>"$XT_TMP/policy-pub.err" ||
            xt_result policy.publish FAIL "dom0's vbusctl pub: $(tr '\n' ' ' <"$XT_TMP/policy-pub.err")"
    fi
    xenstore-write "$K_PO/published" "done"
    xt_barrier end 300
    xt_broker_stop
    rc=$XT_RC
    if [ "$rc" = 0 ] && grep -q "policy: subscribe 'xt.>': default deny (OPEN refused)" \
        "$XT_TMP/broker.log"; then
        xt_result policy.broker-log PASS "the denial of domU1 is logged:" \
            "$(grep -o "policy: subscribe 'xt.>'.*" "$XT_TMP/broker.log" | head -n 1 | cut -c1-200)"
    else
        xt_result policy.broker-log FAIL "vchand exit status $rc, or no log line of domU1's denial"
    fi
    if xt_check_failed; then xt_broker_log_tail 80; else xt_broker_log_tail 40; fi
    return 0
}

# domU1: may not tag itself, and is denied the subscription.
check_domU1() {
    local v rc
    xt_have vbusctl || return 0
    if xenstore-write "/local/domain/$XT_DOMU1/vbus-tags" xt 2>/dev/null; then
        xt_result policy.self-tag FAIL "domU1 wrote its own /local/domain/$XT_DOMU1/vbus-tags"
    else
        xt_result policy.self-tag PASS "domU1 cannot write its own vbus-tags"
    fi
    v=$(xt_wait -t 300 "$K_PO/broker") || v="no answer"
    [ "$v" = ok ] || { xt_barrier end 300; return 0; }
    VBUS_URL=vchan:0 vbusctl sub 'xt.>' --count 1 --timeout 60000 >"$XT_TMP/denied.out" \
        2>"$XT_TMP/denied.err"
    rc=$?
    if [ "$rc" != 0 ] && grep -q "permission-denied" "$XT_TMP/denied.err"; then
        xt_result policy.domU1-denied PASS "vbusctl sub exited $rc:" \
            "$(grep -o 'permission-denied.*' "$XT_TMP/denied.err" | head -n 1 | cut -c1-200)"
    else
        xt_result policy.domU1-denied FAIL "vbusctl sub exited $rc:" \
            "$(tr '\n' ' ' <"$XT_TMP/denied.err" | cut -c1-300)"
    fi
    xt_barrier end 300
}

# domU2: tagged xt by dom0, allowed.
check_domU2() {
    local v pid rc
    xt_have vbusctl || return 0
    v=$(xt_wait -t 300 "$K_PO/broker") || v="no answer"
    [ "$v" = ok ] || { xt_barrier end 300; return 0; }
    VBUS_URL=vchan:0 vbusctl sub 'xt.>' --count 1 --timeout 240000 >"$XT_TMP/allowed.out" \
        2>"$XT_TMP/allowed.err" &
    pid=$!
    if xt_wait_file "$XT_TMP/allowed.err" "# subscribed to" 180; then
        xenstore-write "$K_PO/sub-ready" ok
    else
        xenstore-write "$K_PO/sub-ready" "not subscribed"
    fi
    xt_wait -t 300 "$K_PO/published" >/dev/null
    wait "$pid"
    rc=$?
    case $(head -n 1 "$XT_TMP/allowed.out") in
    "xt.policy.hello local"*" hi")
        [ "$rc" = 0 ] && xt_result policy.domU2-allowed PASS "received: $(head -n 1 "$XT_TMP/allowed.out")" ;;
    *) rc=1 ;;
    esac
    [ "$rc" = 0 ] || xt_result policy.domU2-allowed FAIL "vbusctl sub exited $rc:" \
        "$(cat "$XT_TMP/allowed.out" "$XT_TMP/allowed.err" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
    xt_barrier end 300
}
