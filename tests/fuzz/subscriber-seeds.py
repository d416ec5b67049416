#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed inputs of fuzz-subscriber (tests/fuzz/fuzz-subscriber.c) into
tests/fuzz/corpus/subscriber/, one small script per path of the subscriber and publisher code.

An input is a config byte (CHARGE 0x01, BATCH 0x02, RETAIN 0x04, SMALL 0x08, ACCEPT 0x10,
and in the top three bits RECONNECT 0xA0 or SMALL_BUFFERS 0x40), then
steps [op][selector][argument][length][bytes]. Selector: low nibble the stream (0 the BLOCK
subscription, 1 the DROP one, 2 the publisher, in the order the client opened them; after a
reconnect 3 the publisher, 4 and 5 the subscriptions, opened again), top 3 bits
the Meta variant (0-2 good, from three publishers, 3 claims and key, 4 bad topic, 5 no topic,
6 no sender, 7 garbage).
Usage: tests/fuzz/subscriber-seeds.py [DIR]
"""
import os
import sys

CHARGE, BATCH, RETAIN, SMALL, ACCEPT = 0x01, 0x02, 0x04, 0x08, 0x10
RECONNECT, SMALL_BUFFERS = 0xA0, 0x40  # values of the top three bits
NOPROC = 0x80
DATA, META_DATA, BATCHF, END, RESET, ACCEPTF, REJECT, CREDIT, ACT, FRAGS, LINK, RAW = range(12)
BLOCK, DROP, PUB = 0, 1, 2
GOOD_ALL = CHARGE | BATCH | ACCEPT


def step(op, sel, arg, payload=b""):
    assert len(payload) < 256
    return bytes([op, sel, arg, len(payload)]) + payload


def recs(*pairs):
    """Record program: (kind, v) pairs (fuzz-subscriber.c put_records())."""
    return bytes(b for p in pairs for b in p)


def meta(variant):
    return variant << 5


SEEDS = {
    "batch-good": [GOOD_ALL, step(BATCHF, BLOCK, 0, recs((0, 8), (0, 16), (1, 0), (7, 7))),
                   step(BATCHF, DROP, 2, recs((0, 8), (0, 9)))],
    "batch-noncanonical": [GOOD_ALL, step(BATCHF, BLOCK, 0, recs((0, 8), (2, 3)))],
    "batch-five-byte-length": [GOOD_ALL, step(BATCHF, DROP, 0, recs((0, 8), (3, 1)))],
    "batch-past-frame": [GOOD_ALL, step(BATCHF, BLOCK, 0, recs((0, 8), (4, 1)))],
    "batch-credit": [GOOD_ALL] + [step(BATCHF, DROP, 0, recs(*[(7, 248)] * 15))] * 5,
    "batch-empty-records": [GOOD_ALL, step(BATCHF, DROP, 0, recs((1, 0), (1, 0), (1, 0)))],
    "batch-no-record": [GOOD_ALL, step(BATCHF, BLOCK, 0, b"")],
    "batch-over-window": [GOOD_ALL, step(BATCHF, BLOCK, 0, recs((6, 255)))],
    "batch-oversize-frame": [GOOD_ALL, step(BATCHF, DROP, 0, recs(*[(7, 255)] * 33))],
    "batch-no-meta": [GOOD_ALL, step(BATCHF, BLOCK, 0x40, recs((0, 8)))],
    "batch-garbage-meta": [GOOD_ALL, step(BATCHF, BLOCK | meta(7), 0, recs((0, 8)))],
    "batch-bad-topic": [GOOD_ALL, step(BATCHF, DROP | meta(4), 0, recs((0, 8)))],
    "batch-no-sender": [GOOD_ALL, step(BATCHF, BLOCK | meta(6), 0, recs((0, 8), (0, 6)))],
    "batch-claims-dropped": [GOOD_ALL, step(BATCHF, DROP | meta(3), 2, recs((0, 8), (1, 0))),
                             step(BATCHF, DROP, 0, recs((0, 9)))],
    "batch-retained-meta": [GOOD_ALL, step(BATCHF, BLOCK, 1, recs((0, 8), (0, 6)))],
    "batch-more-flag": [GOOD_ALL, step(BATCHF, BLOCK, 0x20, recs((0, 8)))],
    "batch-retain-flag": [GOOD_ALL | RETAIN, step(BATCHF, DROP, 0x10, recs((0, 8)))],
    "batch-not-negotiated": [CHARGE | ACCEPT, step(BATCHF, BLOCK, 0, recs((0, 8)))],
    "batch-without-charge": [BATCH | ACCEPT, step(BATCHF, BLOCK, 0, recs((0, 8)))],
    "batch-on-publisher": [GOOD_ALL, step(BATCHF, PUB, 0, recs((0, 8)))],
    "batch-before-accept": [CHARGE | BATCH, step(BATCHF, BLOCK, 0, recs((0, 8)))],
    "fragments": [GOOD_ALL, step(FRAGS, BLOCK, 0, bytes(range(40))),
                  step(FRAGS, DROP, 0x08, bytes(range(40))),
                  step(FRAGS, BLOCK, 0x0c, bytes(range(40)))],
    "fragments-batch-inside": [GOOD_ALL, step(FRAGS, BLOCK, 0x04, bytes(range(20)))],
    "fragments-more-after": [GOOD_ALL, step(FRAGS, DROP, 0x40, bytes(range(20))),
                             step(BATCHF, DROP, 0, recs((0, 8)))],
    "message-retained": [GOOD_ALL | RETAIN, step(META_DATA, BLOCK, 1, b"\x08v"),
                         step(META_DATA, DROP, 2, b"d"), step(META_DATA, DROP, 0x40, b"r")],
    "message-no-meta-flag": [GOOD_ALL, step(DATA, BLOCK, 0, b"\x05\x0a\x03t.a" + b"xy")],
    "callback-frees-self": [GOOD_ALL, step(BATCHF, BLOCK, 0, recs((0, 0), (0, 1), (0, 9))),
                            step(BATCHF, DROP, 0, recs((0, 0)))],
    "callback-frees-other": [GOOD_ALL, step(BATCHF, DROP, 0, recs((0, 2), (0, 9))),
                             step(BATCHF, BLOCK, 0, recs((0, 9)))],
    "callback-publishes": [GOOD_ALL, step(BATCHF, BLOCK, 0, recs((0, 3), (0, 11), (0, 4))),
                           step(RESET, PUB, 8, b"gone")],
    "callback-frees-publisher": [GOOD_ALL, step(ACT, 7, 0, b"abc") ,
                                 step(BATCHF, DROP, 0, recs((0, 6), (0, 3)))],
    "publish-batch-then-reset": [GOOD_ALL, step(ACT | NOPROC, 7, 0, b"abcdef"),
                                 step(CREDIT | NOPROC, PUB, 200, b"\x00\x00"),
                                 step(RESET, PUB, 7, b"full")],
    "publish-many-then-end": [GOOD_ALL, step(ACT | NOPROC, 20, 10, b"m" * 30),
                              step(END, PUB, 1, b"")],
    "publish-large-small-frame": [GOOD_ALL | SMALL, step(ACT, 40, 1, b"x" * 10),
                                  step(CREDIT, PUB, 255, b"\x00" * 10),
                                  step(ACT | NOPROC, 3, 0, b"s"), step(RESET, PUB, 2, b"")],
    "publish-before-accept": [CHARGE | BATCH | RETAIN, step(ACT, 255, 10, b"q" * 16),
                              step(ACCEPTF, PUB, 1, b"\x00" * 10), step(ACT, 200, 1, b""),
                              step(ACT, 1, 2, b"keep"), step(ACT, 0, 3, b""),
                              step(ACCEPTF, BLOCK, 4, b"\x00" * 16),
                              step(REJECT, DROP, 7, b"")],
    "callback-reenters": [GOOD_ALL, step(BATCHF, BLOCK, 0, recs((0, 15), (0, 23), (0, 14))),
                          step(BATCHF, DROP, 0, recs((0, 31), (0, 8))),
                          step(ACCEPTF, 3, 16, b"\x00" * 12),
                          step(ACCEPTF, 4, 16, b"\x00" * 12),
                          step(BATCHF, 4, 0, recs((0, 8), (0, 9))),
                          step(ACT, 0, 0, b"p")],
    "reconnect-gap": [GOOD_ALL | RECONNECT, step(BATCHF, BLOCK, 0, recs((0, 8))),
                      step(LINK, 0, 3, b""), step(BATCHF, 4, 0, recs((0, 8), (0, 9))),
                      step(META_DATA, 5, 0, b"\x08g")],
    "reconnect-after-violation": [GOOD_ALL | SMALL | RECONNECT, step(ACT, 250, 1, b"x" * 200),
                                  step(BATCHF, BLOCK, 0x40, recs((0, 8))),
                                  step(ACT, 3, 0, b"after"), step(CREDIT, 3, 9, b"\x00" * 9),
                                  step(FRAGS, 4, 0, bytes(range(30)))],
    "meta-cache-turnover": [GOOD_ALL] + [step(BATCHF, BLOCK | meta(v), 0, recs((0, 8), (0, 16)))
                                         for v in (0, 1, 2, 3, 6, 0, 1)],
    "link-full": [GOOD_ALL | SMALL_BUFFERS, step(ACT | NOPROC, 255, 1, b"x" * 255),
                  step(ACT | NOPROC, 1, 4, b""), step(ACT | NOPROC, 40, 10, b"m" * 8),
                  *[step(ACT | NOPROC, 1, 4, b"")] * 6, step(ACT | NOPROC, 3, 0, b"small"),
                  step(BATCHF, BLOCK, 0, recs((0, 8))),
                  step(CREDIT, 3, 9, b"\x00" * 9), step(ACT, 0, 7, b"")],
    "reopen-and-sync": [GOOD_ALL, step(ACT, 1, 5, b""), step(ACT, 0, 6, b""),
                        step(ACT, 1, 4, b""), step(ACT, 0, 7, b""), step(ACT, 0, 8, b""),
                        step(ACT, 0, 11, b""), step(ACCEPTF, 3, 16, b"\x00" * 12),
                        step(BATCHF, 3, 0, recs((0, 8))), step(ACT, 3, 9, b"w"),
                        step(LINK, 0, 1, b""), step(LINK, 0, 2, b"")],
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "subscriber")
    os.makedirs(out, exist_ok=True)
    for name, parts in SEEDS.items():
        data = bytes([parts[0]]) + b"".join(parts[1:])
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {out}")


if __name__ == "__main__":
    main()
