# shellcheck shell=bash disable=SC2034 # sourced: its variables are the scripts'
# Shared setup of the hostile-guest suite (sourced after tests/integration/lib.sh).
# Each case runs one attacker beside two honest pairs of guests: a publisher and a lossless
# (BLOCK) subscriber, and an RPC server and a caller making calls one after another. It gives:
#   hostile_broker CONF_LINES   starts the broker with vchand.conf lines (plus the suite's
#                               memory bounds) and starts sampling its RSS
#   honest_start                starts the honest guests (their traffic spans about 12 s), with
#                               vchan rings of $HONEST_RING bytes (default 1 MiB)
#   honest_finish               waits for them: every message arrived (none dropped), every
#                               call answered ok; fails otherwise
#   attacker NAME               a guest domain for an attacker; prints its domid
#   rss_check                   the broker's peak RSS grew by less than $RSS_BOUND_KB
#   only_dropped LABEL...       the broker dropped no link but those whose label matches
HOSTILE=$B/tests/hostile/hostile
# Under AddressSanitizer freed memory waits in a quarantine (256 MiB by default) and counts as
# resident: turn it off, so the broker's RSS shows what it really holds.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
RPCCHECK=$B/tests/integration/rpc-check
# The suite's global memory budget (vchand.conf max_memory) and per-peer budget: the broker's
# RSS may grow by the global budget plus what it needs for itself and allocator slack.
MAX_MEMORY_MB=${MAX_MEMORY_MB:-64}
PEER_MEMORY_MB=${PEER_MEMORY_MB:-16}
RSS_BOUND_KB=$(((MAX_MEMORY_MB + 32) * 1024))
N_MSGS=1200
N_CALLS=30

hostile_broker() {
        {
                echo "max_memory = $((MAX_MEMORY_MB * 1024 * 1024))"
                echo "peer_memory = $((PEER_MEMORY_MB * 1024 * 1024))"
                for l in "$@"; do echo "$l"; done
        } >"$TMP/vchand.conf"
        [ "${HOSTILE_NO_CONF:-}" = 1 ] && : >"$TMP/vchand.conf"
        broker_start --config "$TMP/vchand.conf"
        rss_of() { awk '/^VmRSS/ {print $2}' "/proc/$BROKER_PID/status" 2>/dev/null; }
        RSS_BASE=$(rss_of)
        [ -n "$RSS_BASE" ] || fail "cannot read the broker's RSS"
        (
                peak=$RSS_BASE
                while kill -0 "$BROKER_PID" 2>/dev/null; do
                        r=$(rss_of)
                        [ -n "$r" ] && [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" >"$TMP/rss.peak"
                        sleep 0.1
                done
        ) &
        PIDS="$PIDS $!"
        echo "$RSS_BASE" >"$TMP/rss.peak"
}

honest_start() {
        g_sub=$(guest hsub)
        g_pub=$(guest hpub)
        g_srv=$(guest hsrv)
        g_call=$(guest hcall)
        export VBUS_RING_SIZE=${HONEST_RING:-1048576}
        bg as_dom "$g_sub" env VBUS_URL=vchan:0 "$CHECK" sub honest.t "$N_MSGS" --block \
                --sender "dom$g_pub(hpub)" --timeout 200000 --ready "$TMP/sub.ready" \
                >"$TMP/hsub.out" 2>&1
        P_SUB=$!
        bg as_dom "$g_srv" env VBUS_URL=vchan:0 "$RPCCHECK" serve h.v1.Echo hsrv \
                --ready "$TMP/srv.ready" >"$TMP/hsrv.out" 2>&1
        wait_file "$TMP/sub.ready" || fail "honest subscriber not ready"
        wait_file "$TMP/srv.ready" || fail "honest server not ready"
        bg as_dom "$g_pub" env VBUS_URL=vchan:0 "$CHECK" pub honest.t "$N_MSGS" 256 --rate 100 \
                >"$TMP/hpub.out" 2>&1
        P_PUB=$!
        (
                for i in $(seq 1 "$N_CALLS"); do
                        as_dom "$g_call" env VBUS_URL=vchan:0 "$RPCCHECK" call h.v1.Echo/Echo \
                                "n$i" --timeout 60000 || exit 1
                        sleep 0.3
                done
        ) >"$TMP/hcall.out" 2>&1 &
        P_CALL=$!
        PIDS="$PIDS $P_CALL"
}

# Waits at most 240 s in all (ctest's own bound) for the honest guests.
honest_finish() {
        wait "$P_PUB" || fail "honest publisher: $(tail -n 3 "$TMP/hpub.out")"
        wait "$P_SUB" || fail "honest subscriber lost or broke messages: $(tail -n 3 "$TMP/hsub.out")"
        grep -q "received $N_MSGS dropped 0 corrupt 0 reordered 0" "$TMP/hsub.out" ||
                fail "honest subscriber: $(tail -n 2 "$TMP/hsub.out")"
        wait "$P_CALL" || fail "honest caller: $(tail -n 3 "$TMP/hcall.out")"
        [ "$(grep -c '^ok hsrv:n' "$TMP/hcall.out")" = "$N_CALLS" ] ||
                fail "honest caller: $(grep -vc '^ok' "$TMP/hcall.out") calls not ok"
        ok "honest guests: $N_MSGS messages received, none dropped; $N_CALLS calls ok"
}

attacker() {
        guest "$1"
}

rss_report() {
        echo "rss after the attack: base ${RSS_BASE} kB peak $(cat "$TMP/rss.peak") kB"
}

rss_check() {
        local peak
        peak=$(cat "$TMP/rss.peak")
        echo "rss: base ${RSS_BASE} kB peak ${peak} kB growth $((peak - RSS_BASE)) kB" \
                "(bound ${RSS_BOUND_KB} kB)"
        [ $((peak - RSS_BASE)) -lt "$RSS_BOUND_KB" ] ||
                fail "the broker's RSS grew by $((peak - RSS_BASE)) kB (bound $RSS_BOUND_KB kB)"
        ok "broker RSS growth under its bound"
}

only_dropped() {
        local pat="$1" line
        grep "disconnected" "$TMP/broker.log" | grep -v "disconnected: closed$" >"$TMP/drops" || true
        while read -r line; do
                case "$line" in
                *"$pat"*) ;;
                *) fail "a bystander was disconnected: $line" ;;
                esac
        done <"$TMP/drops"
        ok "no link dropped but the attacker's ($(wc -l <"$TMP/drops") drops of it)"
}
