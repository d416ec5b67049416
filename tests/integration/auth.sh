#!/usr/bin/env bash
# Channel auth (docs/protocol.md 3.1) end to end on xensim: a key proven by a guest over vchan
# and by local clients is stamped as the caller's key (the keyring's name, or key:<text>); a
# client pinning the broker's key refuses an impostor broker, a broker without a key and hostile
# brokers (rawauth --broker: malformed or stale auth fields) before it sends anything; hostile
# clients (rawauth: a replayed HELLO from an earlier link, a proof signed by another key, a
# truncated proof, a proof sent late, a short nonce, the broker's own proof reflected) are
# dropped with the right ERROR, and the honest server beside them keeps serving; auth = required
# refuses clients without a listed key; a policy naming the key (@key:<text>, a !key name)
# allows it and denies others; bad key-file modes are refused by vbusctl and vchand.
# Built without libsodium, it checks instead that a configuration asking for auth fails at start.
. "$(dirname "$0")/lib.sh" "$1"
RAW=$B/tests/integration/rawauth
K=$TMP/keys
mkdir -m 0700 "$K"

if ! "$VBUSCTL" keygen "$K/broker" >"$K/broker.out" 2>&1; then
        grep -q "built without channel auth" "$K/broker.out" || fail "keygen: $(cat "$K/broker.out")"
        printf 'auth = optional\n' >"$TMP/c.conf"
        "$VCHAND" -c "$TMP/c.conf" --no-xen --check-config >"$TMP/c.out" 2>&1 &&
                fail "a build without auth accepted auth = optional"
        grep -q "built without it" "$TMP/c.out" || fail "unclear error: $(cat "$TMP/c.out")"
        ok "built without channel auth: keygen and a configuration asking for auth fail clearly"
        exit 0
fi
for k in alice mallory impostor; do
        "$VBUSCTL" keygen "$K/$k" >/dev/null || fail "keygen $k"
done
[ "$(stat -c %a "$K/alice")" = 600 ] && [ "$(stat -c %a "$K/alice.pub")" = 644 ] ||
        fail "keygen modes: $(stat -c '%n %a' "$K"/alice*)"
"$VBUSCTL" keygen "$K/alice" >"$TMP/again.out" 2>&1 && fail "keygen overwrote a key"
grep -q "refusing to overwrite" "$TMP/again.out" || fail "keygen: $(cat "$TMP/again.out")"
ok "keygen: secret 0600, public 0644, never overwrites"
ALICE=$(cat "$K/alice.pub")
MALLORY=$(cat "$K/mallory.pub")
BROKER=$(cat "$K/broker.pub")
IMPOSTOR=$(cat "$K/impostor.pub")
printf '# test keyring\nalice %s\n\n' "$ALICE" >"$TMP/keyring"
printf 'auth_key = %s\nauth_keyring = %s\n' "$K/broker" "$TMP/keyring" >"$TMP/vchand.conf"

# vchand refuses a secret key others may read, and a keyring others may write.
cp "$K/broker" "$TMP/leaky.key"
chmod 0644 "$TMP/leaky.key"
printf 'auth_key = %s\n' "$TMP/leaky.key" >"$TMP/leaky.conf"
"$VCHAND" -c "$TMP/leaky.conf" --no-xen --check-config >"$TMP/leaky.out" 2>&1 &&
        fail "vchand accepted a world-readable secret key"
grep -q "readable by group or others" "$TMP/leaky.out" || fail "vchand: $(cat "$TMP/leaky.out")"
cp "$TMP/keyring" "$TMP/open.keyring"
chmod 0666 "$TMP/open.keyring"
printf 'auth_keyring = %s\n' "$TMP/open.keyring" >"$TMP/open.conf"
"$VCHAND" -c "$TMP/open.conf" --no-xen --check-config >"$TMP/open.out" 2>&1 &&
        fail "vchand accepted a world-writable keyring"
grep -q "writable by group or others" "$TMP/open.out" || fail "vchand: $(cat "$TMP/open.out")"
printf 'alice %s\nalice2 %s\n' "$ALICE" "$ALICE" >"$TMP/dup.keyring"
printf 'auth_keyring = %s\n' "$TMP/dup.keyring" >"$TMP/dup.conf"
"$VCHAND" -c "$TMP/dup.conf" --no-xen --check-config >"$TMP/dup.out" 2>&1 &&
        fail "vchand accepted a key listed twice"
grep -q "dup.keyring:2: this key is listed twice" "$TMP/dup.out" || fail "vchand: $(cat "$TMP/dup.out")"
ok "vchand refuses a readable secret key, a writable keyring, a key named twice (file:line)"

xs_up
G=$(guest authguest)
broker_start -c "$TMP/vchand.conf"
wait_grep "broker key $BROKER" "$TMP/broker.log" || fail "vchand did not log its public key"
export VBUS_URL="unix:$SOCK"
bg "$VBUSCTL" serve auth.v1.Who --exec 'printf "%s" "$VBUS_CALLER_KEY"' 2>"$TMP/serve.log"
wait_grep "# serving" "$TMP/serve.log" || fail "vbusctl serve did not start"

# who ARGS...: what the server saw as the caller's key (vbusctl call's output).
who() {
        "$VBUSCTL" "$@" call auth.v1.Who/Me x
}

out=$(as_dom "$G" env VBUS_URL=vchan:0 "$VBUSCTL" --key "$K/alice" --broker-key "$BROKER" \
        call auth.v1.Who/Me x 2>&1) || fail "guest with alice's key: $out"
[ "$out" = alice ] || fail "guest with alice's key was stamped '$out'"
ok "a guest over vchan proves alice's key, pinning the broker: the server sees 'alice'"
out=$(who --key "$K/mallory" 2>&1) || fail "mallory: $out"
[ "$out" = "key:$MALLORY" ] || fail "an unlisted key was stamped '$out'"
ok "a key not in the keyring is stamped key:<its text>"
out=$(VBUS_KEY_FILE=$K/alice who 2>&1) || fail "VBUS_KEY_FILE: $out"
[ "$out" = alice ] || fail "VBUS_KEY_FILE: stamped '$out'"
out=$(who 2>&1) || fail "no key: $out"
[ -z "$out" ] || fail "a client without a key was stamped '$out'"
ok "\$VBUS_KEY_FILE works as --key; no key: no key stamped"

# Through the guest agent (vchand --agent): a process proves its key end to end (the agent
# relays the HELLOs, capping max_frame and renumbering the session, and cannot forge a proof).
G2=$(guest authagent)
AGSOCK=$TMP/agent.sock
"$XS" run --domid "$G2" -- "$VCHAND" --agent --socket "$AGSOCK" --upstream vchan:0 \
        >"$TMP/agent.log" 2>&1 &
PIDS="$PIDS $!"
wait_grep "connected to the broker" "$TMP/agent.log" || fail "the agent did not connect"
out=$(as_dom "$G2" env VBUS_URL="unix:$AGSOCK" "$VBUSCTL" --key "$K/alice" --broker-key "$BROKER" \
        call auth.v1.Who/Me x 2>&1) || fail "alice through the agent: $out"
[ "$out" = alice ] || fail "alice through the agent was stamped '$out'"
out=$(as_dom "$G2" env VBUS_URL="unix:$AGSOCK" "$VBUSCTL" --broker-key "$IMPOSTOR" \
        call auth.v1.Who/Me x 2>&1) && fail "a wrong pin through the agent was accepted: $out"
echo "$out" | grep -q "did not prove" || fail "wrong pin through the agent: $out"
ok "through the guest agent: alice's key proven and stamped, the broker's key pinned"

# Pub/sub: Meta.sender carries the key of a guest's publisher too.
bg "$CHECK" sub 'auth.>' 5 --sender-key alice --ready "$TMP/sub.ready" >"$TMP/sub.out" 2>&1
p_sub=$!
wait_file "$TMP/sub.ready" || fail "subscriber not active"
as_dom "$G" env VBUS_URL=vchan:0 VBUS_KEY_FILE="$K/alice" "$CHECK" pub auth.t 5 64 \
        >"$TMP/pub.out" 2>&1 || fail "guest publisher with alice's key: $(cat "$TMP/pub.out")"
wait "$p_sub" || fail "subscriber: $(cat "$TMP/sub.out")"
ok "a guest's publications are stamped with its key (Meta.sender.key_name = alice)"

# Pinning: a wrong pin refuses the real broker; then a second broker with another key
# (an impostor on another socket) and one with no key are refused by a client pinning ours.
out=$(who --key "$K/alice" --broker-key "$IMPOSTOR" 2>&1) && fail "a wrong pin was accepted: $out"
echo "$out" | grep -q "did not prove" || fail "wrong pin: $out"
printf 'auth_key = %s\n' "$K/impostor" >"$TMP/impostor.conf"
bg "$VCHAND" --no-xen --policy open -c "$TMP/impostor.conf" --socket "$TMP/impostor.sock" >>"$TMP/impostor.log" 2>&1
wait_file "$TMP/impostor.sock" || fail "impostor broker did not start"
out=$(VBUS_URL=unix:$TMP/impostor.sock "$VBUSCTL" --key "$K/alice" --broker-key "$BROKER" \
        services 2>&1) && fail "the impostor was accepted: $out"
echo "$out" | grep -q "did not prove" || fail "impostor: $out"
grep -q "alice\|$ALICE" "$TMP/impostor.log" && fail "the impostor saw alice's proof"
VBUS_URL=unix:$TMP/impostor.sock "$VBUSCTL" --broker-key "$IMPOSTOR" services >/dev/null 2>&1 ||
        fail "pinning the impostor's own key failed"
bg "$VCHAND" --no-xen --policy open --socket "$TMP/nokey.sock" >>"$TMP/nokey.log" 2>&1
wait_file "$TMP/nokey.sock" || fail "broker without a key did not start"
out=$(VBUS_URL=unix:$TMP/nokey.sock "$VBUSCTL" --broker-key "$BROKER" services 2>&1) &&
        fail "a broker without a key was accepted by a pinning client: $out"
echo "$out" | grep -q "Permission denied" || fail "no-key broker: $out"
ok "a pinning client refuses a broker with another key and one with none (-EACCES), before sending its proof"

# Hostile brokers against a client that pins ours: a HELLO without AUTH, a short nonce, no proof,
# a truncated one, garbage, a valid proof of another key, our key's proof for another link. The
# client refuses each (-EACCES) and sends nothing after its HELLO: no proof, no OPEN.
for mode in noauth shortnonce noproof shortproof garbage otherkey stale; do
        rm -f "$TMP/hostile.sock"
        "$RAW" --broker "$TMP/hostile.sock" "$K/broker" $mode >"$TMP/hb-$mode.out" 2>&1 &
        hb=$!
        PIDS="$PIDS $hb"
        wait_file "$TMP/hostile.sock" || fail "hostile broker $mode did not start"
        out=$(VBUS_URL=unix:$TMP/hostile.sock "$VBUSCTL" --key "$K/alice" --broker-key "$BROKER" \
                services 2>&1) && fail "hostile broker $mode was accepted: $out"
        echo "$out" | grep -q "did not prove" || fail "hostile broker $mode: $out"
        wait "$hb" || fail "hostile broker $mode: $(cat "$TMP/hb-$mode.out")"
done
ok "a pinning client refuses 7 hostile broker HELLOs (-EACCES) and sends nothing after its own"

# Hostile clients, each dropped with its own ERROR; the honest server is not disturbed.
"$RAW" "$SOCK" "$K/alice" good "$TMP/rec" >"$TMP/raw-good.out" 2>&1 ||
        fail "rawauth good: $(cat "$TMP/raw-good.out")"
for mode in replay wrongkey truncated late badnonce reflect; do
        "$RAW" "$SOCK" "$K/alice" $mode "$TMP/rec" >"$TMP/raw-$mode.out" 2>&1 ||
                fail "rawauth $mode: $(cat "$TMP/raw-$mode.out")"
        ok "rawauth $mode: $(grep -m1 broker: "$TMP/raw-$mode.out")"
done
grep -q "does not verify (a wrong key, or a HELLO replayed" "$TMP/raw-replay.out" ||
        fail "replay: $(cat "$TMP/raw-replay.out")"
out=$(who --key "$K/alice" 2>&1) || fail "the server after the hostile clients: $out"
[ "$out" = alice ] || fail "after the hostile clients: '$out'"
ok "the honest server and broker serve on after the hostile clients"

# Policy names the key: only alice may call auth.v1.Who, by her .pub text in one rule and by a
# !key name in another service's rule; mallory and a client without a key are denied.
mkdir "$TMP/policy.d"
printf '!key alice-key %s\nserve auth.v1.* * allow\ncall auth.v1.Who @key:%s allow\ncall auth.v1.Too @key:alice-key allow\n' \
        "$ALICE" "$ALICE" >"$TMP/policy.d/50-auth.policy"
"$VCHAND" --check-policy "$TMP/policy.d" >"$TMP/check-policy.out" 2>&1 ||
        fail "policy: $(cat "$TMP/check-policy.out")"
bg "$VCHAND" --no-xen --policy "$TMP/policy.d" -c "$TMP/vchand.conf" --socket "$TMP/policy.sock" \
        >>"$TMP/policy-broker.log" 2>&1
wait_file "$TMP/policy.sock" || fail "policy broker did not start"
for svc in Who Too; do
        VBUS_URL=unix:$TMP/policy.sock bg "$VBUSCTL" serve auth.v1.$svc \
                --exec 'printf "%s" "$VBUS_CALLER_KEY"' 2>"$TMP/serve-$svc.log"
        wait_grep "# serving" "$TMP/serve-$svc.log" ||
                fail "serve $svc under policy: $(cat "$TMP/serve-$svc.log")"
done
for svc in Who Too; do
        export VBUS_URL=unix:$TMP/policy.sock
        out=$("$VBUSCTL" --key "$K/alice" call auth.v1.$svc/Me x 2>&1) ||
                fail "policy: alice denied $svc: $out"
        [ "$out" = alice ] || fail "policy: alice's call to $svc stamped '$out'"
        out=$("$VBUSCTL" --key "$K/mallory" call auth.v1.$svc/Me x 2>&1) &&
                fail "policy: mallory allowed $svc: $out"
        echo "$out" | grep -q "permission-denied" || fail "policy: mallory on $svc: $out"
        out=$("$VBUSCTL" call auth.v1.$svc/Me x 2>&1) &&
                fail "policy: a client without a key allowed $svc: $out"
        echo "$out" | grep -q "permission-denied" || fail "policy: no key on $svc: $out"
done
export VBUS_URL="unix:$SOCK"
ok "policy names alice's key (@key:<text>, @key:<!key name>): alice may call, mallory and no key are denied"

# A key file others may read is refused by libvbus before it connects.
cp "$K/alice" "$TMP/alice-leaky"
chmod 0644 "$TMP/alice-leaky"
out=$(who --key "$TMP/alice-leaky" 2>&1) && fail "a world-readable key was used: $out"
echo "$out" | grep -q "group or others may read" || fail "leaky key: $out"
ok "vbusctl refuses a secret key others may read"

# auth = required: only keys of the keyring.
printf 'auth = required\nauth_key = %s\nauth_keyring = %s\n' "$K/broker" "$TMP/keyring" \
        >"$TMP/required.conf"
bg "$VCHAND" --no-xen --policy open -c "$TMP/required.conf" --socket "$TMP/required.sock" \
        >>"$TMP/required.log" 2>&1
REQUIRED_PID=$!
wait_file "$TMP/required.sock" || fail "required broker did not start"
export VBUS_URL="unix:$TMP/required.sock"
out=$("$VBUSCTL" services 2>&1) && fail "required: a client without a key got in: $out"
echo "$out" | grep -q "refused this connection's key, or wants one" || fail "required, no key: $out"
out=$("$VBUSCTL" --key "$K/mallory" services 2>&1) && fail "required: mallory got in: $out"
echo "$out" | grep -q "Operation not permitted" || fail "required, mallory: $out"
wait_grep "not in the broker's keyring" "$TMP/required.log" || fail "required: no log of the refusal"
"$VBUSCTL" --key "$K/alice" --broker-key "$BROKER" services >"$TMP/req-alice.out" 2>&1 ||
        fail "required: alice was refused: $(cat "$TMP/req-alice.out")"
ok "auth = required: no key and an unlisted key refused (-EPERM), alice admitted"

# The keyring file is read again on SIGHUP: keys added are admitted, a link whose key was
# removed is dropped with PERMISSION_DENIED, a keyring with an error changes nothing.
"$VBUSCTL" --key "$K/alice" sub keyring.t >"$TMP/alice-sub.out" 2>&1 &
ALICE_SUB=$!
PIDS="$PIDS $ALICE_SUB"
printf 'alice %s\nmallory %s\n' "$ALICE" "$MALLORY" >"$TMP/keyring.new"
chmod 0644 "$TMP/keyring.new"
mv "$TMP/keyring.new" "$TMP/keyring"
kill -HUP "$REQUIRED_PID"
wait_grep "keyring reloaded: 2 keys" "$TMP/required.log" || fail "no keyring reload logged"
"$VBUSCTL" --key "$K/mallory" services >"$TMP/req-mallory.out" 2>&1 ||
        fail "mallory, added to the keyring, was refused: $(cat "$TMP/req-mallory.out")"
printf 'mallory %s\nbroken line\n' "$MALLORY" >"$TMP/keyring.new"
mv "$TMP/keyring.new" "$TMP/keyring"
kill -HUP "$REQUIRED_PID"
wait_grep "keyring reload failed, the previous keys stay in force: auth_keyring $TMP/keyring:2" \
        "$TMP/required.log" || fail "a broken keyring: no error with file:line"
kill -0 "$ALICE_SUB" 2>/dev/null || fail "alice's subscriber left after a broken keyring"
printf 'mallory %s\n' "$MALLORY" >"$TMP/keyring.new"
mv "$TMP/keyring.new" "$TMP/keyring"
kill -HUP "$REQUIRED_PID"
wait_grep "keyring reloaded: 1 keys, 0 links renamed, 1 dropped" "$TMP/required.log" ||
        fail "alice's link not dropped: $(tail -3 "$TMP/required.log")"
wait_grep "its key was removed from the broker's keyring" "$TMP/required.log" ||
        fail "the drop of alice's link is not logged with its reason"
for _ in $(seq 1 100); do
        kill -0 "$ALICE_SUB" 2>/dev/null || break
        sleep 0.1
done
kill -0 "$ALICE_SUB" 2>/dev/null && fail "alice's subscriber still runs after its key was removed"
wait "$ALICE_SUB" && fail "alice's subscriber exited 0 when its key was removed"
grep -q "the broker refused this connection's key" "$TMP/alice-sub.out" ||
        fail "alice's subscriber was not told why: $(cat "$TMP/alice-sub.out")"
out=$("$VBUSCTL" --key "$K/alice" services 2>&1) && fail "alice got in after removal: $out"
"$VBUSCTL" --key "$K/mallory" services >/dev/null 2>&1 || fail "mallory refused after the reload"
ok "SIGHUP reads the keyring again: a key added is admitted, a removed key's link is dropped and told why, a broken file keeps the keys"
