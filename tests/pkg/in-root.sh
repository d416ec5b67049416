#!/bin/bash
# tests/pkg/in-root.sh: runs inside the clean Debian 12 root of tests/pkg/chroot-test, as root.
# Installs the packages in /tmp/debs, checks what they put on the system, then runs the
# installed vchand and vbusctl against the installed xensim: a publish/subscribe between two
# guests and calls, from installed paths only. Prints "ok: ..." per check; exits 1 at the first
# failure with the logs.
set -u
T=/tmp/vbus-pkgtest
mkdir -p "$T"
XS_DIR=$T/xs
export XENSIM_DIR=$XS_DIR
PIDS=

fail() {
        echo "FAIL: $*"
        for f in "$T"/*.log "$T"/*.out "$XS_DIR"/*.log; do
                [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
        done
        exit 1
}
ok() { echo "ok: $*"; }
cleanup() {
        for p in $PIDS; do kill "$p" 2>/dev/null; done
        xensim down >/dev/null 2>&1
}
trap cleanup EXIT

# Waits up to 30 s for a pattern in a file.
wait_grep() {
        local i
        for i in $(seq 1 300); do
                grep -q -- "$1" "$2" 2>/dev/null && return 0
                sleep 0.1
        done
        return 1
}

# --- install
dpkg -i /tmp/debs/*.deb >"$T/dpkg.log" 2>&1 || fail "dpkg -i"
ok "dpkg -i: $(cd /tmp/debs && ls | sed 's/_.*//' | tr '\n' ' ')"
dpkg --audit >"$T/audit.log" 2>&1 && [ ! -s "$T/audit.log" ] || fail "dpkg --audit"

# --- what the packages put on the system
for f in /usr/sbin/vchand /usr/bin/vbusctl /usr/bin/vchan-cat /usr/bin/vbus-wire /usr/bin/xensim \
        /usr/bin/vbus-bridge /usr/bin/vbus-bridge-sub; do
        [ -x "$f" ] || fail "$f missing"
done
[ "$(command -v vchand)" = /usr/sbin/vchand ] && [ "$(command -v vbusctl)" = /usr/bin/vbusctl ] ||
        fail "vchand/vbusctl are not the installed ones"
vbus-bridge --help >/dev/null && vbus-bridge-sub --help >/dev/null || fail "vbus-bridge --help"
ok "programs installed in /usr/sbin and /usr/bin (vbus-bridge and vbus-bridge-sub start)"
lib=$(ldd /usr/bin/vbusctl | awk '$1 == "libvbus.so.0" { print $3 }')
[ -n "$lib" ] && [ "$(dpkg -S "$(realpath "$lib")" 2>/dev/null | cut -d: -f1)" = libvbus0 ] ||
        fail "vbusctl does not link libvbus0's library: $(ldd /usr/bin/vbusctl)"
ok "vbusctl links the packaged $(realpath "$lib")"
getent group vbus >/dev/null || fail "no group vbus"
ok "system group vbus: $(getent group vbus)"
[ -f /etc/vchand/vchand.conf ] && [ -d /etc/vchand/policy.d ] || fail "/etc/vchand incomplete"
grep -qx /etc/vchand/vchand.conf /var/lib/dpkg/info/vchand.conffiles || fail "vchand.conf is not a conffile"
vchand --check-config >"$T/check-config.out" 2>&1 || fail "vchand --check-config"
ok "/etc/vchand/vchand.conf (conffile) parses: $(head -n 1 "$T/check-config.out")"
for unit in vchand vbus-agent; do
        systemd-analyze verify /lib/systemd/system/$unit.service >"$T/verify.log" 2>&1 ||
                fail "systemd-analyze verify $unit: $(cat "$T/verify.log")"
        [ ! -s "$T/verify.log" ] || fail "systemd-analyze verify $unit printed: $(cat "$T/verify.log")"
        ok "systemd-analyze verify $unit.service: clean"
        [ -L /etc/systemd/system/multi-user.target.wants/$unit.service ] ||
                fail "$unit.service not enabled"
        ok "$unit.service enabled (multi-user.target.wants)"
        systemd-analyze security --offline=yes /lib/systemd/system/$unit.service \
                >"$T/security.log" 2>&1
        ok "systemd-analyze security $unit: $(grep -o 'Overall exposure level.*' "$T/security.log")"
done
grep -q '^ConditionVirtualization=!xen$' /lib/systemd/system/vchand.service &&
        grep -q '^ConditionVirtualization=xen$' /lib/systemd/system/vbus-agent.service ||
        fail "the broker and agent units do not split dom0 and guests"
ok "vchand.service starts outside Xen guests, vbus-agent.service inside them"
for p in vchand.8 vbusctl.1 vchan-cat.1 vbus-wire.1 xensim.1 vbus-bridge.1 vbus-bridge-sub.1; do
        man -w "${p%.*}" >/dev/null 2>&1 || fail "no man page ${p}"
        w=$(MANWIDTH=80 man --warnings "${p%.*}" 2>&1 >/dev/null)
        [ -z "$w" ] || fail "man $p: $w"
done
ok "man pages: vchand(8) vbusctl(1) vchan-cat(1) vbus-wire(1) xensim(1) vbus-bridge(1) (and vbus-bridge-sub), no groff warnings"
whatis vchand | grep -q 'vchand (8) *- the vbus broker' || fail "whatis vchand: $(whatis vchand 2>&1)"
ok "whatis: $(whatis vchand)"
out=$(bash -c '. /usr/share/bash-completion/bash_completion; _completion_loader vbusctl
        COMP_WORDS=(vbusctl s); COMP_CWORD=1; COMP_LINE="vbusctl s"; COMP_POINT=9
        _vbusctl vbusctl s vbusctl; echo "${COMPREPLY[*]}"' 2>&1)
[ "$out" = "sub serve services" ] || fail "bash completion of 'vbusctl s': '$out'"
ok "bash completion: vbusctl s<TAB> -> $out"

# --- the installed programs against the installed xensim
xensim up >"$T/xensim-up.out" 2>&1 || fail "xensim up"
g1=$(xensim domain create guest1) && g2=$(xensim domain create guest2) || fail "domain create"
ok "xensim up, guest1 = dom$g1, guest2 = dom$g2"

# The shipped policy parses; the checks below are of routing, so they run open.
vchand --check-policy /etc/vchand/policy.d >"$T/check-policy.out" 2>&1 ||
        fail "vchand --check-policy /etc/vchand/policy.d: $(cat "$T/check-policy.out")"
ok "the shipped policy: $(cat "$T/check-policy.out")"
xensim run --domid 0 -- vchand --verbose --policy open >"$T/broker.log" 2>&1 &
BROKER=$!
PIDS="$PIDS $BROKER"
for i in $(seq 1 100); do [ -S /run/vbus/broker.sock ] && break; sleep 0.1; done
[ -S /run/vbus/broker.sock ] || fail "vchand did not create /run/vbus/broker.sock"
ok "vchand (dom0) listens on /run/vbus/broker.sock"

# Publish/subscribe, guest to guest over their vchans, and to a local subscriber in dom0.
xensim run --domid "$g2" -- vbusctl --url vchan:0 sub 'demo.>' --count 2 >"$T/sub-g2.out" 2>"$T/sub-g2.log" &
SUB2=$!
vbusctl sub 'demo.>' --count 2 >"$T/sub-local.out" 2>"$T/sub-local.log" &
SUBL=$!
PIDS="$PIDS $SUB2 $SUBL"
wait_grep '# subscribed to' "$T/sub-g2.log" || fail "guest2's subscriber did not subscribe"
wait_grep '# subscribed to' "$T/sub-local.log" || fail "the local subscriber did not subscribe"
xensim run --domid "$g1" -- vbusctl --url vchan:0 pub demo.hello "hi from guest1" --count 2 \
        >"$T/pub.log" 2>&1 || fail "vbusctl pub in guest1"
timeout 30 tail --pid="$SUB2" -f /dev/null; timeout 30 tail --pid="$SUBL" -f /dev/null
want="demo.hello dom$g1(guest1) hi from guest1"
[ "$(cat "$T/sub-g2.out")" = "$want"$'\n'"$want" ] || fail "guest2 got: $(cat "$T/sub-g2.out")"
[ "$(cat "$T/sub-local.out")" = "$want"$'\n'"$want" ] || fail "dom0 got: $(cat "$T/sub-local.out")"
ok "pub/sub: guest1 -> guest2 (vchan) and -> dom0 (socket): '$want' twice each"

# A call: guest2 serves, guest1 and dom0 call.
xensim run --domid "$g2" -- vbusctl --url vchan:0 serve demo.v1.Echo \
        --exec 'printf "%s from %s: " "$VBUS_METHOD" "$VBUS_CALLER"; cat' 2>"$T/serve.log" &
PIDS="$PIDS $!"
wait_grep '# serving' "$T/serve.log" || fail "vbusctl serve did not start"
out=$(xensim run --domid "$g1" -- vbusctl --url vchan:0 call demo.v1.Echo/Say hello 2>&1) ||
        fail "call from guest1: $out"
[ "$out" = "Say from dom$g1(guest1): hello" ] || fail "call from guest1 answered '$out'"
ok "call guest1 -> guest2: $out"
out=$(vbusctl call demo.v1.Echo/Say hi 2>&1) || fail "local call: $out"
[ "$out" = "Say from local(uid=0): hi" ] || fail "local call answered '$out'"
ok "call dom0 -> guest2: $out"
out=$(vbusctl services 2>&1) || fail "vbusctl services: $out"
grep -q "^demo.v1.Echo  *dom$g2(guest2)" <<<"$out" || fail "vbusctl services: $out"
ok "vbusctl services lists demo.v1.Echo served by dom$g2(guest2)"

# Python (python3-vbus): the packaged module, linked to the packaged libvbus, calls from a guest.
mod=$(python3 -c 'import vbus, vbus._vbus_cffi as m; print(vbus.__file__, m.__file__)' 2>&1) ||
        fail "python3 -c 'import vbus': $mod"
case $mod in /usr/lib/python3/dist-packages/vbus/__init__.py\ /usr/lib/python3/dist-packages/vbus/_vbus_cffi.*.so) ;;
*) fail "import vbus found $mod" ;;
esac
lib=$(ldd "${mod#* }" | awk '$1 == "libvbus.so.0" { print $3 }')
[ -n "$lib" ] && [ "$(dpkg -S "$(realpath "$lib")" 2>/dev/null | cut -d: -f1)" = libvbus0 ] ||
        fail "the Python module does not link libvbus0's library: $(ldd "${mod#* }")"
ok "import vbus: ${mod%% *}, linked to the packaged $(realpath "$lib")"
out=$(xensim run --domid "$g1" -- env VBUS_URL=vchan:0 python3 -c '
import asyncio, vbus
async def main():
    async with vbus.connect() as bus:
        print((await bus.call("demo.v1.Echo/Say", b"py", timeout=10)).decode())
asyncio.run(main())' 2>&1) || fail "Python call from guest1: $out"
[ "$out" = "Say from dom$g1(guest1): py" ] || fail "Python call from guest1 answered '$out'"
ok "Python call guest1 -> guest2: $out"

kill -TERM "$BROKER"
wait "$BROKER"
rc=$?
[ $rc = 0 ] || fail "vchand exited $rc on SIGTERM"
ok "vchand stopped on SIGTERM: $(grep -o 'stopped.*' "$T/broker.log" | tail -n 1)"
echo "in-root: all checks passed"
