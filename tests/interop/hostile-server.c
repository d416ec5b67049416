/*
 * hostile-server: a vchan server that breaks the protocol on purpose, over real grants,
 * event channels and xenstore (xensim's), to test that our client end (the broker's role)
 * reports a protocol violation instead of hanging, crashing or touching memory it should not.
 *
 *   hostile-server MODE CLIENT_DOMID PATH
 *
 * Setup modes (the client must refuse to connect):
 *   orders-10-20    orders (10, 20): the grant list (256 refs) runs into the ring at 1024
 *   orders-11-11    two in-page rings on the same bytes
 *   order-21        an order above 20
 *   grant-alias     an external ring page whose grant is the control page itself
 *   grant-dup       two ring pages with the same grant
 *   ringref-text    ring-ref = "12abc";  port-text: event-channel = " 7";  ringref-zero: "0"
 * Event mode (a valid vchan with 8 KiB rings; the client connects):
 *   notify-flood    once the client is live, notifies without pause for 20 s and never writes:
 *                   the broker takes every guest's events from one shared handle, and this one
 *                   must not starve the others (tests/hostile/notify-flood.sh)
 * Budget mode (a valid layout the broker must refuse by its orders alone):
 *   unmappable-20   orders (20, 20), and a grant list of 512 distinct refs that this domain never
 *                   granted: a client that tries to map the rings fails on them (EINVAL), so a
 *                   refusal for the orders shows that it mapped none (tests/hostile/ring-order.sh)
 * Runtime modes (after the client connected):
 *   bad-prod        sends "hello", then sets right.prod beyond a full ring and notifies
 *   bad-cons        sets left.cons beyond what the client produced and notifies
 *   scribble        rewrites random header bytes (counters, orders, live, notify) for a
 *                   while with an event after each, then clears srv_live
 * The server then sleeps until it is killed.
 */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

#include "vchan-ring.h"

static void die(const char *what)
{
        fprintf(stderr, "hostile-server: %s: %s\n", what, strerror(errno));
        exit(1);
}

static void publish(struct xs_handle *xs, const char *path, uint32_t self, uint32_t peer,
                    const char *ring_ref, const char *port)
{
        struct xs_permissions perms[2] = {{.id = self, .perms = XS_PERM_NONE},
                                          {.id = peer, .perms = XS_PERM_READ}};
        const char *keys[2] = {"ring-ref", "event-channel"}, *vals[2] = {ring_ref, port};

        for (int i = 0; i < 2; i++) {
                char k[1024];

                if ((size_t)snprintf(k, sizeof(k), "%s/%s", path, keys[i]) >= sizeof(k))
                        die("path too long");
                if (!xs_write(xs, XBT_NULL, k, vals[i], (unsigned)strlen(vals[i])) ||
                    !xs_set_permissions(xs, XBT_NULL, k, perms, 2))
                        die("xenstore write");
        }
}

/* A domain id in decimal, or exit. */
static uint32_t parse_domid(const char *s, const char *what)
{
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v > 0x7fef) {
                errno = EINVAL;
                die(what);
        }
        return (uint32_t)v;
}

static void put32(uint8_t *page, uint32_t off, uint32_t v)
{
        __atomic_store_n((uint32_t *)(void *)(page + off), v, __ATOMIC_SEQ_CST);
}

static uint32_t get32(const uint8_t *page, uint32_t off)
{
        return __atomic_load_n((const uint32_t *)(const void *)(page + off), __ATOMIC_SEQ_CST);
}

int main(int argc, char **argv)
{
        uint32_t grants[VBUS_VCHAN_MAX_GRANTS] = {0}, ring_ref = 0, self, peer;
        char ref_s[16], port_s[16], *v;
        xengntshr_handle *gs;
        xenevtchn_handle *ev;
        struct xs_handle *xs;
        VbusVchanLayout l;
        const char *mode, *path;
        uint8_t *page, *rings[2];
        unsigned len;
        int port;

        if (argc != 4)
                return 2;
        mode = argv[1];
        peer = parse_domid(argv[2], "PEER");
        path = argv[3];
        xs = xs_open(0);
        gs = xengntshr_open(NULL, 0);
        ev = xenevtchn_open(NULL, 0);
        if (!xs || !gs || !ev)
                die("open");
        v = xs_read(xs, XBT_NULL, "domid", &len);
        if (!v)
                die("domid");
        self = parse_domid(v, "domid");
        free(v);
        port = xenevtchn_bind_unbound_port(ev, peer);
        if (port < 0)
                die("bind");
        page = xengntshr_share_page_notify(gs, peer, &ring_ref, 1, VBUS_VCHAN_OFF_SRV_LIVE,
                                           (evtchn_port_t)port);
        if (!page)
                die("share");

        {
                /* 8 KiB rings where the client must accept the vchan (vchand's minimum). */
                uint32_t order = strcmp(mode, "notify-flood") == 0 ? 13 : 12;
                int pages = 1 << (order - 12);

                if (vbus__vchan_layout_from_orders(order, order, &l) < 0)
                        return 1;
                rings[0] = xengntshr_share_pages(gs, peer, pages, grants, 1);
                rings[1] = xengntshr_share_pages(gs, peer, pages, grants + pages, 1);
        }
        if (!rings[0] || !rings[1])
                die("share rings");
        vbus__vchan_page_init_server(page, &l, grants);

        if (strcmp(mode, "orders-10-20") == 0) {
                page[VBUS_VCHAN_OFF_LEFT_ORDER] = 10;
                page[VBUS_VCHAN_OFF_RIGHT_ORDER] = 20;
        } else if (strcmp(mode, "orders-11-11") == 0) {
                page[VBUS_VCHAN_OFF_LEFT_ORDER] = 11;
                page[VBUS_VCHAN_OFF_RIGHT_ORDER] = 11;
        } else if (strcmp(mode, "order-21") == 0) {
                page[VBUS_VCHAN_OFF_RIGHT_ORDER] = 21;
        } else if (strcmp(mode, "grant-alias") == 0) {
                put32(page, VBUS_VCHAN_OFF_GRANTS + 4, ring_ref);
        } else if (strcmp(mode, "grant-dup") == 0) {
                put32(page, VBUS_VCHAN_OFF_GRANTS + 4, grants[0]);
        } else if (strcmp(mode, "unmappable-20") == 0) {
                /* Refs far above any this domain handed out (they start at 8 and we hold 3). */
                page[VBUS_VCHAN_OFF_LEFT_ORDER] = 20;
                page[VBUS_VCHAN_OFF_RIGHT_ORDER] = 20;
                for (uint32_t i = 0; i < VBUS_VCHAN_MAX_GRANTS; i++)
                        put32(page, VBUS_VCHAN_OFF_GRANTS + 4 * i, 1000000u + i);
        }
        /* A number and at most 3 more characters: each fits in 16 bytes. */
        (void)snprintf(ref_s, sizeof(ref_s), "%u", ring_ref);
        (void)snprintf(port_s, sizeof(port_s), "%d", port);
        if (strcmp(mode, "ringref-text") == 0)
                (void)snprintf(ref_s, sizeof(ref_s), "%uabc", ring_ref);
        else if (strcmp(mode, "ringref-zero") == 0)
                (void)snprintf(ref_s, sizeof(ref_s), "0");
        else if (strcmp(mode, "port-text") == 0)
                (void)snprintf(port_s, sizeof(port_s), " %d", port);
        publish(xs, path, self, peer, ref_s, port_s);

        if (strncmp(mode, "bad-", 4) == 0 || strcmp(mode, "scribble") == 0 ||
            strcmp(mode, "notify-flood") == 0) {
                /* wait for the client */
                for (int i = 0; i < 400 && page[VBUS_VCHAN_OFF_CLI_LIVE] != 1; i++)
                        poll(NULL, 0, 25);
                if (page[VBUS_VCHAN_OFF_CLI_LIVE] != 1) {
                        fprintf(stderr, "hostile-server: no client\n");
                        return 1;
                }
        }
        if (strcmp(mode, "bad-prod") == 0) {
                /* an honest first message, then an impossible producer index */
                memcpy(rings[1], "hello", 5);
                put32(page, VBUS_VCHAN_OFF_RIGHT_PROD, 5);
                xenevtchn_notify(ev, (evtchn_port_t)port);
                poll(NULL, 0, 200);
                put32(page, VBUS_VCHAN_OFF_RIGHT_PROD,
                      get32(page, VBUS_VCHAN_OFF_RIGHT_CONS) + 4096 + 1);
                xenevtchn_notify(ev, (evtchn_port_t)port);
        } else if (strcmp(mode, "bad-cons") == 0) {
                poll(NULL, 0, 200);
                put32(page, VBUS_VCHAN_OFF_LEFT_CONS, get32(page, VBUS_VCHAN_OFF_LEFT_PROD) + 1);
                xenevtchn_notify(ev, (evtchn_port_t)port);
        } else if (strcmp(mode, "notify-flood") == 0) {
                struct timespec t0, t;
                unsigned long n = 0;

                clock_gettime(CLOCK_MONOTONIC, &t0);
                do {
                        for (int i = 0; i < 1000; i++, n++)
                                xenevtchn_notify(ev, (evtchn_port_t)port);
                        clock_gettime(CLOCK_MONOTONIC, &t);
                } while (t.tv_sec - t0.tv_sec < 20);
                printf("notified %lu times\n", n);
                (void)fflush(stdout);
        } else if (strcmp(mode, "scribble") == 0) {
                uint64_t s = (uint64_t)time(NULL) | 1;

                fprintf(stderr, "hostile-server: scribble seed %llu\n", (unsigned long long)s);
                for (int i = 0; i < 20000; i++) {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        __atomic_store_n(page + s % VBUS_VCHAN_OFF_GRANTS, (uint8_t)(s >> 32),
                                         __ATOMIC_RELAXED);
                        xenevtchn_notify(ev, (evtchn_port_t)port);
                }
                page[VBUS_VCHAN_OFF_SRV_LIVE] = 0;
                xenevtchn_notify(ev, (evtchn_port_t)port);
        }
        for (;;)
                poll(NULL, 0, 1000);
}
