#!/usr/bin/env bash
# What a new user of vbusctl hit, each checked here: a bad numeric option names the option in
# one line plus a hint; --version; a message of exactly 1 MiB goes through pub --binary and
# call - (and 1 MiB + 1 is refused with the limit named); call @FILE; call ends its output with a
# newline (--raw: the bytes only); sub --json is valid JSON with UTF-8 text as it is, binary in
# base64 and the sender's domain name escaped; serve keeps a request in memory, never in /tmp;
# -v says what happens.
. "$(dirname "$0")/lib.sh" "$1"
xs_up
broker_start
export VBUS_URL=unix:$SOCK

# --- usage errors: one line naming the option, and the hint ---
bad() {
        local want=$1 out rc
        shift
        out=$("$VBUSCTL" "$@" 2>&1)
        rc=$?
        [ "$rc" = 2 ] || fail "vbusctl $*: exit $rc, '$out'"
        [ "$(printf '%s\n' "$out" | wc -l)" = 2 ] || fail "vbusctl $*: not two lines: '$out'"
        [[ "$(printf '%s\n' "$out" | head -n 1)" == *"$want"* ]] || fail "vbusctl $*: '$out'"
        [ "$(printf '%s\n' "$out" | tail -n 1)" = "Try 'vbusctl --help' for more information." ] ||
                fail "vbusctl $*: no hint: '$out'"
        ok "vbusctl $*: $(printf '%s\n' "$out" | head -n 1)"
}
bad "--timeout wants a whole number of milliseconds from 0 to 86400000, not 'abc'" \
        sub x --timeout abc
bad "--timeout" pub x y --timeout -5
bad "--timeout" call a.B/C x --timeout 1e3
bad "--count wants a whole number of messages" sub x --count 0
bad "--count" sub x --count 12x
bad "--interval wants a whole number of milliseconds from 0 to 3600000, not 'soon'" \
        pub x y --interval soon
bad "--header wants KEY=VALUE" call a.B/C x --header Bad=1
bad "--timeout wants a whole number" expose t.v1.X --to tcp:127.0.0.1:1 --timeout x
bad "unrecognized option '--bogus'" pub x y --bogus
bad "missing COMMAND"
out=$("$VBUSCTL" --version) || fail "--version"
[[ "$out" =~ ^vbusctl\ [0-9]+\.[0-9]+\.[0-9]+\ \(libvbus\ [0-9.]+,\ protocol\ 1\)$ ]] ||
        fail "--version: '$out'"
ok "--version: $out"

# --- 1 MiB exactly: accepted everywhere; one byte more refused with the limit named ---
head -c 1048576 /dev/urandom >"$TMP/1m"
head -c 1048577 /dev/urandom >"$TMP/1m1"
want=$(sha256sum <"$TMP/1m" | cut -d' ' -f1)
bg "$VBUSCTL" sub big.x --hex --count 1 >"$TMP/sub-big.hex" 2>"$TMP/sub-big.log"
wait_grep "# subscribed" "$TMP/sub-big.log" || fail "subscriber not active"
"$VBUSCTL" pub --binary big.x - <"$TMP/1m" 2>"$TMP/o" || fail "pub --binary of 1 MiB: $(cat "$TMP/o")"
wait "$!" 2>/dev/null
for i in $(seq 1 300); do [ -s "$TMP/sub-big.hex" ] && break; sleep 0.05; done
got=$(cut -d' ' -f3 "$TMP/sub-big.hex" | xxd -r -p | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "pub --binary of 1 MiB: the subscriber got something else"
ok "pub --binary: a message of exactly 1 MiB delivered intact"
"$VBUSCTL" pub --binary big.x - <"$TMP/1m1" 2>"$TMP/o" && fail "pub --binary of 1 MiB + 1 accepted"
grep -q "stdin is larger than the 1048576-byte message limit" "$TMP/o" || fail "1 MiB + 1: $(cat "$TMP/o")"
ok "pub --binary of 1 MiB + 1: $(cat "$TMP/o")"

bg "$VBUSCTL" serve t.v1.Echo --exec cat 2>"$TMP/serve-echo.log"
wait_grep "# serving" "$TMP/serve-echo.log" || fail "vbusctl serve did not start"
"$VBUSCTL" call --raw t.v1.Echo/Echo - <"$TMP/1m" >"$TMP/reply" 2>"$TMP/o" ||
        fail "call - of 1 MiB: $(cat "$TMP/o")"
[ "$(sha256sum <"$TMP/reply" | cut -d' ' -f1)" = "$want" ] || fail "call - of 1 MiB: another reply"
ok "call - : a request of exactly 1 MiB, and its 1 MiB echo, intact"
"$VBUSCTL" call t.v1.Echo/Echo - <"$TMP/1m1" >/dev/null 2>"$TMP/o" && fail "call - of 1 MiB + 1 accepted"
grep -q "stdin is larger than the 1048576-byte message limit" "$TMP/o" || fail "call 1 MiB + 1: $(cat "$TMP/o")"
ok "call - of 1 MiB + 1: $(cat "$TMP/o")"

# --- call @FILE, the trailing newline and --raw ---
printf 'from a file' >"$TMP/req"
"$VBUSCTL" call t.v1.Echo/Echo "@$TMP/req" >"$TMP/reply" || fail "call @FILE"
printf 'from a file\n' | cmp -s - "$TMP/reply" ||
        fail "call @FILE printed $(od -An -c "$TMP/reply")"
ok "call @FILE: the file's contents sent, the reply printed with a newline"
"$VBUSCTL" call --raw t.v1.Echo/Echo "@$TMP/req" >"$TMP/reply" || fail "call --raw"
cmp -s "$TMP/req" "$TMP/reply" || fail "call --raw printed $(od -An -c "$TMP/reply")"
ok "call --raw: the reply's bytes only"
"$VBUSCTL" call t.v1.Echo/Echo "@$TMP/nonexistent" >/dev/null 2>"$TMP/o" && fail "call @missing succeeded"
grep -q "cannot open '$TMP/nonexistent': No such file or directory" "$TMP/o" || fail "call @missing: $(cat "$TMP/o")"
ok "call @missing: $(cat "$TMP/o")"

# --- sub --json: valid JSON, UTF-8 as it is, binary in base64, the sender's name escaped ---
# xensim names are plain; the toolstack (dom0) may write any printable name, and the broker
# stamps it as it reads it when the guest connects.
g=$(guest weird)
# (xenstore-write unescapes: two backslashes are one)
as_dom 0 xenstore-write "/local/domain/$g/name" 'we"ird\\name' || fail "renaming the guest"
bg "$VBUSCTL" sub 'j.>' --json --count 3 >"$TMP/sub-json.out" 2>"$TMP/sub-json.log"
sub_pid=$!
wait_grep "# subscribed" "$TMP/sub-json.log" || fail "json subscriber not active"
as_dom "$g" env VBUS_URL=vchan:0 "$VBUSCTL" pub j.temp '21.5°C' || fail "pub from the guest"
printf '\377\000\001"\\' | "$VBUSCTL" pub --binary j.bin - || fail "pub binary"
printf 'tab\there "q" \\ \001' | "$VBUSCTL" pub --binary j.ctl - || fail "pub control characters"
wait "$sub_pid" || fail "json subscriber: $(cat "$TMP/sub-json.log")"
python3 - "$TMP/sub-json.out" "$g" <<'PY' || fail "sub --json: $(cat "$TMP/sub-json.out")"
import base64, json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert len(lines) == 3, lines
m = {}
for line in lines:
        o = json.loads(line)
        m[o["topic"]] = o
t = m["j.temp"]
assert t["encoding"] == "utf-8" and t["data"] == "21.5°C", t
assert t["sender"] == {"local": False, "domid": int(sys.argv[2]), "name": 'we"ird\\name'}, t
b = m["j.bin"]
assert b["encoding"] == "base64" and base64.b64decode(b["data"]) == b'\xff\x00\x01"\\', b
assert b["sender"]["local"] is True and b["sender"]["uid"] >= 0, b
c = m["j.ctl"]
assert c["encoding"] == "utf-8" and c["data"] == 'tab\there "q" \\ \x01', c
for o in m.values():
        assert isinstance(o["sequence"], int) and o["dropped"] == 0 and o["gap"] is False, o
PY
ok "sub --json: 3 lines of valid JSON (UTF-8 text, base64 binary, escaped name and controls)"
# Text mode prints UTF-8 as it is and escapes the rest.
bg "$VBUSCTL" sub 'k.>' --count 2 >"$TMP/sub-text.out" 2>"$TMP/sub-text.log"
sub_pid=$!
wait_grep "# subscribed" "$TMP/sub-text.log" || fail "text subscriber not active"
"$VBUSCTL" pub k.temp '21.5°C' || fail "pub k.temp"
printf 'a\033[2Jb' | "$VBUSCTL" pub --binary k.esc - || fail "pub k.esc"
wait "$sub_pid" || fail "text subscriber"
grep -q "^k.temp local(uid=[0-9]*,pid=[0-9]*) 21.5°C$" "$TMP/sub-text.out" || fail "text: $(cat "$TMP/sub-text.out")"
grep -q '^k.esc local(uid=[0-9]*,pid=[0-9]*) a\\x1b\[2Jb$' "$TMP/sub-text.out" || fail "text: $(cat "$TMP/sub-text.out")"
ok "sub (text): UTF-8 printed as it is, an escape sequence escaped"

# --- serve: the request of a call in progress is in memory, not in a file under /tmp ---
bg "$VBUSCTL" serve t.v1.Slow --exec 'cat >/dev/null; sleep 30' 2>"$TMP/serve-slow.log"
serve_pid=$!
wait_grep "# serving" "$TMP/serve-slow.log" || fail "slow serve did not start"
bg "$VBUSCTL" call --timeout 60000 t.v1.Slow/Wait secret-request >/dev/null 2>&1
for i in $(seq 1 300); do
        ls -l "/proc/$serve_pid/fd" 2>/dev/null | grep -q "memfd:vbusctl-request" && break
        sleep 0.05
done
fds=$(ls -l "/proc/$serve_pid/fd")
grep -q "memfd:vbusctl-request" <<<"$fds" || fail "no request memfd in serve's fds: $fds"
grep -q "/tmp/vbusctl" <<<"$fds" && fail "serve holds files under /tmp: $fds"
kill -TERM "$serve_pid"
wait "$serve_pid" 2>/dev/null
ok "serve: a call's request and stderr are memfds (nothing in /tmp to leave behind on SIGTERM)"

# --- -v says what happens ---
"$VBUSCTL" -v pub v.x a --count 3 2>"$TMP/v.log" || fail "pub -v"
grep -q "^vbusctl: connecting to unix:$SOCK$" "$TMP/v.log" || fail "pub -v: $(cat "$TMP/v.log")"
grep -q "^vbusctl: connected to unix:$SOCK in [0-9]* ms$" "$TMP/v.log" || fail "pub -v: $(cat "$TMP/v.log")"
grep -q "^vbusctl: published 3 messages (3 bytes) to v.x, all handed to the broker$" "$TMP/v.log" ||
        fail "pub -v: $(cat "$TMP/v.log")"
ok "pub -v: $(tr '\n' '|' <"$TMP/v.log")"
"$VBUSCTL" --verbose call t.v1.Echo/Echo hi >/dev/null 2>"$TMP/v.log" || fail "call -v"
grep -q "^vbusctl: calling t.v1.Echo/Echo with 2 bytes and 0 headers, deadline 5000 ms$" "$TMP/v.log" &&
        grep -q "^vbusctl: reply: ok, 2 bytes, after [0-9]* ms$" "$TMP/v.log" || fail "call -v: $(cat "$TMP/v.log")"
ok "call -v: $(tr '\n' '|' <"$TMP/v.log")"

# --- bash completion (dist/bash-completion/vbusctl) knows the new options and @FILE. The
# bash-completion package's _init_completion is replaced by the few lines it does here; the
# package itself is exercised by tests/pkg. ---
COMPLETION=$(cd "$(dirname "$0")/../.." && pwd)/dist/bash-completion/vbusctl
complete_line() {
        bash -c '
_init_completion() {
        words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; cur=${words[cword]}; prev=${words[cword - 1]}
}
compopt() { :; }
. "$1" || exit 1
shift
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
_vbusctl
echo "${COMPREPLY[*]}"' _ "$COMPLETION" "$@"
}
[ "$(complete_line vbusctl --v)" = "--version --verbose" ] || fail "completion of --v: '$(complete_line vbusctl --v)'"
[ "$(complete_line vbusctl call x.v1.Y/Z --r)" = "--raw" ] || fail "completion of call --r: '$(complete_line vbusctl call x.v1.Y/Z --r)'"
[ "$(complete_line vbusctl call x.v1.Y/Z "@$TMP/re")" = "@$TMP/req @$TMP/reply" ] ||
        fail "completion of call @FILE: '$(complete_line vbusctl call x.v1.Y/Z "@$TMP/re")'"
ok "bash completion: --v -> --version --verbose; call --r -> --raw; call @FILE -> files"
