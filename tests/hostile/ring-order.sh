#!/usr/bin/env bash
# max_ring_order is checked before any ring page is mapped (issue 11): a guest's orders are read
# from its control page, the one page the broker must map to learn them, and rings over the
# bound are refused without mapping them. The attacker (tests/interop/hostile-server
# unmappable-20) offers two 1 MiB rings whose 512 grant refs it never granted: a broker that
# mapped them first would fail on those refs and log the vchan as unusable ("cannot use the
# vchan"); a broker that checks first logs the order refusal and nothing else. The attacker
# alone is refused; the honest guests, with 64 KiB rings (order 16), lose nothing.
. "$(dirname "$0")/../integration/lib.sh" "$1"
. "$(dirname "$0")/hlib.sh"
xs_up
hostile_broker "max_ring_order = 16"
HONEST_RING=65536 honest_start
g=$(attacker unmappable)
bg as_dom "$g" "$B/tests/interop/hostile-server" unmappable-20 0 \
        "/local/domain/$g/data/vchan/0/vbus" >"$TMP/unmappable.out" 2>&1
wait_grep "dom$g: refused: rings larger than max_ring_order" "$TMP/broker.log" ||
        fail "no refusal of the 1 MiB rings logged for dom$g"
! grep -q "dom$g: cannot use the vchan" "$TMP/broker.log" ||
        fail "the broker tried to map the refused rings: $(grep "dom$g:" "$TMP/broker.log")"
! grep -q "peer dom$g.*connected" "$TMP/broker.log" || fail "the attacker became a peer"
ok "1 MiB rings refused by their orders, none of their grants mapped"
honest_finish
# Refused, its keys stay (they are its own): it is not retried until it writes new ones.
! grep -q "dom$g: cannot use the vchan" "$TMP/broker.log" || fail "the attacker was retried"
rss_check
only_dropped "no one"
