#!/usr/bin/env python3
"""A storage.v1.Store client in Python: put KEY VALUE | get KEY | delete KEY | scan [PREFIX].

The same calls as examples/kvstore/kvstore-client.c, so it talks to the C server or the Python
one (kvstore_server.py). Exit status: 0 ok, 1 no such key, 2 usage, 3 the call failed (the
status is printed).
"""

import asyncio
import sys

import kvstore_pb2 as pb

import vbus
import vbus.protobuf

STORE = pb.DESCRIPTOR.services_by_name["Store"]


async def main(argv: list) -> int:
    if not argv or argv[0] not in ("put", "get", "delete", "scan"):
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    async with vbus.connect() as bus:
        store = vbus.protobuf.Client(bus, STORE, timeout=5)
        try:
            if argv[0] == "put" and len(argv) == 3:
                r = await store.Put(pb.PutRequest(key=argv[1], value=argv[2].encode()))
                print("ok (replaced)" if r.replaced else "ok (new)")
            elif argv[0] == "get" and len(argv) == 2:
                r = await store.Get(pb.GetRequest(key=argv[1]))
                if not r.found:
                    print("not found")
                    return 1
                print(r.value.decode(errors="replace"))
            elif argv[0] == "delete" and len(argv) == 2:
                r = await store.Delete(pb.DeleteRequest(key=argv[1]))
                print("deleted" if r.found else "not found")
                return 0 if r.found else 1
            elif argv[0] == "scan" and len(argv) <= 2:
                n = 0
                async for e in store.Scan(pb.ScanRequest(prefix=argv[1] if len(argv) > 1 else "")):
                    print(f"{e.key}={e.value.decode(errors='replace')}")
                    n += 1
                print(f"{n} entries")
            else:
                print(__doc__.splitlines()[0], file=sys.stderr)
                return 2
        except vbus.Error as e:
            print(f"kvstore_client: {e}", file=sys.stderr)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
