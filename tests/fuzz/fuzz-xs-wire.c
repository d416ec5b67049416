/*
 * fuzz-xs-wire: the xenstore wire decoder and everything a request's payload goes through
 * before it reaches the tree: framing, argument splitting, path canonicalization and
 * permission parsing. A second half feeds the same bytes as a connection's input stream to
 * the whole server (as domain 1 and as domain 0), which must never crash or misbehave.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "xs-path.h"
#include "xs-perm.h"
#include "xs-server.h"
#include "xs-wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_payload(const uint8_t *p, size_t n)
{
        const char *argv[8];
        char out[XS_PATH_BUF];
        size_t n_args;
        const char *one;

        xs_wire_count_strings(p, n);
        if (xs_wire_get_args(p, n, argv, 8, &n_args) == 0) {
                for (size_t i = 0; i < n_args && i < 8; i++) {
                        XsPerm perm;

                        xs_path_canonicalize(3, false, argv[i], true, out, sizeof(out), NULL);
                        xs_path_canonicalize(0, true, argv[i], false, out, sizeof(out), NULL);
                        xs_perm_parse(argv[i], &perm);
                }
        }
        if (xs_wire_onearg(p, n, &one) == 0)
                xs_path_canonicalize(1, false, one, false, out, sizeof(out), NULL);
        xs_wire_error_from_name((const char *)p, n);
}

static void fuzz_server(const uint8_t *data, size_t size, bool as_dom0)
{
        static const XsServerOps ops = {0};
        XsServer *s;
        XsDomain *dom;
        XsConn *c;

        if (xs_server_new(&ops, NULL, &s) < 0)
                return;
        if (as_dom0) {
                dom = xs_server_domain_find(s, 0);
        } else if (xs_server_domain_create(s, "fuzz", &dom) < 0) {
                xs_server_free(s);
                return;
        }
        c = xs_server_conn_new(s, dom, NULL);
        while (c) {
                uint8_t *buf;
                size_t space, n, len;
                bool bad;

                xs_server_conn_rspace(c, &buf, &space);
                n = size < space ? size : space;
                memcpy(buf, data, n);
                data += n;
                size -= n;
                if (xs_server_conn_process(s, c, n) < 0)
                        break;
                /* Drain replies and go on with requests held back by the quota. */
                bad = false;
                while (!bad && xs_server_conn_out_peek(c, &len)) {
                        xs_server_conn_out_consume(c, len);
                        bad = xs_server_conn_process(s, c, 0) < 0;
                }
                if (bad || size == 0)
                        break;
        }
        xs_server_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        size_t off = 0;

        while (off < size) {
                XsHeader h;
                size_t msg;

                if (xs_wire_frame(data + off, size - off, &h, &msg) < 0)
                        break;
                xs_wire_type_name(h.type);
                fuzz_payload(data + off + XS_WIRE_HEADER_SIZE, h.len);
                off += msg;
        }
        fuzz_server(data, size, false);
        fuzz_server(data, size, true);
        return 0;
}
