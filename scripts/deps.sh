# shellcheck shell=bash
# The Debian 12 packages vbus needs, listed once. Sourced by scripts/demo and scripts/test.
#
# VBUS_PKGS_BUILD: compile libvbus, vchand and the clients.
#                  go-md2man turns docs/man/*.md into man pages, libsystemd-dev gives vchand
#                  sd_notify for vchand.service (each skipped when absent).
# VBUS_PKGS_TEST:  everything scripts/test runs (sanitizer build, fuzz replay, Xen's own tools
#                  used as interop peers against xensim, and the federation bridge with its
#                  NATS cluster: libnats builds vbus-bridge, nats-server runs its tests; the
#                  Debian packages: debhelper to build them, lintian to check them,
#                  mmdebstrap for the clean Debian 12 root they are tested in; the Python
#                  package vbus: cffi and the headers to build it, protoc and python3-protobuf
#                  for its typed services, pytest and mypy to test it, dh-python to package it;
#                  python3-prometheus-client parses vchand's metrics, an independent check of
#                  the exposition format).
VBUS_PKGS_BUILD="build-essential cmake pkg-config protobuf-c-compiler libprotobuf-c-dev
libxen-dev libsodium-dev go-md2man libsystemd-dev"
VBUS_PKGS_TEST="libcmocka-dev clang libclang-rt-14-dev llvm clang-format-14 xen-utils-4.17
python3-cffi python3-dev python3-protobuf protobuf-compiler python3-pytest python3-pytest-asyncio python3-mypy dh-python
xenstore-utils python3 nats-server libnats-dev debhelper lintian mmdebstrap
python3-prometheus-client"
# VBUS_PKGS_LINT:  the static checks of scripts/test (scripts/lint, scripts/check-includes).
VBUS_PKGS_LINT="clang-tidy-14 python3"

# vbus_missing_pkgs PKG...: print the packages that are not installed.
vbus_missing_pkgs() {
        local p missing=()
        for p in "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
                        missing+=("$p")
        done
        echo "${missing[*]}"
}

# vbus_ensure_pkgs PKG...: install what is missing as root; otherwise print the exact command
# and fail.
vbus_ensure_pkgs() {
        local missing
        missing=$(vbus_missing_pkgs "$@")
        [ -z "$missing" ] && return 0
        if [ "$(id -u)" -ne 0 ]; then
                echo "vbus: missing Debian packages. Install them with:" >&2
                echo "  sudo apt-get install -y $missing" >&2
                return 1
        fi
        echo "vbus: installing missing packages: $missing"
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086
        if ! apt-get install -y -q $missing >/dev/null; then
                apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null
        fi
}
