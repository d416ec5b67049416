#!/usr/bin/env bash
# xensim hypervisor test "coalesce": see scenario_coalesce in hv-driver.py.
# Usage: hv-coalesce.sh BUILD/xensim
# shellcheck source=tests/xensim/hv-common.sh
. "$(dirname "$0")/hv-common.sh"
hv_scenario coalesce
