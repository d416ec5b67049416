/* SPDX-License-Identifier: MIT */
/*
 * discover: guests found through xenstore (see discover.h).
 *
 * Every xenstore value read here comes from a guest or from the toolstack and is parsed strictly
 * (decimal, bounded, no trailing bytes); the vchan keys themselves are parsed and checked by
 * libbus/vchan.c. A guest that publishes something invalid is logged (rate-limited) and retried
 * only when its keys change, never in a loop.
 */
#include "discover.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"
#include "log.h"
#include "vchan-xs.h"
#include "vchan.h"
#include "vchand-limits.h"

typedef struct Guest {
        uint32_t domid;
        bool present; /* listed under /local/domain at the last scan */
        bool watching;
        bool connected;    /* a live peer holds its vchan */
        bool failed;       /* the last attempt failed on the guest's side: wait for new keys */
        char ring_ref[16]; /* ring-ref of the vchan we last connected to (or failed on) */
        char path[96];
} Guest;

struct Discover {
        const DiscoverOps *ops;
        void *userdata;
        VbusXs *xs;
        uint32_t own_domid;
        Guest *guests; /* indexed by slot, n_guests used */
        uint32_t n_guests;
};

static Guest *guest_find(Discover *d, uint32_t domid)
{
        for (uint32_t i = 0; i < d->n_guests; i++)
                if (d->guests[i].domid == domid)
                        return &d->guests[i];
        return NULL;
}

static void guest_read_name(Discover *d, uint32_t domid, char *name, size_t size)
{
        char path[64];
        size_t len = 0;
        char *v = NULL;

        name[0] = '\0';
        (void)snprintf(path, sizeof(path), "/local/domain/%u/name", domid); /* fits: a number */
        if (vbus__xs_read(d->xs, path, &v, &len) < 0)
                return;
        /* Printable ASCII only; anything else is not a name we put in logs or stamps. */
        if (len > 0 && len < size) {
                bool ok = true;

                for (size_t i = 0; i < len; i++)
                        ok &= v[i] > 0x20 && v[i] < 0x7f;
                if (ok) {
                        memcpy(name, v, len);
                        name[len] = '\0';
                }
        }
        free(v);
}

/*
 * The toolstack's tags of a guest (policy @tag:), from /local/domain/<domid>/vbus-tags: words of
 * [A-Za-z0-9_.-] separated by spaces. Read only when the guest cannot write the key (owned by
 * the toolstack's domain 0, no write for the guest): on Xen and on xensim, /local/domain/<domid>
 * is (n0,r<domid>) and a key dom0 creates there inherits that, while a guest writes freely under
 * its data/ (docs/policy.md, "Tags"). Anything else is read as no tags.
 */
static void guest_read_tags(Discover *d, uint32_t domid, char *tags, size_t size)
{
        char path[64];
        size_t len = 0;
        char *v = NULL;
        int r;

        tags[0] = '\0';
        (void)snprintf(path, sizeof(path), "/local/domain/%u/vbus-tags", domid); /* fits */
        r = vbus__xs_read_protected(d->xs, path, domid, 0, &v, &len);
        if (r == -EPERM)
                log_info("dom%u: ignoring %s: the guest may write it", domid, path);
        if (r < 0)
                return;
        if (len > 0 && len < size) {
                bool ok = true;

                for (size_t i = 0; i < len; i++)
                        ok &= (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
                              (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '.' ||
                              v[i] == '-' || v[i] == ' ';
                if (ok) {
                        memcpy(tags, v, len);
                        tags[len] = '\0';
                }
        }
        free(v);
}

/* Reads the guest's current ring-ref value into @buf ("" if absent or not plausible). */
static void guest_read_ring_ref(Discover *d, Guest *g, char *buf, size_t size)
{
        char key[128];
        size_t len = 0;
        char *v = NULL;

        buf[0] = '\0';
        if (snprintf(key, sizeof(key), "%s/%s", g->path, VBUS_VCHAN_KEY_RING_REF) >=
            (int)sizeof(key))
                return; /* cannot happen (g->path is shorter): read as absent */
        if (vbus__xs_read(d->xs, key, &v, &len) == 0 && len > 0 && len < size) {
                memcpy(buf, v, len);
                buf[len] = '\0';
        }
        free(v);
}

/*
 * Removes the guest's vchan keys if they still name the ring we used: a guest process that died
 * (or a ring we could not use) must not keep the path from the next process of that domain. The
 * check and the removal are one transaction, so a fresh ring published meanwhile is kept.
 */
static void guest_remove_stale_keys(Discover *d, Guest *g)
{
        if (g->ring_ref[0])
                (void)vbus__xs_remove_if(d->xs, g->path, VBUS_VCHAN_KEY_RING_REF, g->ring_ref);
        g->ring_ref[0] = '\0';
}

static void guest_try_connect(Discover *d, Guest *g)
{
        Identity ident = {0};
        VbusTransport t;
        VbusVchan *v = NULL;
        int r;

        if (g->connected || !g->present)
                return;
        guest_read_ring_ref(d, g, g->ring_ref, sizeof(g->ring_ref));
        r = vbus__vchan_client_new(&v, g->domid, g->path);
        if (r == -ENOENT)
                return; /* not published yet: the watch will tell us */
        if (r < 0) {
                log_info("dom%u: cannot use the vchan published at %s (%s): removing it so the "
                         "guest can publish a fresh one",
                         g->domid, g->path, strerror(-r));
                guest_remove_stale_keys(d, g);
                g->failed = true;
                return;
        }
        g->failed = false;
        if (vbus__vchan_get_read_size(v) < VBUS_LINK_RING_MIN ||
            vbus__vchan_get_write_size(v) < VBUS_LINK_RING_MIN) {
                log_info("dom%u: rings of %zu/%zu bytes are below the %d-byte minimum", g->domid,
                         vbus__vchan_get_read_size(v), vbus__vchan_get_write_size(v),
                         VBUS_LINK_RING_MIN);
                vbus__vchan_free(v);
                guest_remove_stale_keys(d, g);
                g->failed = true;
                return;
        }
        ident.domid = g->domid;
        guest_read_name(d, g->domid, ident.domain_name, sizeof(ident.domain_name));
        guest_read_tags(d, g->domid, ident.tags, sizeof(ident.tags));
        if (vbus__transport_init_vchan(&t, v) < 0) {
                vbus__vchan_free(v);
                return;
        }
        g->connected = true;
        if (d->ops->connect(d->userdata, &t, &ident, g->domid) < 0)
                g->connected = false;
}

static void guest_watch(Discover *d, Guest *g)
{
        char token[32];
        int r;

        if (g->watching)
                return;
        (void)snprintf(token, sizeof(token), "guest:%u", g->domid); /* fits: a number */
        r = vbus__xs_watch(d->xs, g->path, token);
        if (r == 0)
                g->watching = true;
        else
                log_error("dom%u: cannot watch %s: %s", g->domid, g->path, strerror(-r));
}

static void guest_forget(Discover *d, Guest *g)
{
        char token[32];

        if (g->watching) {
                (void)snprintf(token, sizeof(token), "guest:%u", g->domid); /* fits */
                (void)vbus__xs_unwatch(d->xs, g->path, token);
        }
        /* The domain is gone: its link goes too, whatever its live byte says. */
        d->ops->released(d->userdata, g->domid);
        *g = d->guests[--d->n_guests];
}

/* Lists /local/domain: adds new guests, forgets released ones. */
static void discover_scan(Discover *d)
{
        unsigned int n = 0;
        char **ents = NULL;

        if (vbus__xs_directory(d->xs, "/local/domain", &ents, &n) < 0)
                n = 0; /* every guest is then released: xenstore lists none */

        for (uint32_t i = 0; i < d->n_guests; i++)
                d->guests[i].present = false;
        for (unsigned int i = 0; ents && i < n; i++) {
                uint32_t domid;
                Guest *g;

                if (vbus__vchan_parse_uint(ents[i], strlen(ents[i]), VBUS_VCHAN_DOMID_MAX, &domid) <
                            0 ||
                    domid == d->own_domid)
                        continue;
                g = guest_find(d, domid);
                if (!g) {
                        if (d->n_guests >= LIMIT_DISCOVER_GUESTS)
                                continue;
                        g = &d->guests[d->n_guests++];
                        *g = (Guest){.domid = domid};
                        /* Fits: two numbers of at most 10 digits. */
                        (void)snprintf(g->path, sizeof(g->path),
                                       "/local/domain/%u/data/vchan/%u/vbus", domid, d->own_domid);
                }
                g->present = true;
        }
        free(ents);
        for (uint32_t i = 0; i < d->n_guests;) {
                Guest *g = &d->guests[i];

                if (!g->present) {
                        log_debug("dom%u: released", g->domid);
                        guest_forget(d, g);
                        continue;
                }
                guest_watch(d, g);
                guest_try_connect(d, g);
                i++;
        }
}

int discover_new(const DiscoverOps *ops, void *userdata, Discover **ret)
{
        Discover *d = calloc(1, sizeof(*d));
        size_t len = 0;
        char *v = NULL;
        int r;

        if (!d)
                return -ENOMEM;
        d->ops = ops;
        d->userdata = userdata;
        d->guests = calloc(LIMIT_DISCOVER_GUESTS, sizeof(*d->guests));
        r = d->guests ? vbus__xs_open(&d->xs) : -ENOMEM;
        if (r < 0) {
                discover_free(d);
                return r;
        }
        if (vbus__xs_read(d->xs, "domid", &v, &len) < 0 ||
            vbus__vchan_parse_uint(v, len, VBUS_VCHAN_DOMID_MAX, &d->own_domid) < 0) {
                log_info("xenstore has no valid \"domid\" key for this domain: assuming 0");
                d->own_domid = 0;
        }
        free(v);
        r = vbus__xs_watch(d->xs, "@introduceDomain", "intro");
        if (r == 0)
                r = vbus__xs_watch(d->xs, "@releaseDomain", "release");
        if (r < 0) {
                discover_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

Discover *discover_free(Discover *d)
{
        if (!d)
                return NULL;
        d->xs = vbus__xs_close(d->xs);
        free(d->guests);
        free(d);
        return NULL;
}

uint32_t discover_get_own_domid(Discover *d)
{
        return d->own_domid;
}

int discover_get_fd(Discover *d)
{
        return vbus__xs_get_fd(d->xs);
}

void discover_process(Discover *d)
{
        bool rescan = false;
        char *token;

        while (vbus__xs_next_event(d->xs, &token) == 1) {
                uint32_t domid;

                if (strcmp(token, "intro") == 0 || strcmp(token, "release") == 0) {
                        rescan = true;
                } else if (strncmp(token, "guest:", 6) == 0 &&
                           vbus__vchan_parse_uint(token + 6, strlen(token + 6),
                                                  VBUS_VCHAN_DOMID_MAX, &domid) == 0) {
                        Guest *g = guest_find(d, domid);

                        if (g) {
                                g->failed = false; /* the keys changed: try again */
                                guest_try_connect(d, g);
                        }
                }
                free(token);
        }
        if (rescan)
                discover_scan(d);
}

void discover_tick(Discover *d)
{
        for (uint32_t i = 0; i < d->n_guests; i++)
                if (!d->guests[i].failed)
                        guest_try_connect(d, &d->guests[i]);
}

void discover_peer_gone(Discover *d, uint32_t domid)
{
        Guest *g = guest_find(d, domid);

        if (!g)
                return;
        g->connected = false;
        /* A guest that closed cleanly removed its keys; one that died left them behind. */
        guest_remove_stale_keys(d, g);
}
