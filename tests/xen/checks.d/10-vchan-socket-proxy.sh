# Xen's vchan-socket-proxy at both ends, domU server and dom0 server (proves the harness)
# Xen's own libxenvchan at both ends proves the harness (grants, event channels, xenstore
# permissions across domains) before our code is involved. Once with the domU as vchan
# server, once with dom0 as server; each transfer moves XT_SIZE random bytes each way at
# once, checked by sha256. vchan-socket-proxy's server always uses 1 KiB and 2 KiB rings.
# Last, the client in the domU starts 5 s before the server in dom0 (libxenvchan's client
# retries on every xenstore watch event; 20-vchan-cat holds ours to the same).

XT_PROXY=/usr/lib/xen-4.17/bin/vchan-socket-proxy

check_dom0() {
    xt_xfer proxy-server-in-domU \
        "$XT_PROXY" -m client "$XT_DOMU" "/local/domain/$XT_DOMU/data/vchan/0/xt-proxy" -
    xt_xfer proxy-server-in-dom0 \
        "$XT_PROXY" -m server "$XT_DOMU" "/local/domain/0/data/vchan/$XT_DOMU/xt-proxy" -
    XT_START_DELAY=5 xt_xfer proxy-server-in-dom0-starts-late \
        "$XT_PROXY" -m server "$XT_DOMU" "/local/domain/0/data/vchan/$XT_DOMU/xt-proxy-late" -
    return 0 # xt_xfer printed its own verdicts
}

check_domU() {
    xt_xfer proxy-server-in-domU \
        "$XT_PROXY" -m server 0 "/local/domain/$XT_DOMU/data/vchan/0/xt-proxy" -
    xt_xfer proxy-server-in-dom0 \
        "$XT_PROXY" -m client 0 "/local/domain/0/data/vchan/$XT_DOMU/xt-proxy" -
    xt_xfer proxy-server-in-dom0-starts-late \
        "$XT_PROXY" -m client 0 "/local/domain/0/data/vchan/$XT_DOMU/xt-proxy-late" -
}
