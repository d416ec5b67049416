/*
 * xensim-hv-tool: a line-driven program on the Xen grant table and event channel APIs, for
 * the xensim tests. It reads one command per line on stdin and answers one line on stdout:
 * "ok [values...]" or "err <ERRNO-NAME>". Run it as a process of a domain with `xensim run`;
 * it links against whichever libxengnttab/libxenevtchn/libxenctrl the loader finds, so the
 * same commands work on real Xen.
 *
 * Commands (ID names a mapping made by this process; N, PORT, REF, OFF are decimal):
 *   unbound DOM            bind_unbound_port            -> ok PORT
 *   bind DOM PORT          bind_interdomain             -> ok PORT
 *   unbind PORT | notify PORT | unmask PORT
 *   pending                block until an event          -> ok PORT
 *   poll MS                is an event readable?         -> ok ready | ok idle
 *   sync                   a request on the evtchn handle: once answered, the daemon has
 *                          handled every notify/unmask this process sent before it
 *   drain MS               count events until idle for MS, unmasking each -> ok COUNT
 *   share DOM N rw|ro [OFF PORT]    share_pages / share_page_notify -> ok ID REF...
 *   map DOM rw|ro [notify OFF PORT] REF...  map_domain_grant_refs / map_grant_ref_notify
 *                          -> ok ID
 *   mapx rw|ro DOM:REF...  map_grant_refs (several granting domains in one range) -> ok ID
 *   unmap ID | unshare ID
 *   peek ID OFFSET         -> ok BYTE       poke ID OFFSET BYTE
 *   fill ID SEED           write a pattern over the whole mapping
 *   check ID SEED          -> ok same | ok differ
 *   status DOM PORT        xc_evtchn_status -> ok closed|unbound DOM|interdomain DOM PORT
 *   domexists DOM          xc_domain_getinfo -> ok yes | ok no
 *   exit                   leave without unmapping anything (like a crash)
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>

#define TOOL_MAX_MAPS 4096
#define TOOL_MAX_ARGS 1100

typedef struct Mapping {
        uint8_t *addr;
        uint32_t n_pages;
        int shared; /* 1: from share, 0: from map */
} Mapping;

typedef struct Tool {
        xenevtchn_handle *xce;
        xengnttab_handle *xgt;
        xengntshr_handle *xgs;
        xc_interface *xch;
        Mapping maps[TOOL_MAX_MAPS];
        size_t n_maps;
} Tool;

/* A whole decimal number in 1..max, or -1. */
static int parse_count(const char *s, int max)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < 1 || v > max)
                return -1;
        return (int)v;
}

static void answer_err(int e)
{
        const char *n = strerrorname_np(e);

        printf("err %s\n", n ? n : "UNKNOWN");
}

static int tool_evtchn(Tool *t)
{
        if (!t->xce)
                t->xce = xenevtchn_open(NULL, 0);
        return t->xce ? 0 : -errno;
}

static int tool_gnttab(Tool *t)
{
        if (!t->xgt)
                t->xgt = xengnttab_open(NULL, 0);
        return t->xgt ? 0 : -errno;
}

static int tool_gntshr(Tool *t)
{
        if (!t->xgs)
                t->xgs = xengntshr_open(NULL, 0);
        return t->xgs ? 0 : -errno;
}

static int tool_xc(Tool *t)
{
        if (!t->xch)
                t->xch = xc_interface_open(NULL, NULL, 0);
        return t->xch ? 0 : -errno;
}

static Mapping *tool_mapping(Tool *t, const char *id)
{
        unsigned long i = strtoul(id, NULL, 10);

        if (i >= t->n_maps || !t->maps[i].addr)
                return NULL;
        return &t->maps[i];
}

static size_t tool_add(Tool *t, void *addr, uint32_t n_pages, int shared)
{
        t->maps[t->n_maps] = (Mapping){.addr = addr, .n_pages = n_pages, .shared = shared};
        return t->n_maps++;
}

static uint8_t pattern(unsigned long seed, size_t i)
{
        return (uint8_t)((seed * 131u + i * 7u + (i >> 12)) & 0xff);
}

static int cmd_poll(Tool *t, int ms)
{
        struct pollfd p = {.fd = xenevtchn_fd(t->xce), .events = POLLIN};

        return poll(&p, 1, ms);
}

/* Runs one command; returns 1 to exit. */
static int tool_run(Tool *t, int argc, char **argv)
{
        const char *c = argv[0];
        int r;

        if (!strcmp(c, "exit"))
                return 1;
        if (!strcmp(c, "sync")) {
                r = tool_evtchn(t);
                if (r < 0) {
                        answer_err(-r);
                        return 0;
                }
                r = xenevtchn_bind_unbound_port(t->xce, 0);
                if (r < 0 || xenevtchn_unbind(t->xce, (uint32_t)r) < 0)
                        answer_err(errno);
                else
                        printf("ok\n");
                return 0;
        }
        if (!strcmp(c, "unbound") || !strcmp(c, "bind") || !strcmp(c, "unbind") ||
            !strcmp(c, "notify") || !strcmp(c, "unmask") || !strcmp(c, "pending") ||
            !strcmp(c, "poll") || !strcmp(c, "drain")) {
                long a = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
                long b = argc > 2 ? strtol(argv[2], NULL, 10) : 0;

                r = tool_evtchn(t);
                if (r < 0) {
                        answer_err(-r);
                        return 0;
                }
                if (!strcmp(c, "unbound"))
                        r = xenevtchn_bind_unbound_port(t->xce, (uint32_t)a);
                else if (!strcmp(c, "bind"))
                        r = xenevtchn_bind_interdomain(t->xce, (uint32_t)a, (uint32_t)b);
                else if (!strcmp(c, "unbind"))
                        r = xenevtchn_unbind(t->xce, (uint32_t)a);
                else if (!strcmp(c, "notify"))
                        r = xenevtchn_notify(t->xce, (uint32_t)a);
                else if (!strcmp(c, "unmask"))
                        r = xenevtchn_unmask(t->xce, (uint32_t)a);
                else if (!strcmp(c, "pending"))
                        r = xenevtchn_pending(t->xce);
                else if (!strcmp(c, "poll")) {
                        r = cmd_poll(t, (int)a);
                        if (r >= 0) {
                                printf("ok %s\n", r ? "ready" : "idle");
                                return 0;
                        }
                } else {
                        long n = 0;

                        while ((r = cmd_poll(t, (int)a)) > 0) {
                                int p = xenevtchn_pending(t->xce);

                                if (p < 0)
                                        break;
                                xenevtchn_unmask(t->xce, (uint32_t)p);
                                n++;
                        }
                        if (r >= 0) {
                                printf("ok %ld\n", n);
                                return 0;
                        }
                }
                if (r < 0)
                        answer_err(errno);
                else if (!strcmp(c, "unbound") || !strcmp(c, "bind") || !strcmp(c, "pending"))
                        printf("ok %d\n", r);
                else
                        printf("ok\n");
                return 0;
        }
        if (!strcmp(c, "share") && (argc == 4 || argc == 6)) {
                uint32_t dom = (uint32_t)strtoul(argv[1], NULL, 10);
                int n = parse_count(argv[2], 4096), rw = !strcmp(argv[3], "rw");
                uint32_t *refs;
                void *addr;

                r = tool_gntshr(t);
                if (r < 0 || t->n_maps >= TOOL_MAX_MAPS || n < 0) {
                        answer_err(r < 0 ? -r : EINVAL);
                        return 0;
                }
                refs = calloc((size_t)n, sizeof(*refs));
                if (!refs) {
                        answer_err(ENOMEM);
                        return 0;
                }
                if (argc == 6)
                        addr = xengntshr_share_page_notify(t->xgs, dom, refs, rw,
                                                           (uint32_t)strtoul(argv[4], NULL, 10),
                                                           (uint32_t)strtoul(argv[5], NULL, 10));
                else
                        addr = xengntshr_share_pages(t->xgs, dom, n, refs, rw);
                if (!addr) {
                        answer_err(errno);
                } else {
                        printf("ok %zu", tool_add(t, addr, (uint32_t)n, 1));
                        for (int i = 0; i < n; i++)
                                printf(" %u", refs[i]);
                        printf("\n");
                }
                free(refs);
                return 0;
        }
        if (!strcmp(c, "map") && argc >= 4) {
                uint32_t dom = (uint32_t)strtoul(argv[1], NULL, 10);
                int prot = !strcmp(argv[2], "rw") ? PROT_READ | PROT_WRITE : PROT_READ;
                int notify = argc >= 6 && !strcmp(argv[3], "notify");
                int first = notify ? 6 : 3, n = argc - first;
                uint32_t refs[TOOL_MAX_ARGS];
                void *addr;

                r = tool_gnttab(t);
                if (r < 0 || t->n_maps >= TOOL_MAX_MAPS || n <= 0) {
                        answer_err(r < 0 ? -r : EINVAL);
                        return 0;
                }
                for (int i = 0; i < n; i++)
                        refs[i] = (uint32_t)strtoul(argv[first + i], NULL, 10);
                if (notify)
                        addr = xengnttab_map_grant_ref_notify(t->xgt, dom, refs[0], prot,
                                                              (uint32_t)strtoul(argv[4], NULL, 10),
                                                              (uint32_t)strtoul(argv[5], NULL, 10));
                else
                        addr = xengnttab_map_domain_grant_refs(t->xgt, (uint32_t)n, dom, refs,
                                                               prot);
                if (!addr)
                        answer_err(errno);
                else
                        printf("ok %zu\n", tool_add(t, addr, (uint32_t)n, 0));
                return 0;
        }
        if (!strcmp(c, "mapx") && argc >= 3) {
                int prot = !strcmp(argv[1], "rw") ? PROT_READ | PROT_WRITE : PROT_READ;
                uint32_t n = (uint32_t)argc - 2u;
                uint32_t doms[TOOL_MAX_ARGS], refs[TOOL_MAX_ARGS];
                void *addr;

                r = tool_gnttab(t);
                if (r < 0 || t->n_maps >= TOOL_MAX_MAPS) {
                        answer_err(r < 0 ? -r : EINVAL);
                        return 0;
                }
                for (uint32_t i = 0; i < n; i++) {
                        char *colon = strchr(argv[2 + i], ':');

                        if (!colon) {
                                answer_err(EINVAL);
                                return 0;
                        }
                        doms[i] = (uint32_t)strtoul(argv[2 + i], NULL, 10);
                        refs[i] = (uint32_t)strtoul(colon + 1, NULL, 10);
                }
                addr = xengnttab_map_grant_refs(t->xgt, n, doms, refs, prot);
                if (!addr)
                        answer_err(errno);
                else
                        printf("ok %zu\n", tool_add(t, addr, n, 0));
                return 0;
        }
        if ((!strcmp(c, "unmap") || !strcmp(c, "unshare")) && argc == 2) {
                Mapping *m = tool_mapping(t, argv[1]);

                if (!m) {
                        answer_err(EINVAL);
                        return 0;
                }
                r = m->shared ? xengntshr_unshare(t->xgs, m->addr, m->n_pages)
                              : xengnttab_unmap(t->xgt, m->addr, m->n_pages);
                if (r < 0) {
                        answer_err(errno);
                        return 0;
                }
                m->addr = NULL;
                printf("ok\n");
                return 0;
        }
        if ((!strcmp(c, "peek") || !strcmp(c, "poke") || !strcmp(c, "fill") ||
             !strcmp(c, "check")) &&
            argc >= 3) {
                Mapping *m = tool_mapping(t, argv[1]);
                size_t size, off = strtoul(argv[2], NULL, 10);

                if (!m) {
                        answer_err(EINVAL);
                        return 0;
                }
                size = (size_t)m->n_pages * 4096u;
                if (!strcmp(c, "fill") || !strcmp(c, "check")) {
                        int same = 1;

                        for (size_t i = 0; i < size; i++) {
                                if (c[0] == 'f')
                                        m->addr[i] = pattern(off, i);
                                else if (m->addr[i] != pattern(off, i))
                                        same = 0;
                        }
                        if (c[0] == 'f')
                                printf("ok\n");
                        else
                                printf("ok %s\n", same ? "same" : "differ");
                        return 0;
                }
                if (off >= size) {
                        answer_err(EINVAL);
                        return 0;
                }
                if (!strcmp(c, "peek")) {
                        printf("ok %u\n", m->addr[off]);
                } else if (argc == 4) {
                        m->addr[off] = (uint8_t)strtoul(argv[3], NULL, 10);
                        printf("ok\n");
                } else {
                        answer_err(EINVAL);
                }
                return 0;
        }
        if (!strcmp(c, "status") && argc == 3) {
                xc_evtchn_status_t st = {0};

                r = tool_xc(t);
                if (r < 0) {
                        answer_err(-r);
                        return 0;
                }
                st.dom = (domid_t)strtoul(argv[1], NULL, 10);
                st.port = (evtchn_port_t)strtoul(argv[2], NULL, 10);
                if (xc_evtchn_status(t->xch, &st) < 0)
                        answer_err(errno);
                else if (st.status == EVTCHNSTAT_unbound)
                        printf("ok unbound %u\n", st.u.unbound.dom);
                else if (st.status == EVTCHNSTAT_interdomain)
                        printf("ok interdomain %u %u\n", st.u.interdomain.dom,
                               st.u.interdomain.port);
                else
                        printf("ok closed\n");
                return 0;
        }
        if (!strcmp(c, "domexists") && argc == 2) {
                xc_dominfo_t info;
                uint32_t dom = (uint32_t)strtoul(argv[1], NULL, 10);

                r = tool_xc(t);
                if (r < 0) {
                        answer_err(-r);
                        return 0;
                }
                r = xc_domain_getinfo(t->xch, dom, 1, &info);
                if (r < 0)
                        answer_err(errno);
                else
                        printf("ok %s\n", r == 1 && info.domid == dom ? "yes" : "no");
                return 0;
        }
        answer_err(EINVAL);
        return 0;
}

int main(void)
{
        static char line[16384];
        static char *argv[TOOL_MAX_ARGS];
        /*
         * Static: the handles stay reachable when main returns, so a leak checker does not
         * count what this program leaves open on purpose.
         */
        static Tool t;

        /* Cannot fail: a valid mode, and before any output. */
        (void)setvbuf(stdout, NULL, _IOLBF, 0);
        while (fgets(line, sizeof(line), stdin)) {
                int argc = 0;
                char *save = NULL;

                for (char *w = strtok_r(line, " \t\n", &save); w && argc < TOOL_MAX_ARGS;
                     w = strtok_r(NULL, " \t\n", &save))
                        argv[argc++] = w;
                if (argc == 0)
                        continue;
                if (tool_run(&t, argc, argv))
                        break;
        }
        /* Leave every handle open: the daemon must clean up after a process that just exits. */
        return 0;
}
