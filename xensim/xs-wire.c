/*
 * xs-wire: bounded framing and argument splitting for the xenstore wire protocol.
 * See xs-wire.h for the contract. This module has no state and allocates nothing, so the
 * fuzz target can drive it with arbitrary bytes.
 */
#include "xs-wire.h"

#include <errno.h>
#include <string.h>
#include <xen/io/xs_wire.h>

int xs_wire_frame(const uint8_t *buf, size_t len, XsHeader *ret_hdr, size_t *ret_size)
{
        XsHeader h;

        if (len < XS_WIRE_HEADER_SIZE)
                return -EAGAIN;
        memcpy(&h.type, buf + 0, 4);
        memcpy(&h.req_id, buf + 4, 4);
        memcpy(&h.tx_id, buf + 8, 4);
        memcpy(&h.len, buf + 12, 4);
        if (h.len > XS_PAYLOAD_MAX)
                return -EMSGSIZE;
        if ((uint64_t)len < (uint64_t)XS_WIRE_HEADER_SIZE + h.len)
                return -EAGAIN;
        *ret_hdr = h;
        *ret_size = XS_WIRE_HEADER_SIZE + (size_t)h.len;
        return 0;
}

void xs_wire_encode_header(const XsHeader *hdr, uint8_t *out)
{
        memcpy(out + 0, &hdr->type, 4);
        memcpy(out + 4, &hdr->req_id, 4);
        memcpy(out + 8, &hdr->tx_id, 4);
        memcpy(out + 12, &hdr->len, 4);
}

size_t xs_wire_count_strings(const uint8_t *p, size_t len)
{
        size_t n = 0;

        for (size_t i = 0; i < len; i++)
                if (p[i] == 0)
                        n++;
        return n;
}

int xs_wire_get_args(const uint8_t *p, size_t len, const char **argv, size_t n_max, size_t *ret_n)
{
        size_t n = 0, off = 0;

        if (n_max == 0)
                return -EINVAL;
        while (off < len) {
                const uint8_t *nul = memchr(p + off, 0, len - off);

                if (!nul)
                        break;
                if (n < n_max)
                        argv[n] = (const char *)(p + off);
                n++;
                off = (size_t)(nul - p) + 1;
        }
        *ret_n = n;
        return 0;
}

int xs_wire_onearg(const uint8_t *p, size_t len, const char **ret)
{
        if (len == 0 || p[len - 1] != 0 || memchr(p, 0, len) != p + len - 1)
                return -EINVAL;
        *ret = (const char *)p;
        return 0;
}

const char *xs_wire_error_name(int err)
{
        for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
                if (xsd_errors[i].errnum == err)
                        return xsd_errors[i].errstring;
        return "EINVAL";
}

int xs_wire_error_from_name(const char *name, size_t len)
{
        for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++) {
                size_t n = strlen(xsd_errors[i].errstring);

                if (len >= n && memcmp(name, xsd_errors[i].errstring, n) == 0 &&
                    (len == n || name[n] == 0))
                        return xsd_errors[i].errnum;
        }
        return 0;
}

const char *xs_wire_type_name(uint32_t type)
{
        static const char *const names[] = {
                [XS_CONTROL] = "CONTROL",
                [XS_DIRECTORY] = "DIRECTORY",
                [XS_READ] = "READ",
                [XS_GET_PERMS] = "GET_PERMS",
                [XS_WATCH] = "WATCH",
                [XS_UNWATCH] = "UNWATCH",
                [XS_TRANSACTION_START] = "TRANSACTION_START",
                [XS_TRANSACTION_END] = "TRANSACTION_END",
                [XS_INTRODUCE] = "INTRODUCE",
                [XS_RELEASE] = "RELEASE",
                [XS_GET_DOMAIN_PATH] = "GET_DOMAIN_PATH",
                [XS_WRITE] = "WRITE",
                [XS_MKDIR] = "MKDIR",
                [XS_RM] = "RM",
                [XS_SET_PERMS] = "SET_PERMS",
                [XS_WATCH_EVENT] = "WATCH_EVENT",
                [XS_ERROR] = "ERROR",
                [XS_IS_DOMAIN_INTRODUCED] = "IS_DOMAIN_INTRODUCED",
                [XS_RESUME] = "RESUME",
                [XS_SET_TARGET] = "SET_TARGET",
                [XS_RESET_WATCHES] = "RESET_WATCHES",
                [XS_DIRECTORY_PART] = "DIRECTORY_PART",
        };

        if (type < sizeof(names) / sizeof(names[0]) && names[type])
                return names[type];
        return "UNKNOWN";
}
