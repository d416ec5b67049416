#!/usr/bin/env bash
# The policy's denial matrix: every action (publish, subscribe, serve, call, admin, the import
# reservation and the bridge's call header) x allowed and denied x every kind of subject that
# runs on xensim (a guest by name, by domid, by toolstack tag, @anyvm, @local, @uid, @gid,
# @self, and the default deny), each probe printing the status the broker answered. A guest
# that makes its own tag key writable for itself (hostile toolstack setup) gets no tag. Key
# principals (@key:) need channel auth (the auth issue) and are covered by test-policy only.
. "$(dirname "$0")/lib.sh" "$1"
PROBE=$B/tests/integration/policy-probe
U1=4242 # a local user the policy names
U2=4343 # a local user it does not
G1=4545 # a group it names
xs_up
# shellcheck disable=SC2034 # g1 is read through ${!who} in expect()
g1=$(guest g1)
g2=$(guest g2)
g3=$(guest g3)
g4=$(guest g4)
g5=$(guest g5)
# Toolstack tags: written by dom0 under /local/domain/N, which the guest cannot write...
as_dom 0 xenstore-write "/local/domain/$g3/vbus-tags" "lab blue" || fail "tag g3"
# ...except where dom0 gave the guest write access: the broker must ignore such a key.
as_dom 0 xenstore-write "/local/domain/$g4/vbus-tags" "lab" || fail "tag g4"
as_dom 0 xenstore-chmod "/local/domain/$g4/vbus-tags" n0 b"$g4" || fail "chmod g4's tags"
# A guest cannot tag itself.
as_dom "$g5" xenstore-write "/local/domain/$g5/vbus-tags" "lab" 2>/dev/null &&
        fail "g5 could write its own vbus-tags"

mkdir -p "$TMP/policy"
cat >"$TMP/policy/50-matrix.policy" <<EOF
# One prefix per subject kind, for each action.
publish   p.name.>      g1           allow
publish   p.id.>        @id:$g2      allow
publish   p.tag.>       @tag:lab     allow
publish   p.any.>       @anyvm       allow
publish   p.local.>     @local       allow
publish   p.uid.>       @uid:$U1     allow
publish   p.gid.>       @gid:$G1     allow
publish   own.@self.>   @anyvm       allow
publish   first.secret  *            deny
publish   first.>       *            allow
subscribe s.name.>      g1           allow
subscribe s.id.>        @id:$g2      allow
subscribe s.tag.>       @tag:lab     allow
subscribe s.any.>       @anyvm       allow
subscribe s.uid.>       @uid:$U1     allow
serve     sname.Svc     g1           allow
serve     sid.Svc       @id:$g2      allow
serve     stag.Svc      @tag:lab     allow
serve     suid.Svc      @uid:$U1     allow
serve     @self.Svc     @anyvm       allow
call      cname.Svc     g1           allow
call      cmeth.Svc/Get @anyvm       allow
call      ctag.Svc/*    @tag:lab     allow
call      cuid.Svc      @uid:$U1     allow
admin     list          g1           allow
admin     list          @uid:$U1     allow
import    remote.>      @uid:$U1     allow
publish   >             @uid:$U2     allow
EOF
"$VCHAND" --check-policy "$TMP/policy" >"$TMP/check.out" 2>&1 || fail "check-policy: $(cat "$TMP/check.out")"
# Other users connect too: the socket is 0660 for root and group vbus by default.
printf 'socket_mode = 0666\n' >"$TMP/vchand.conf"
BROKER_POLICY=$TMP/policy broker_start --config "$TMP/vchand.conf"
chmod 0711 "$TMP"

n_checks=0
# expect WANT WHO ACTION NAME [HEADER]: WHO is gN (a guest, its domid in $gN) or uid:U[:G]
# (a local user).
expect() {
        local want=$1 who=$2 out
        shift 2
        case $who in
        g*)
                local dom=${!who}
                out=$(VBUS_URL=vchan:0 as_dom "$dom" "$PROBE" "$@" 2>&1)
                ;;
        uid:*)
                local ids=${who#uid:} u g
                u=${ids%%:*}
                g=${ids#*:}
                [ "$g" = "$ids" ] && g=$u
                out=$(VBUS_URL="unix:$SOCK" setpriv --reuid="$u" --regid="$g" --clear-groups \
                        "$PROBE" "$@" 2>&1)
                ;;
        esac
        [ "$out" = "$want" ] || fail "$who $*: got '$out', want '$want'"
        n_checks=$((n_checks + 1))
}
D=permission-denied

# publish: each subject kind allowed on its prefix, others denied; first match; default deny.
expect ok g1 pub p.name.x
expect $D g2 pub p.name.x
expect ok g2 pub p.id.x
expect $D g1 pub p.id.x
expect ok g3 pub p.tag.x
expect $D g4 pub p.tag.x
expect $D g5 pub p.tag.x
expect ok g5 pub p.any.x
expect $D uid:$U1 pub p.any.x
expect ok uid:$U2 pub p.local.x
expect $D g1 pub p.local.x
expect ok uid:$U1 pub p.uid.x
expect $D g1 pub p.uid.x
expect ok uid:$U2:$G1 pub p.gid.x
expect $D uid:$U1 pub p.gid.x
expect ok g5 pub own.g5.x
expect $D g5 pub own.g1.x
expect $D g1 pub first.secret
expect ok g1 pub first.public
expect $D g1 pub nothing.matches
expect $D uid:$U1 pub nothing.matches
ok "publish: name, domid, tag (a guest-writable tag ignored), @anyvm, @local, uid, gid, @self, first match, default deny"

# subscribe: the same subjects; a pattern wider than the rights is accepted only where some of
# it is allowed (and then filtered: policy-subscribe.sh), else refused.
expect ok g1 sub 's.name.>'
expect $D g2 sub 's.name.>'
expect ok g2 sub s.id.one
expect $D g3 sub s.id.one
expect ok g3 sub 's.tag.*'
expect $D g4 sub 's.tag.*'
expect ok g5 sub 's.any.>'
expect $D uid:$U1 sub 's.any.>'
expect ok uid:$U1 sub 's.uid.>'
expect $D uid:$U2 sub 's.uid.>'
expect $D uid:$U2 sub '>'
expect $D g1 sub 'nothing.>'
ok "subscribe: name, domid, tag, @anyvm, uid, default deny (a '>' without rights refused)"

# serve.
expect ok g1 serve sname.Svc
expect $D g2 serve sname.Svc
expect ok g2 serve sid.Svc
expect $D g1 serve sid.Svc
expect ok g3 serve stag.Svc
expect $D g4 serve stag.Svc
expect ok uid:$U1 serve suid.Svc
expect $D uid:$U2 serve suid.Svc
expect ok g5 serve g5.Svc
expect $D g5 serve g1.Svc
expect $D g1 serve nothing.Svc
ok "serve: name, domid, tag, uid, @self, default deny"

# call: allowed calls reach the service lookup (nobody serves them: not-found); denied ones
# are refused before it.
expect not-found g1 call cname.Svc/Any
expect $D g2 call cname.Svc/Any
expect not-found g2 call cmeth.Svc/Get
expect $D g2 call cmeth.Svc/Put
expect not-found g3 call ctag.Svc/Any
expect $D g4 call ctag.Svc/Any
expect not-found uid:$U1 call cuid.Svc/Any
expect $D uid:$U2 call cuid.Svc/Any
expect $D g1 call nothing.Svc/Any
ok "call: name, method, tag, uid, default deny"

# admin: the broker's own service.
expect ok g1 call vbus.v1.Broker/ListServices
expect $D g2 call vbus.v1.Broker/ListServices
expect ok uid:$U1 call vbus.v1.Broker/ListServices
expect $D uid:$U2 call vbus.v1.Broker/ListServices
# Describe is of class list too: allowed, the probe's empty request names no service (refused by
# the method, not the policy); denied, it never reaches the method.
expect invalid-argument g1 call vbus.v1.Broker/Describe
expect $D g2 call vbus.v1.Broker/Describe
ok "admin: list (ListServices, Describe) allowed by name and uid, denied to others"

# import: the reserved prefix is the bridge's (uid U1) even for a subject allowed every topic
# ('publish > @uid:U2 allow'), and so is the bridge's call header.
expect ok uid:$U1 pub remote.beta.t
expect $D uid:$U2 pub remote.beta.t
expect ok uid:$U2 pub remotely.t
expect $D g1 pub remote.beta.t
expect not-found uid:$U1 call cuid.Svc/Any vbus-bridge-origin=beta:dom5
expect $D g1 call cname.Svc/Any vbus-bridge-origin=beta:dom5
expect not-found g1 call cname.Svc/Any other-header=x
ok "import: the reserved prefix and the vbus-bridge-origin header only for the bridge's uid"

# Denials are logged with the rule that decided, and counted.
grep -q "policy: .*'first.secret'.*denied by $TMP/policy/50-matrix.policy:10 (OPEN refused)" "$TMP/broker.log" ||
        fail "no log line naming the deciding rule of first.secret"
grep -q "policy: .*'nothing.matches'.*default deny" "$TMP/broker.log" ||
        fail "no log line saying default deny"
grep -q "policy: publish 'remote.beta.t': reserved by $TMP/policy/50-matrix.policy:28" "$TMP/broker.log" ||
        fail "no log line naming the reservation of remote.beta.t"
ok "$n_checks probes answered as expected; denials logged with file:line or default deny"
