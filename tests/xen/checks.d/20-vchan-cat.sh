# our vchan-cat against Xen's vchan-socket-proxy, ours/theirs as server, in domU and dom0
# Our vchan-cat (libbus's own vchan) against Xen's vchan-socket-proxy (libxenvchan),
# dom0 <-> domU: ours as server with theirs as client, and theirs as server with ours as
# client, each placement with the server in the domU and in dom0. Every transfer moves
# XT_SIZE random bytes each way at once, checked by sha256.

XT_PROXY=/usr/lib/xen-4.17/bin/vchan-socket-proxy

check_dom0() {
    if ! xt_have vchan-cat; then
        xt_result vchan-cat FAIL "vchan-cat not built (tests/xen/run --build DIR takes DIR/clients/vchan-cat/vchan-cat)"
        return 0
    fi
    _d=$XT_DOMU
    _ok=0
    xt_xfer ours-server-in-domU \
        "$XT_PROXY" -m client "$_d" "/local/domain/$_d/data/vchan/0/xt-cat-1" - || _ok=1
    xt_xfer theirs-server-in-domU \
        vchan-cat client "$_d" "/local/domain/$_d/data/vchan/0/xt-cat-2" || _ok=1
    xt_xfer ours-server-in-dom0 \
        vchan-cat server "$_d" "/local/domain/0/data/vchan/$_d/xt-cat-3" || _ok=1
    xt_xfer theirs-server-in-dom0 \
        "$XT_PROXY" -m server "$_d" "/local/domain/0/data/vchan/$_d/xt-cat-4" - || _ok=1
    return $_ok
}

check_domU() {
    xt_have vchan-cat || return 0
    _d=$XT_DOMU
    xt_xfer ours-server-in-domU \
        vchan-cat server 0 "/local/domain/$_d/data/vchan/0/xt-cat-1"
    xt_xfer theirs-server-in-domU \
        "$XT_PROXY" -m server 0 "/local/domain/$_d/data/vchan/0/xt-cat-2" -
    xt_xfer ours-server-in-dom0 \
        "$XT_PROXY" -m client 0 "/local/domain/0/data/vchan/$_d/xt-cat-3" -
    xt_xfer theirs-server-in-dom0 \
        vchan-cat client 0 "/local/domain/0/data/vchan/$_d/xt-cat-4"
}
