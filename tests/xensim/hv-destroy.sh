#!/usr/bin/env bash
# xensim hypervisor test "destroy": see scenario_destroy in hv-driver.py.
# Usage: hv-destroy.sh BUILD/xensim
# shellcheck source=tests/xensim/hv-common.sh
. "$(dirname "$0")/hv-common.sh"
hv_scenario destroy
