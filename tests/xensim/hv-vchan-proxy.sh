#!/usr/bin/env bash
# xensim hypervisor test "vchan-proxy": see scenario_vchan_proxy in hv-driver.py.
# Usage: hv-vchan-proxy.sh BUILD/xensim
# shellcheck source=tests/xensim/hv-common.sh
. "$(dirname "$0")/hv-common.sh"
hv_scenario vchan-proxy
