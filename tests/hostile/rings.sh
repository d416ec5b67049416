#!/usr/bin/env bash
# Global budgets on what a guest's vchan costs dom0 (issue 11): max_ring_order (largest ring the
# broker maps) and max_grant_mappings (ring pages mapped at once, shared with blkback and
# netback). Honest guests with 64 KiB rings (33 pages each) fit; a guest offering 1 MiB rings is
# refused for max_ring_order, and one offering 256 KiB rings (129 pages, over its share of
# max_grant_mappings = 200 once the honest guests hold theirs) is refused too. Neither is ever
# connected; the honest guests lose nothing.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker "max_ring_order = 18" "max_grant_mappings = 200"
HONEST_RING=65536 honest_start
g=$(attacker big)
as_dom "$g" env "$HOSTILE" vchan:0 block-empty --seconds 5 >"$TMP/big.out" 2>&1 ||
        fail "attacker: $(cat "$TMP/big.out")"
# The broker maps the rings to read their size and lets go at once, before any frame is read:
# the guest sees its link closed (or never opened), and the broker never had a peer for it.
refused_rings() {
        case "$(tail -n 1 "$1")" in
        disconnected | "never connected") ;;
        *) return 1 ;;
        esac
        ! grep -q "peer dom$2: connected" "$TMP/broker.log"
}
refused_rings "$TMP/big.out" "$g(big)" || fail "1 MiB rings were accepted: $(cat "$TMP/big.out")"
grep -q "dom$g: refused: rings larger than max_ring_order" "$TMP/broker.log" ||
        fail "no refusal logged for the 1 MiB rings"
ok "1 MiB rings refused (max_ring_order = 18)"
g2=$(attacker many)
as_dom "$g2" env HOSTILE_RING=262144 "$HOSTILE" vchan:0 block-empty --seconds 5 \
        >"$TMP/many.out" 2>&1 || fail "attacker: $(cat "$TMP/many.out")"
refused_rings "$TMP/many.out" "$g2(many)" ||
        fail "256 KiB rings over the share were accepted: $(cat "$TMP/many.out")"
grep -q "dom$g2: refused: rings over its share of max_grant_mappings" "$TMP/broker.log" ||
        fail "no refusal logged for the grant mappings"
ok "256 KiB rings refused (over its share of max_grant_mappings = 200)"
rss_report
honest_finish
rss_check
only_dropped "no one"
