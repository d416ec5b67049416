# our vchan-cat against Xen's vchan-socket-proxy, ours/theirs as server, in domU and dom0
# xt-needs: /usr/bin/vchan-cat
# Our vchan-cat (libbus's own vchan) against Xen's vchan-socket-proxy (libxenvchan),
# dom0 <-> domU: ours as server with theirs as client, and theirs as server with ours as
# client, each placement with the server in the domU and in dom0. Every transfer moves
# XT_SIZE random bytes each way at once, checked by sha256. Our server uses 64 KiB rings
# in the domU and 1 MiB rings (a 256-grant list each) in dom0; vchan-socket-proxy's server
# always uses 1 KiB and 2 KiB rings. Last, our client in the domU starts 5 s before the
# server in dom0 publishes its keys: until then xenstored answers the domU's reads with
# EACCES, not ENOENT (the nearest existing parent is dom0's and unreadable to the domU),
# and the client must keep waiting up to its --timeout as libxenvchan's clients do. Our
# clients get --timeout=120: the default 10 s was too short under load for the server
# process to start in a domU and publish its keys (a FAIL seen at load average 6).

XT_PROXY=/usr/lib/xen-4.17/bin/vchan-socket-proxy

check_dom0() {
    if ! xt_have vchan-cat; then
        xt_result vchan-cat FAIL "vchan-cat not built (tests/xen/run --build DIR takes DIR/clients/vchan-cat/vchan-cat)"
        return 0
    fi
    dom=$XT_DOMU
    xt_xfer ours-server-in-domU \
        "$XT_PROXY" -m client "$dom" "/local/domain/$dom/data/vchan/0/xt-cat-1" -
    xt_xfer theirs-server-in-domU \
        vchan-cat --timeout=120 client "$dom" "/local/domain/$dom/data/vchan/0/xt-cat-2"
    xt_xfer ours-server-in-dom0 \
        vchan-cat server "$dom" "/local/domain/0/data/vchan/$dom/xt-cat-3" 1048576 1048576
    xt_xfer theirs-server-in-dom0 \
        "$XT_PROXY" -m server "$dom" "/local/domain/0/data/vchan/$dom/xt-cat-4" -
    XT_START_DELAY=5 xt_xfer theirs-server-in-dom0-starts-late \
        "$XT_PROXY" -m server "$dom" "/local/domain/0/data/vchan/$dom/xt-cat-5" -
    return 0 # xt_xfer printed its own verdicts
}

check_domU() {
    xt_have vchan-cat || return 0
    dom=$XT_DOMU
    xt_xfer ours-server-in-domU \
        vchan-cat server 0 "/local/domain/$dom/data/vchan/0/xt-cat-1"
    xt_xfer theirs-server-in-domU \
        "$XT_PROXY" -m server 0 "/local/domain/$dom/data/vchan/0/xt-cat-2" -
    xt_xfer ours-server-in-dom0 \
        "$XT_PROXY" -m client 0 "/local/domain/0/data/vchan/$dom/xt-cat-3" -
    xt_xfer theirs-server-in-dom0 \
        vchan-cat --timeout=120 client 0 "/local/domain/0/data/vchan/$dom/xt-cat-4"
    xt_xfer theirs-server-in-dom0-starts-late \
        vchan-cat --timeout=120 client 0 "/local/domain/0/data/vchan/$dom/xt-cat-5"
}
