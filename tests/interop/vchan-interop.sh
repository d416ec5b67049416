#!/usr/bin/env bash
# Interop of our vchan (vchan-cat, libbus/vchan.c) with Xen's libxenvchan (xenvchan-peer,
# linked against Debian's libxenvchan.so), over a private xensim instance.
#
#   vchan-interop.sh BUILD_DIR transfer OURS_ROLE LEFT RIGHT
#       64 MiB of random data each way at once, ring sizes LEFT (client->server) and RIGHT,
#       our end in OURS_ROLE (server in the guest domain, or client in dom0); libxenvchan's
#       end closes first once it has everything, ours drains and exits 0; both checked by hash.
#   vchan-interop.sh BUILD_DIR close-first ours|theirs
#       the named side sends 4 MiB and closes as soon as it is committed (-q); the other side
#       must still deliver every byte, then report the end (exit 0).
#   vchan-interop.sh BUILD_DIR kill ours|theirs
#       the named side commits 256 KiB into a 1 MiB ring, which the other side cannot drain
#       (its stdout is held); then it is killed with SIGKILL. Once stdout is released the
#       survivor must deliver all 256 KiB and report the end (exit 0).
#   vchan-interop.sh BUILD_DIR destroy
#       as "kill theirs", but the whole guest domain is destroyed (xensim domain destroy:
#       its processes are SIGKILLed, @releaseDomain fires); our client in dom0 must still
#       deliver what the dead server had committed and report the end.
#   vchan-interop.sh BUILD_DIR reconnect
#       one persistent Xen vchan-socket-proxy server (in front of an upper-casing echo service)
#       and three of our clients one after the other, each closing after its echo: each must
#       bind the port again and map the same ring (vchan's reconnect rules).
#   vchan-interop.sh BUILD_DIR late-server
#       our client in the guest starts 2 s before libxenvchan's server in dom0 publishes (so
#       its reads fail with EACCES, not ENOENT, until then) and must wait, then transfer.
#   vchan-interop.sh BUILD_DIR hostile MODE
#       hostile-server (a server that breaks the protocol, see hostile-server.c) against our
#       client, the broker's role: setup modes must be refused as a protocol violation,
#       bad-prod/bad-cons reported as one, and scribble must end (exit 0 or 1) with no
#       sanitizer report and no hang.
#
# Fails (never skips) when xensim or a binary is missing. Every run has its own xensim
# directory, removed on exit, so runs can go in parallel.
set -euo pipefail

build=$1
mode=$2
shift 2
X=$build/xensim/xensim
CAT=$build/clients/vchan-cat/vchan-cat
PEER=$build/tests/interop/xenvchan-peer
HOSTILE=$build/tests/interop/hostile-server
for f in "$X" "$CAT" "$PEER" "$HOSTILE" "$build/xensim/lib/libxengnttab.so.1"; do
        if [ ! -x "$f" ] && [ ! -f "$f" ]; then
                echo "FAIL: $f is missing (xensim or the vchan tools were not built)" >&2
                exit 1
        fi
done

D=$(mktemp -d "${TMPDIR:-/tmp}/vchan-interop.XXXXXX")
pids=()
cleanup() {
        local rc=$?
        for p in "${pids[@]}"; do
                kill -9 "$p" 2>/dev/null || true
        done
        "$X" down --dir "$D/xs" >/dev/null 2>&1 || true
        if [ $rc -ne 0 ]; then
                for f in "$D"/*.err; do
                        [ -s "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
                done
        fi
        rm -rf "$D"
        exit $rc
}
trap cleanup EXIT INT TERM

mkdir "$D/xs"
"$X" up --dir "$D/xs" >/dev/null
guest=$("$X" domain create vchan-guest --dir "$D/xs")
path=/local/domain/$guest/data/vchan/0/interop
# exec: started with &, the subshell becomes xensim run, which execs the program, so $! is
# the program's own pid (the kill tests signal it directly).
run_guest() { exec "$X" run --dir "$D/xs" --domid "$guest" -- "$@"; }
run_dom0() { exec "$X" run --dir "$D/xs" --domid 0 -- "$@"; }

hash() { sha256sum "$1" | cut -d' ' -f1; }
check_same() {
        if [ "$(hash "$1")" != "$(hash "$2")" ]; then
                echo "FAIL: $3: $2 ($(stat -c %s "$2") bytes) differs from $1 ($(stat -c %s "$1") bytes)"
                exit 1
        fi
        echo "ok: $3 ($(stat -c %s "$2") bytes, sha256 match)"
}
wait_rc() {
        local rc=0
        wait "$1" || rc=$?
        if [ "$rc" -ne 0 ]; then
                echo "FAIL: $2 exited $rc"
                exit 1
        fi
}

case $mode in
transfer)
        ours=$1 left=$2 right=$3
        n=$((64 * 1024 * 1024))
        head -c $n /dev/urandom >"$D/srv.in"
        head -c $n /dev/urandom >"$D/cli.in"
        if [ "$ours" = server ]; then
                run_guest "$CAT" server 0 "$path" "$left" "$right" <"$D/srv.in" >"$D/srv.out" 2>"$D/srv.err" &
                srv=$!
                run_dom0 "$PEER" --expect $n client "$guest" "$path" <"$D/cli.in" >"$D/cli.out" 2>"$D/cli.err" &
                cli=$!
        else
                run_guest "$PEER" --expect $n server 0 "$path" "$left" "$right" <"$D/srv.in" >"$D/srv.out" 2>"$D/srv.err" &
                srv=$!
                run_dom0 "$CAT" client "$guest" "$path" <"$D/cli.in" >"$D/cli.out" 2>"$D/cli.err" &
                cli=$!
        fi
        pids=("$srv" "$cli")
        wait_rc "$srv" "server"
        wait_rc "$cli" "client"
        check_same "$D/cli.in" "$D/srv.out" "client->server, ours=$ours, rings $left/$right"
        check_same "$D/srv.in" "$D/cli.out" "server->client, ours=$ours, rings $left/$right"
        ;;
close-first)
        who=$1
        head -c $((4 * 1024 * 1024)) /dev/urandom >"$D/data"
        if [ "$who" = ours ]; then
                # ours: server, closes first; theirs: client, drains.
                run_guest "$CAT" -q server 0 "$path" 65536 65536 <"$D/data" >/dev/null 2>"$D/srv.err" &
                srv=$!
                run_dom0 "$PEER" client "$guest" "$path" </dev/null >"$D/out" 2>"$D/cli.err" &
                cli=$!
        else
                # theirs: client, closes first; ours: server, drains.
                run_guest "$CAT" server 0 "$path" 65536 65536 </dev/null >"$D/out" 2>"$D/srv.err" &
                srv=$!
                run_dom0 "$PEER" -q client "$guest" "$path" <"$D/data" >/dev/null 2>"$D/cli.err" &
                cli=$!
        fi
        pids=("$srv" "$cli")
        wait_rc "$srv" "server"
        wait_rc "$cli" "client"
        check_same "$D/data" "$D/out" "$who closed first, the other side delivered everything"
        ;;
kill | destroy)
        who=${1:-theirs}
        size=$((256 * 1024))
        head -c $size /dev/urandom >"$D/data"
        # The survivor's stdout goes through a gate that reads nothing until $D/go exists, so
        # what the killed side committed is still in the ring when it dies.
        gate() {
                while [ ! -e "$D/go" ]; do sleep 0.05; done
                cat
        }
        if [ "$who" = ours ]; then
                # ours: client in dom0, killed; theirs: server in the guest, survives.
                { rc=0; ("$X" run --dir "$D/xs" --domid "$guest" -- "$PEER" server 0 "$path" 1048576 1048576 </dev/null 2>"$D/srv.err") || rc=$?; echo $rc >"$D/rc"; } | gate >"$D/out" &
                surv=$!
                run_dom0 "$CAT" client "$guest" "$path" <"$D/data" >/dev/null 2>"$D/cli.err" &
                victim=$!
        else
                # theirs: server in the guest, killed; ours: client in dom0, survives.
                run_guest "$PEER" server 0 "$path" 1048576 1048576 <"$D/data" >/dev/null 2>"$D/srv.err" &
                victim=$!
                { rc=0; ("$X" run --dir "$D/xs" --domid 0 -- "$CAT" client "$guest" "$path" </dev/null 2>"$D/cli.err") || rc=$?; echo $rc >"$D/rc"; } | gate >"$D/out" &
                surv=$!
        fi
        pids=("$victim" "$surv")
        # Wait until the victim has read (and so committed) all of its stdin.
        for _ in $(seq 1 600); do
                pos=$(awk '/^pos:/ {print $2}' "/proc/$victim/fdinfo/0" 2>/dev/null || echo 0)
                [ "${pos:-0}" = "$size" ] && break
                sleep 0.05
        done
        if [ "${pos:-0}" != "$size" ]; then
                echo "FAIL: the $who side never read its input (at $pos of $size)"
                exit 1
        fi
        sleep 0.3 # read -> commit is immediate after the read; leave it a moment regardless
        if [ "$mode" = destroy ]; then
                "$X" domain destroy "$guest" --dir "$D/xs" >/dev/null
        else
                kill -9 "$victim"
        fi
        wait "$victim" 2>/dev/null || true
        touch "$D/go"
        wait "$surv" || true
        rc=$(cat "$D/rc" 2>/dev/null || echo missing)
        if [ "$rc" != 0 ]; then
                echo "FAIL: the survivor exited $rc after the $who side was killed"
                exit 1
        fi
        check_same "$D/data" "$D/out" "$who: $mode, the survivor delivered everything"
        ;;
reconnect)
        sock=$D/echo.sock
        python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(4)
while True:
    c, _ = s.accept()
    with open(sys.argv[2], "a") as log:
        log.write("accepted\n")
    with c:
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b.upper())
' "$sock" "$D/accepts" &
        pids=($!)
        for _ in $(seq 1 200); do [ -S "$sock" ] && break; sleep 0.05; done
        run_guest /usr/lib/xen-4.17/bin/vchan-socket-proxy -m server 0 "$path" "$sock" \
                2>"$D/srv.err" &
        pids+=($!)
        for i in 1 2 3; do
                mkfifo "$D/in$i"
                run_dom0 "$CAT" -q client "$guest" "$path" <"$D/in$i" >"$D/out$i" 2>"$D/cli$i.err" &
                cli=$!
                pids+=("$cli")
                exec 3>"$D/in$i"
                # vchan-socket-proxy's server acts on a client's connect event without looking
                # at the ring, so data that comes with the connect event would wait for the
                # next event: send only once it has connected to the echo service.
                for _ in $(seq 1 1200); do
                        [ "$(wc -l <"$D/accepts" 2>/dev/null || echo 0)" -ge $i ] && break
                        sleep 0.05
                done
                echo "hello $i" >&3
                # stdin stays open until the echo is back, then EOF makes -q close the vchan
                for _ in $(seq 1 1200); do
                        grep -q "HELLO $i" "$D/out$i" && break
                        sleep 0.05
                done
                exec 3>&-
                wait_rc "$cli" "client $i"
                if [ "$(cat "$D/out$i")" != "HELLO $i" ]; then
                        echo "FAIL: client $i got '$(cat "$D/out$i")'"
                        exit 1
                fi
                echo "ok: client $i of 3 connected to the same server and got its echo"
        done
        ;;
late-server)
        head -c $((1024 * 1024)) /dev/urandom >"$D/srv.in"
        head -c $((1024 * 1024)) /dev/urandom >"$D/cli.in"
        lpath=/local/domain/0/data/vchan/$guest/late
        run_guest "$CAT" client 0 "$lpath" <"$D/cli.in" >"$D/cli.out" 2>"$D/cli.err" &
        cli=$!
        pids=("$cli")
        sleep 2
        run_dom0 "$PEER" --expect $((1024 * 1024)) server "$guest" "$lpath" 65536 65536 \
                <"$D/srv.in" >"$D/srv.out" 2>"$D/srv.err" &
        srv=$!
        pids+=("$srv")
        wait_rc "$srv" "server"
        wait_rc "$cli" "client"
        check_same "$D/cli.in" "$D/srv.out" "late server: client->server"
        check_same "$D/srv.in" "$D/cli.out" "late server: server->client"
        ;;
hostile)
        hmode=$1
        in=/dev/null
        case $hmode in bad-cons | scribble) in=/dev/zero ;; esac
        run_guest "$HOSTILE" "$hmode" 0 "$path" >/dev/null 2>"$D/srv.err" &
        pids=($!)
        rc=0
        # a sanitizer report must not pass for "exit 1, protocol violation"
        ASAN_OPTIONS=exitcode=86 UBSAN_OPTIONS=exitcode=87 timeout 60 \
                "$X" run --dir "$D/xs" --domid 0 -- "$CAT" client "$guest" "$path" \
                <$in >"$D/out" 2>"$D/cli.err" || rc=$?
        if grep -q Sanitizer "$D/cli.err"; then
                echo "FAIL: $hmode: sanitizer report"
                exit 1
        fi
        case $hmode in
        scribble)
                if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
                        echo "FAIL: $hmode: vchan-cat exited $rc (124 = hung)"
                        exit 1
                fi
                echo "ok: $hmode: vchan-cat ended with $rc: $(head -c 200 "$D/cli.err")"
                ;;
        *)
                if [ $rc -ne 1 ] || ! grep -q 'protocol violation' "$D/cli.err"; then
                        echo "FAIL: $hmode: vchan-cat exited $rc, stderr: $(cat "$D/cli.err")"
                        exit 1
                fi
                if [ "$hmode" = bad-prod ] && [ "$(cat "$D/out")" != hello ]; then
                        echo "FAIL: bad-prod: the honest bytes before the violation were not delivered"
                        exit 1
                fi
                echo "ok: $hmode: $(cat "$D/cli.err")"
                ;;
        esac
        ;;
*)
        echo "usage: $0 BUILD_DIR transfer|close-first|kill|hostile ..." >&2
        exit 2
        ;;
esac
