#!/usr/bin/env bash
# xensim hypervisor test "perms": see scenario_perms in hv-driver.py.
# Usage: hv-perms.sh BUILD/xensim
# shellcheck source=tests/xensim/hv-common.sh
. "$(dirname "$0")/hv-common.sh"
hv_scenario perms
