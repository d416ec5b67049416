#!/usr/bin/env bash
# xensim hypervisor test "notify": see scenario_notify in hv-driver.py.
# Usage: hv-notify.sh BUILD/xensim
# shellcheck source=tests/xensim/hv-common.sh
. "$(dirname "$0")/hv-common.sh"
hv_scenario notify
