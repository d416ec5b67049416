/* SPDX-License-Identifier: MIT */
/*
 * discover: guests found through xenstore (see discover.h).
 *
 * Everything here runs on one xenstore connection, the broker's: the watches, the reads, and
 * the setup of each guest's vchan (its keys are read on it, and its pages mapped through one
 * shared grant handle). Nothing is polled: a guest is looked at when a watch fires
 * for it (its keys changed, or the watch was just set), when it leaves, or, only after an
 * error of the broker's own, once its retry time has come. So an idle guest that has published
 * nothing costs no work at all, and a connected one costs none here.
 *
 * Whose fault a failed setup is decides what happens to the guest's keys:
 *  - the guest's (malformed values, grants or orders it cannot have meant, rings below the
 *    minimum): logged against the guest (rate-limited), its keys removed if they still name
 *    the ring we tried, and nothing more until it writes new ones;
 *  - the broker's (out of descriptors, memory, ports or mappings; max_peers reached):
 *    logged as the broker's problem (rate-limited, for all guests together), the keys kept,
 *    and the guest retried with a doubling delay; its key changes meanwhile do not hurry it,
 *    so a guest republishing in a loop cannot make the broker retry in a loop.
 *
 * A setup is a dozen blocking round trips to xenstore and the hypervisor, which take
 * milliseconds on a loaded host. So it is cut into steps (SetupStep), one guest at a time, and
 * each call of discover_process() takes one step (LIMIT_DISCOVER_SETUP_STEPS_PER_WAKEUP): the
 * broker serves the peers that are ready between any two steps, and a storm of guests
 * connecting holds up an established peer by one step at most, never by a whole setup. The ring
 * sizes are known after the step that maps the control page and are checked against the
 * broker's budgets (max_ring_order, max_grant_mappings) before the step that maps the rings: a
 * guest asking for more is refused having cost one page mapping, briefly.
 *
 * Every xenstore value read here comes from a guest or from the toolstack and is parsed strictly
 * (decimal, bounded, no trailing bytes); the vchan keys themselves are parsed and checked by
 * libbus/vchan.c.
 */
#include "discover.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"
#include "log.h"
#include "vchan-xs.h"
#include "vchan.h"
#include "vchand-limits.h"

typedef enum GuestState {
        GUEST_WAITING,   /* no usable keys yet: the watch will tell */
        GUEST_CONNECTED, /* a live peer holds its vchan */
        GUEST_REFUSED,   /* its keys were unusable (its fault): wait for new ones */
        GUEST_RETRY,     /* the broker could not set it up (its own fault): retry at retry_at */
} GuestState;

typedef struct Guest {
        List queue_link; /* in Discover.queue while a setup is due (linked iff due) */
        uint32_t domid;
        uint32_t index; /* in Discover.guests */
        uint32_t scan;  /* the last scan of /local/domain that listed it */
        bool watching;
        GuestState state;
        uint64_t retry_at_us;
        uint32_t retry_ms; /* the next delay after a local failure (doubles) */
        uint32_t log_budget;
        uint64_t log_window_us;
        char ring_ref[VBUS_VCHAN_XS_VALUE_MAX]; /* ring-ref we last tried (raw, "" if none) */
        char path[96];
} Guest;

/* The steps of a guest's setup, in order; each is one call of discover_process(). */
typedef enum SetupStep {
        STEP_KEYS,    /* read ring-ref and event-channel (2 xenstore reads) */
        STEP_NAME,    /* read the domain's name (1 read) */
        STEP_TAGS,    /* read the toolstack's tags (permissions, then the value) */
        STEP_OPEN,    /* bind the event channel, map the control page, read and admit the orders */
        STEP_RINGS,   /* map the rings: the vchan is live */
        STEP_CONNECT, /* hand it to the broker, which serves what the guest already sent */
} SetupStep;

/* The one setup in progress: what its steps found so far. */
typedef struct Setup {
        Guest *guest; /* NULL: none in progress */
        SetupStep step;
        uint32_t ring_ref, port;
        size_t read_size, write_size;
        VbusVchan *v; /* from STEP_OPEN on */
        Identity ident;
} Setup;

struct Discover {
        const DiscoverOps *ops;
        void *userdata;
        VbusXs *xs;
        uint32_t own_domid;
        Guest **guests; /* n_guests used, LIMIT_DISCOVER_GUESTS allocated */
        uint32_t n_guests;
        Guest **by_domid; /* VBUS_VCHAN_DOMID_MAX + 1 slots */
        uint32_t n_retry; /* guests in GUEST_RETRY */
        List queue;       /* guests to look at, one at a time */
        Setup setup;      /* the guest being set up, a step per wakeup */
        uint32_t scan;
        bool guests_full_logged;
        /* The rate limit of the broker's own setup errors (all guests together). */
        uint64_t local_log_us;
        uint32_t n_local_unlogged;
};

static Guest *guest_find(Discover *d, uint32_t domid)
{
        return domid <= VBUS_VCHAN_DOMID_MAX ? d->by_domid[domid] : NULL;
}

/* Notes that @g is to be looked at (once, however many events said so). */
static void guest_queue(Discover *d, Guest *g)
{
        if (!list_is_linked(&g->queue_link))
                list_add_tail(&d->queue, &g->queue_link);
}

/* A line about @g, for anything a guest can trigger: at most LIMIT_LOG_PER_MINUTE. */
static void guest_log(Guest *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void guest_log(Guest *g, const char *fmt, ...)
{
        uint64_t now = bus_now_us();
        char msg[512];
        va_list ap;

        if (now - g->log_window_us > 60 * 1000000ull) {
                g->log_window_us = now;
                g->log_budget = LIMIT_LOG_PER_MINUTE;
        }
        if (g->log_budget == 0)
                return;
        if (--g->log_budget == 0) {
                log_info("dom%u: further discovery messages suppressed for a minute", g->domid);
                return;
        }
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap); /* a log line: cut short is fine */
        va_end(ap);
        log_info("dom%u: %s", g->domid, msg);
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

static void guest_set_state(Discover *d, Guest *g, GuestState state)
{
        if (g->state == GUEST_RETRY)
                d->n_retry--;
        if (state == GUEST_RETRY)
                d->n_retry++;
        else
                g->retry_ms = 0;
        g->state = state;
}

/* The guest's keys are not usable: its fault. */
static void guest_refuse(Discover *d, Guest *g, const char *why)
{
        guest_log(g,
                  "cannot use the vchan published at %s (%s): removing it so the guest can "
                  "publish a fresh one",
                  g->path, why);
        guest_remove_stale_keys(d, g);
        guest_set_state(d, g, GUEST_REFUSED);
}

/*
 * The broker could not set the guest up (@r): the broker's fault. The keys stay; the guest is
 * tried again after a delay that doubles up to LIMIT_DISCOVER_RETRY_MAX_MS. One log line per
 * LIMIT_DISCOVER_LOCAL_LOG_MS for all guests, with the count of those not logged.
 */
static void guest_retry_later(Discover *d, Guest *g, int r, const char *what)
{
        uint64_t now = bus_now_us();

        g->retry_ms = g->retry_ms ? g->retry_ms * 2 : LIMIT_DISCOVER_RETRY_MIN_MS;
        if (g->retry_ms > LIMIT_DISCOVER_RETRY_MAX_MS)
                g->retry_ms = LIMIT_DISCOVER_RETRY_MAX_MS;
        g->retry_at_us = now + (uint64_t)g->retry_ms * 1000u;
        guest_set_state(d, g, GUEST_RETRY);
        if (d->local_log_us && now - d->local_log_us < LIMIT_DISCOVER_LOCAL_LOG_MS * 1000ull) {
                d->n_local_unlogged++;
                return;
        }
        log_error("dom%u: the broker cannot %s: %s (its own resources, not the guest's fault; "
                  "retrying in %u ms; %u more such failures since the last line)",
                  g->domid, what, strerror(-r), g->retry_ms, d->n_local_unlogged);
        d->local_log_us = now;
        d->n_local_unlogged = 0;
}

/* Ends the setup in progress (its guest's state is the caller's), freeing what it holds. */
static void setup_end(Discover *d)
{
        d->setup.v = vbus__vchan_free(d->setup.v);
        d->setup.guest = NULL;
}

/* The setup failed with @r in @what: whose fault decides (the top of this file). */
static void setup_fail(Discover *d, int r, const char *what)
{
        Guest *g = d->setup.guest;

        setup_end(d);
        if (vbus__vchan_error_is_local(r))
                guest_retry_later(d, g, r, what);
        else
                guest_refuse(d, g, strerror(-r));
}

/* The first step: the keys, on the shared connection. A guest with none costs this only. */
static void setup_keys(Discover *d, Guest *g)
{
        int r = vbus__xs_vchan_keys(d->xs, g->path, &d->setup.ring_ref, &d->setup.port);

        if (r == -ENOENT) {
                setup_end(d);
                guest_set_state(d, g, GUEST_WAITING); /* not published yet: the watch will tell */
                return;
        }
        if (r == -EPROTO)
                /* Malformed: its raw value is what a removal must still find there. */
                guest_read_ring_ref(d, g, g->ring_ref, sizeof(g->ring_ref));
        else if (r == 0)
                /* Parsed strictly (decimal, no leading zero): printed back, it is the raw
                 * value, which guest_remove_stale_keys() compares with. */
                (void)snprintf(g->ring_ref, sizeof(g->ring_ref), "%u", d->setup.ring_ref);
        if (r < 0) {
                setup_fail(d, r, "read its vchan keys");
                return;
        }
        d->setup.ident = (Identity){.domid = g->domid};
        d->setup.step = STEP_NAME;
}

/* Binds and maps the control page; the broker admits the ring sizes before any is mapped. */
static void setup_open(Discover *d, Guest *g)
{
        VbusVchanHandles h;
        int r;

        r = vbus__xs_vchan_handles(d->xs, &h);
        if (r == 0)
                r = vbus__vchan_client_open(&d->setup.v, &h, g->domid, g->path, d->setup.ring_ref,
                                            d->setup.port, &d->setup.read_size,
                                            &d->setup.write_size);
        if (r < 0) {
                setup_fail(d, r, "map its vchan");
                return;
        }
        if (d->setup.read_size < VBUS_LINK_RING_MIN || d->setup.write_size < VBUS_LINK_RING_MIN) {
                char why[96];

                (void)snprintf(why, sizeof(why), "rings of %zu/%zu bytes, below the %d minimum",
                               d->setup.read_size, d->setup.write_size, VBUS_LINK_RING_MIN);
                setup_end(d);
                guest_refuse(d, g, why);
                return;
        }
        r = d->ops->admit(d->userdata, g->domid, d->setup.read_size, d->setup.write_size);
        if (r < 0) {
                /* Over max_ring_order or its share of max_grant_mappings (logged there): what
                 * it asked for, so it waits for new keys; they are its own. */
                setup_end(d);
                guest_set_state(d, g, GUEST_REFUSED);
                return;
        }
        d->setup.step = STEP_RINGS;
}

static void setup_connect(Discover *d, Guest *g)
{
        VbusTransport t;
        VbusVchan *v = d->setup.v;
        int r;

        d->setup.v = NULL; /* moved into the transport, or freed here */
        r = vbus__transport_init_vchan(&t, v);
        if (r < 0) {
                vbus__vchan_free(v);
                setup_fail(d, r, "use its vchan");
                return;
        }
        setup_end(d);
        guest_set_state(d, g, GUEST_CONNECTED);
        r = d->ops->connect(d->userdata, &t, &d->setup.ident, g->domid);
        if (r == -E2BIG || r == -ENOSPC)
                /* Its rings are over max_ring_order or its share of max_grant_mappings (logged
                 * there): what it asked for, so it waits for new keys; they are its own. */
                guest_set_state(d, g, GUEST_REFUSED);
        else if (r < 0)
                guest_retry_later(d, g, r, "take it as a peer");
}

/* Takes the next step of the setup in progress. */
static void setup_step(Discover *d)
{
        Guest *g = d->setup.guest;
        int r;

        switch (d->setup.step) {
        case STEP_KEYS:
                setup_keys(d, g);
                break;
        case STEP_NAME:
                guest_read_name(d, g->domid, d->setup.ident.domain_name,
                                sizeof(d->setup.ident.domain_name));
                d->setup.step = STEP_TAGS;
                break;
        case STEP_TAGS:
                guest_read_tags(d, g->domid, d->setup.ident.tags, sizeof(d->setup.ident.tags));
                d->setup.step = STEP_OPEN;
                break;
        case STEP_OPEN:
                setup_open(d, g);
                break;
        case STEP_RINGS:
                r = vbus__vchan_client_map_rings(d->setup.v);
                if (r < 0)
                        setup_fail(d, r, "map its rings");
                else
                        d->setup.step = STEP_CONNECT;
                break;
        case STEP_CONNECT:
                setup_connect(d, g);
                break;
        }
}

/* Starts the setup of the next guest due, if any is. Return: whether one was started. */
static bool setup_start(Discover *d)
{
        while (!list_is_empty(&d->queue)) {
                Guest *g = list_entry(d->queue.next, Guest, queue_link);

                list_unlink(&g->queue_link);
                /* Queued by a watch while its last setup ran, which then failed for a reason of
                 * the broker's own: it waits for its retry time (the tick queues it then). */
                if (g->state == GUEST_CONNECTED ||
                    (g->state == GUEST_RETRY && bus_now_us() < g->retry_at_us))
                        continue;
                d->setup = (Setup){.guest = g, .step = STEP_KEYS};
                return true;
        }
        return false;
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

static Guest *guest_add(Discover *d, uint32_t domid)
{
        Guest *g;

        if (d->n_guests >= LIMIT_DISCOVER_GUESTS) {
                if (!d->guests_full_logged)
                        log_error("dom%u: not tracked: %d guests already (LIMIT_DISCOVER_GUESTS)",
                                  domid, LIMIT_DISCOVER_GUESTS);
                d->guests_full_logged = true;
                return NULL;
        }
        g = calloc(1, sizeof(*g));
        if (!g) {
                log_error("dom%u: not tracked: out of memory", domid);
                return NULL;
        }
        list_init(&g->queue_link);
        g->domid = domid;
        g->index = d->n_guests;
        /* Fits: two numbers of at most 10 digits. */
        (void)snprintf(g->path, sizeof(g->path), "/local/domain/%u/data/vchan/%u/vbus", domid,
                       d->own_domid);
        d->guests[d->n_guests++] = g;
        d->by_domid[domid] = g;
        return g;
}

static void guest_forget(Discover *d, Guest *g)
{
        char token[32];
        Guest *last;

        if (g->watching) {
                (void)snprintf(token, sizeof(token), "guest:%u", g->domid); /* fits */
                (void)vbus__xs_unwatch(d->xs, g->path, token);
        }
        if (d->setup.guest == g)
                setup_end(d); /* mid-setup: what it mapped goes with it */
        /* The domain is gone: its link goes too, whatever its live byte says. */
        d->ops->released(d->userdata, g->domid);
        guest_set_state(d, g, GUEST_WAITING);
        list_unlink(&g->queue_link);
        last = d->guests[--d->n_guests];
        last->index = g->index;
        d->guests[g->index] = last;
        d->by_domid[g->domid] = NULL;
        d->guests_full_logged = false;
        free(g);
}

/*
 * Lists /local/domain: adds new guests (each gets its watch, which fires once at once, and is
 * queued for a look), forgets released ones. Run at start and when a domain comes or goes.
 */
static void discover_scan(Discover *d)
{
        unsigned int n = 0;
        char **ents = NULL;

        if (vbus__xs_directory(d->xs, "/local/domain", &ents, &n) < 0)
                n = 0; /* every guest is then released: xenstore lists none */
        d->scan++;
        for (unsigned int i = 0; ents && i < n; i++) {
                uint32_t domid;
                Guest *g;

                if (vbus__vchan_parse_uint(ents[i], strlen(ents[i]), VBUS_VCHAN_DOMID_MAX, &domid) <
                            0 ||
                    domid == d->own_domid)
                        continue;
                g = guest_find(d, domid);
                if (!g) {
                        g = guest_add(d, domid);
                        if (!g)
                                continue;
                        g->scan = d->scan;
                        guest_watch(d, g);
                        guest_queue(d, g);
                }
                g->scan = d->scan;
        }
        free(ents);
        for (uint32_t i = 0; i < d->n_guests;) {
                Guest *g = d->guests[i];

                if (g->scan != d->scan) {
                        log_debug("dom%u: released", g->domid);
                        guest_forget(d, g); /* the last one moved to slot i */
                        continue;
                }
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
        list_init(&d->queue);
        d->guests = calloc(LIMIT_DISCOVER_GUESTS, sizeof(Guest *));
        d->by_domid = calloc(VBUS_VCHAN_DOMID_MAX + 1, sizeof(Guest *));
        r = d->guests && d->by_domid ? vbus__xs_open(&d->xs) : -ENOMEM;
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
        /* Both fire once when set: the first event is the scan that finds guests already
         * waiting (a restarted broker). */
        r = vbus__xs_watch(d->xs, "@introduceDomain", "intro");
        if (r == 0)
                r = vbus__xs_watch(d->xs, "@releaseDomain", "release");
        if (r < 0) {
                discover_free(d);
                return r;
        }
        discover_scan(d);
        *ret = d;
        return 0;
}

Discover *discover_free(Discover *d)
{
        if (!d)
                return NULL;
        d->setup.v = vbus__vchan_free(d->setup.v); /* before the handles it borrows */
        d->xs = vbus__xs_close(d->xs);
        for (uint32_t i = 0; d->guests && i < d->n_guests; i++)
                free(d->guests[i]);
        free(d->guests);
        free(d->by_domid);
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

int discover_get_events_fd(Discover *d)
{
        return vbus__xs_vchan_events_fd(d->xs);
}

int discover_next_event(Discover *d, uint32_t *ret_port)
{
        VbusVchanHandles h;

        if (vbus__xs_vchan_events_fd(d->xs) < 0)
                return 0; /* no guest set up yet: no events */
        if (vbus__xs_vchan_handles(d->xs, &h) < 0)
                return 0; /* cannot fail once open */
        return vbus__vchan_next_event(&h, ret_port);
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

                        /* The keys changed: a refused guest is tried again; one waiting for
                         * its retry time keeps waiting (see the top of this file). */
                        if (g && g->state != GUEST_RETRY && g->state != GUEST_CONNECTED)
                                guest_queue(d, g);
                }
                free(token);
        }
        if (rescan)
                discover_scan(d);
        /* A few round trips per wakeup (see the top of this file), so that a storm of guests
         * connecting never holds up the peers already served for long. */
        for (int i = 0; i < LIMIT_DISCOVER_SETUP_STEPS_PER_WAKEUP; i++) {
                if (!d->setup.guest && !setup_start(d))
                        break;
                setup_step(d);
        }
}

bool discover_has_work(Discover *d)
{
        return d->setup.guest || !list_is_empty(&d->queue);
}

void discover_tick(Discover *d)
{
        uint64_t now;

        if (d->n_retry == 0)
                return; /* the common case: nothing to do, whatever the number of guests */
        now = bus_now_us();
        for (uint32_t i = 0; i < d->n_guests; i++) {
                Guest *g = d->guests[i];

                if (g->state == GUEST_RETRY && now >= g->retry_at_us)
                        guest_queue(d, g);
        }
}

void discover_peer_gone(Discover *d, uint32_t domid)
{
        Guest *g = guest_find(d, domid);

        if (!g || g->state != GUEST_CONNECTED)
                return;
        guest_set_state(d, g, GUEST_WAITING);
        /* A guest that closed cleanly removed its keys; one that died left them behind. */
        guest_remove_stale_keys(d, g);
}
