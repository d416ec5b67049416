/*
 * vchan setup and teardown on the Xen libraries (see vchan.h for the contract).
 *
 * This file owns the Xen handles (gntshr or gnttab, evtchn, xenstore), the mappings and the
 * xenstore keys; all ring arithmetic is in vchan-ring.c. The client side is written for a
 * hostile server: every xenstore value is parsed strictly, the orders and grant list are read
 * once from the page and validated (including the grant list running into an in-page ring,
 * and grant refs that alias the control page or each other) before anything else is mapped,
 * and the ring the client reads is mapped read-only.
 */

#include "vchan.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

struct VbusVchan {
        bool server;
        bool closed;
        uint32_t peer_domid;
        char *path;

        xengntshr_handle *gntshr; /* server */
        xengnttab_handle *gnttab; /* client */
        xenevtchn_handle *evtchn;
        struct xs_handle *xs;
        bool borrowed;      /* gnttab and xs are a VbusVchanHandles' (not closed here) */
        bool shared_evtchn; /* evtchn too: the owner takes its events (vchan.h) */
        evtchn_port_t port; /* our local port */
        bool port_bound;

        VbusVchanLayout layout;
        uint32_t *grants; /* client, between open and map_rings: the checked grant list */
        void *page;
        void *ext[2]; /* external rings, NULL when in-page */
        VbusVchanRing ring;
        bool ring_ready; /* ring attached: close must clear our live byte */
        VbusVchanStats stats;
};

int vbus__vchan_parse_uint(const char *buf, size_t len, uint32_t max, uint32_t *ret)
{
        uint64_t v = 0;

        if (!buf || len == 0 || len > 10)
                return -EPROTO;
        if (buf[0] == '0' && len > 1)
                return -EPROTO;
        for (size_t i = 0; i < len; i++) {
                if (buf[i] < '0' || buf[i] > '9')
                        return -EPROTO;
                v = v * 10 + (uint64_t)(buf[i] - '0');
        }
        if (v > max)
                return -EPROTO;
        *ret = (uint32_t)v;
        return 0;
}

bool vbus__vchan_path_is_valid(const char *path)
{
        size_t n;

        if (!path || path[0] != '/')
                return false;
        n = strnlen(path, VBUS_VCHAN_PATH_MAX + 1);
        if (n > VBUS_VCHAN_PATH_MAX || n < 2 || path[n - 1] == '/')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = path[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '@' || c == '/'))
                        return false;
                if (c == '/' && i > 0 && path[i - 1] == '/')
                        return false;
        }
        return true;
}

int vbus__vchan_path_build(char *buf, size_t size, uint32_t server_domid, uint32_t client_domid,
                           const char *port)
{
        size_t n;
        int k;

        if (!port || server_domid > VBUS_VCHAN_DOMID_MAX || client_domid > VBUS_VCHAN_DOMID_MAX)
                return -EINVAL;
        n = strnlen(port, VBUS_VCHAN_PORT_MAX + 1);
        if (n == 0 || n > VBUS_VCHAN_PORT_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                char c = port[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_'))
                        return -EINVAL;
        }
        k = snprintf(buf, size, "/local/domain/%u/data/vchan/%u/%s", server_domid, client_domid,
                     port);
        if (k < 0 || (size_t)k >= size)
                return -ENAMETOOLONG;
        return 0;
}

static int errno_or(int fallback)
{
        return errno > 0 ? -errno : fallback;
}

static void vchan_notify(VbusVchan *v)
{
        if (v->port_bound && xenevtchn_notify(v->evtchn, v->port) == 0)
                v->stats.n_notify++;
}

/* Reads `<path>/<key>` outside a transaction and parses it strictly. */
static int xs_read_uint(struct xs_handle *xs, const char *dir, const char *key, uint32_t max,
                        uint32_t *ret)
{
        char full[VBUS_VCHAN_PATH_MAX + 32];
        unsigned int len = 0;
        char *val;
        int r;

        if (dir)
                r = snprintf(full, sizeof(full), "%s/%s", dir, key);
        else
                r = snprintf(full, sizeof(full), "%s", key);
        if (r < 0 || (size_t)r >= sizeof(full))
                return -ENAMETOOLONG;
        errno = 0;
        val = xs_read(xs, XBT_NULL, full, &len);
        if (!val)
                return errno == ENOENT || errno == 0 ? -ENOENT : -errno;
        r = vbus__vchan_parse_uint(val, len, max, ret);
        free(val);
        return r;
}

/* --- who holds a published vchan of this domain ----------------------------------------- */

static bool fits(int n, size_t size);

/* @n bytes of the file @path, NUL-terminated and cut at the first newline. Return: 0, -errno. */
static int read_line(const char *path, char *buf, size_t n)
{
        FILE *f = fopen(path, "re");
        size_t k;

        if (!f)
                return -errno;
        k = fread(buf, 1, n - 1, f);
        (void)fclose(f); /* read-only: nothing to lose */
        buf[k] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return 0;
}

/* A whole decimal number. */
static bool parse_ull(const char *s, unsigned long long *ret)
{
        char *end;

        if (*s < '0' || *s > '9')
                return false;
        errno = 0;
        *ret = strtoull(s, &end, 10);
        return errno == 0 && *end == '\0';
}

/* The start time of @pid (field 22 of /proc/<pid>/stat, after the command's closing ')'), so a
 * recycled pid is not mistaken for the process that published. Return: 0, -errno. */
static int proc_start_time(unsigned long pid, unsigned long long *ret)
{
        char path[64], stat[1024], *p;
        int r;

        (void)snprintf(path, sizeof(path), "/proc/%lu/stat", pid); /* fits */
        r = read_line(path, stat, sizeof(stat));
        if (r < 0)
                return r;
        p = strrchr(stat, ')');
        if (!p)
                return -EPROTO;
        /* After ')': state (field 3) ... starttime (field 22): skip 19 fields. */
        for (int i = 0; i < 20 && p; i++)
                p = strchr(p + 1, ' ');
        if (!p)
                return -EPROTO;
        p[strcspn(p + 1, " ") + 1] = '\0';
        return parse_ull(p + 1, ret) ? 0 : -EPROTO;
}

/*
 * What a publishing process records next to its ring-ref: "<boot id> <pid namespace> <pid>
 * <start time>". Together they name one process of one boot of this domain's kernel; a holder
 * recorded so can be checked without the broker (docs/vchan.md, "Stale keys").
 */
static int holder_self(char *buf, size_t n)
{
        char boot[64], ns[64];
        unsigned long long start = 0;
        ssize_t k;
        int r;

        r = read_line("/proc/sys/kernel/random/boot_id", boot, sizeof(boot));
        if (r < 0)
                return r;
        k = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
        if (k < 0)
                return -errno;
        ns[k] = '\0';
        r = proc_start_time((unsigned long)getpid(), &start);
        if (r < 0)
                return r;
        k = snprintf(buf, n, "%s %s %lu %llu", boot, ns, (unsigned long)getpid(), start);
        return k > 0 && (size_t)k < n ? 0 : -ENAMETOOLONG;
}

/*
 * Whether the holder recorded at @dir is known to be gone: same boot and pid namespace as ours
 * (else we cannot tell, and assume it lives), and no process with its pid and start time. A
 * value we cannot parse, or none (a writer that records none, such as Xen's libxenvchan), is
 * taken as alive: we never cut off a holder we cannot account for.
 */
static bool holder_is_gone(struct xs_handle *xs, const char *dir)
{
        char full[VBUS_VCHAN_PATH_MAX + 32], self[192], rec[192];
        char *f[4], *save = NULL, *my_boot, *my_ns;
        unsigned long long pid, start, now;
        unsigned int len = 0;
        char *val;

        if (!fits(snprintf(full, sizeof(full), "%s/%s", dir, VBUS_VCHAN_KEY_HOLDER), sizeof(full)))
                return false;
        val = xs_read(xs, XBT_NULL, full, &len);
        if (!val)
                return false;
        if (len >= sizeof(rec) || memchr(val, '\0', len)) {
                free(val);
                return false;
        }
        memcpy(rec, val, len);
        rec[len] = '\0';
        free(val);
        if (holder_self(self, sizeof(self)) < 0)
                return false;
        my_boot = strtok_r(self, " ", &save);
        my_ns = strtok_r(NULL, " ", &save);
        save = NULL;
        for (int i = 0; i < 4; i++)
                f[i] = strtok_r(i ? NULL : rec, " ", &save);
        if (!my_boot || !my_ns || !f[3] || strtok_r(NULL, " ", &save) || !parse_ull(f[2], &pid) ||
            !parse_ull(f[3], &start) || pid == 0 || pid > INT32_MAX)
                return false;
        if (strcmp(f[0], my_boot) != 0 || strcmp(f[1], my_ns) != 0)
                return false;
        return proc_start_time((unsigned long)pid, &now) < 0 || now != start;
}

int vbus__vchan_server_open_to(uint32_t peer_domid, const char *port, size_t left_min,
                               size_t right_min, VbusVchan **ret_vchan)
{
        char path[VBUS_VCHAN_PATH_MAX];
        struct xs_handle *xs;
        /* Zeroed: clang-tidy 14's analyzer does not know errno > 0 after a failed xs_read(), so
         * it takes xs_read_uint()'s -errno for a possible success that wrote nothing. */
        uint32_t self = 0, ring_ref = 0;
        int r;

        errno = 0;
        xs = xs_open(0);
        if (!xs)
                return errno_or(-EIO);
        r = xs_read_uint(xs, NULL, "domid", VBUS_VCHAN_DOMID_MAX, &self);
        if (r == 0)
                r = vbus__vchan_path_build(path, sizeof(path), self, peer_domid, port);
        if (r == 0) {
                /* A value that can be read, well-formed or not, means the vchan is held, unless
                 * the process that published it is known to be gone: then its keys are stale
                 * and removed here, without waiting for a broker to notice. */
                r = xs_read_uint(xs, path, VBUS_VCHAN_KEY_RING_REF, UINT32_MAX, &ring_ref);
                r = r == 0 || r == -EPROTO ? -EADDRINUSE : 0;
                if (r == -EADDRINUSE && holder_is_gone(xs, path) && xs_rm(xs, XBT_NULL, path))
                        r = 0;
        }
        xs_close(xs);
        if (r < 0)
                return r;
        return vbus__vchan_server_new(ret_vchan, peer_domid, path, left_min, right_min);
}

/*
 * A VbusVchan with its own event-channel handle and, unless @h lends them, its own xenstore
 * connection (the grant handle is opened by the caller, or borrowed from @h).
 */
static int vchan_new(VbusVchan **ret, bool server, uint32_t peer_domid, const char *path,
                     const VbusVchanHandles *h)
{
        VbusVchan *v;

        if (!ret || peer_domid > VBUS_VCHAN_DOMID_MAX || !vbus__vchan_path_is_valid(path))
                return -EINVAL;
        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->server = server;
        v->peer_domid = peer_domid;
        v->path = strdup(path);
        if (!v->path) {
                free(v);
                return -ENOMEM;
        }
        if (h && h->evtchn) {
                v->evtchn = h->evtchn; /* made non-blocking by its owner */
                v->shared_evtchn = true;
                goto opened;
        }
        errno = 0;
        v->evtchn = xenevtchn_open(NULL, 0);
        if (!v->evtchn)
                goto fail;
        /*
         * Non-blocking, so that xenevtchn_pending() answers EAGAIN instead of blocking when no
         * event is there (Linux's /dev/xen/evtchn and xensim honour O_NONBLOCK): process() can
         * then take an event without a poll() first. The descriptor is this handle's own.
         */
        {
                int fd = xenevtchn_fd(v->evtchn);
                int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;

                if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                        goto fail;
        }
opened:
        if (h) {
                v->borrowed = true;
                v->xs = h->xs;
                v->gnttab = h->gnttab;
        } else {
                v->xs = xs_open(0);
                if (!v->xs)
                        goto fail;
        }
        *ret = v;
        return 0;
fail:;
        int r = errno_or(-ENODEV);

        vbus__vchan_free(v);
        return r;
}

/* Whether snprintf's result @n says that all of it fit in @size bytes. */
static bool fits(int n, size_t size)
{
        return n >= 0 && (size_t)n < size;
}

/* Publishes ring-ref and event-channel in one transaction, readable by the peer only. */
static int server_publish(VbusVchan *v, uint32_t self, uint32_t ring_ref)
{
        struct xs_permissions perms[2] = {
                {.id = self, .perms = XS_PERM_NONE},
                {.id = v->peer_domid, .perms = XS_PERM_READ},
        };
        struct xs_permissions own[1] = {{.id = self, .perms = XS_PERM_NONE}};
        char key[3][VBUS_VCHAN_PATH_MAX + 32], val[2][16], holder[192] = "";

        /* The path was validated to at most VBUS_VCHAN_PATH_MAX bytes: none of these should
         * ever be cut short, and none may be if one were. */
        if (!fits(snprintf(key[0], sizeof(key[0]), "%s/%s", v->path, VBUS_VCHAN_KEY_RING_REF),
                  sizeof(key[0])) ||
            !fits(snprintf(key[1], sizeof(key[1]), "%s/%s", v->path, VBUS_VCHAN_KEY_EVENT_CHANNEL),
                  sizeof(key[1])) ||
            !fits(snprintf(val[0], sizeof(val[0]), "%u", ring_ref), sizeof(val[0])) ||
            !fits(snprintf(val[1], sizeof(val[1]), "%u", (unsigned)v->port), sizeof(val[1])) ||
            !fits(snprintf(key[2], sizeof(key[2]), "%s/%s", v->path, VBUS_VCHAN_KEY_HOLDER),
                  sizeof(key[2])))
                return -ENAMETOOLONG;
        /* Without /proc no holder is recorded: such keys are then never judged stale. */
        (void)holder_self(holder, sizeof(holder));

        for (unsigned attempt = 0; attempt < VBUS_VCHAN_XS_TXN_RETRIES; attempt++) {
                xs_transaction_t t = xs_transaction_start(v->xs);
                bool ok = true;

                if (t == XBT_NULL)
                        return errno_or(-EIO);
                for (int i = 0; i < 2 && ok; i++)
                        ok = xs_write(v->xs, t, key[i], val[i], (unsigned)strlen(val[i])) &&
                             xs_set_permissions(v->xs, t, key[i], perms, 2);
                /* The holder is this domain's business only: the peer cannot read it. */
                if (ok && holder[0])
                        ok = xs_write(v->xs, t, key[2], holder, (unsigned)strlen(holder)) &&
                             xs_set_permissions(v->xs, t, key[2], own, 1);
                if (!ok) {
                        int r = errno_or(-EIO);

                        xs_transaction_end(v->xs, t, true);
                        return r;
                }
                if (xs_transaction_end(v->xs, t, false))
                        return 0;
                if (errno != EAGAIN)
                        return errno_or(-EIO);
        }
        return -EAGAIN;
}

int vbus__vchan_server_new(VbusVchan **ret_vchan, uint32_t peer_domid, const char *path,
                           size_t left_min, size_t right_min)
{
        uint32_t grants[VBUS_VCHAN_MAX_GRANTS], ring_ref = 0, self = 0;
        VbusVchan *v = NULL;
        int r;

        r = vbus__vchan_layout_from_sizes(left_min, right_min, &(VbusVchanLayout){0});
        if (r < 0)
                return r;
        r = vchan_new(&v, true, peer_domid, path, NULL);
        if (r < 0 || !v)
                return r < 0 ? r : -EIO;
        vbus__vchan_layout_from_sizes(left_min, right_min, &v->layout);

        r = xs_read_uint(v->xs, NULL, "domid", VBUS_VCHAN_DOMID_MAX, &self);
        if (r < 0)
                goto fail;
        errno = 0;
        v->gntshr = xengntshr_open(NULL, 0);
        if (!v->gntshr) {
                r = errno_or(-ENODEV);
                goto fail;
        }
        {
                xenevtchn_port_or_error_t p = xenevtchn_bind_unbound_port(v->evtchn, peer_domid);

                if (p < 0) {
                        r = errno_or(-EIO);
                        goto fail;
                }
                v->port = (evtchn_port_t)p;
                v->port_bound = true;
                xenevtchn_unmask(v->evtchn, v->port);
        }
        v->page = xengntshr_share_page_notify(v->gntshr, peer_domid, &ring_ref, 1,
                                              VBUS_VCHAN_OFF_SRV_LIVE, v->port);
        if (!v->page) {
                r = errno_or(-ENOMEM);
                goto fail;
        }
        for (int i = 0, g = 0; i < 2; i++) {
                if (v->layout.n_pages[i] == 0)
                        continue;
                v->ext[i] = xengntshr_share_pages(v->gntshr, peer_domid, (int)v->layout.n_pages[i],
                                                  grants + g, 1);
                if (!v->ext[i]) {
                        r = errno_or(-ENOMEM);
                        goto fail;
                }
                g += (int)v->layout.n_pages[i];
        }
        vbus__vchan_page_init_server(v->page, &v->layout, grants);
        vbus__vchan_ring_init(&v->ring, v->page, true, &v->layout, v->ext[0], v->ext[1]);
        v->ring_ready = true;

        r = server_publish(v, self, ring_ref);
        if (r < 0)
                goto fail;
        *ret_vchan = v;
        return 0;
fail:
        vbus__vchan_free(v);
        return r;
}

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

        return x < y ? -1 : x > y;
}

/* Grant refs must not alias the control page or each other (honest servers never do). */
static int check_grant_refs(const uint32_t *grants, uint32_t n, uint32_t ring_ref)
{
        uint32_t sorted[VBUS_VCHAN_MAX_GRANTS];

        memcpy(sorted, grants, n * sizeof(*grants));
        qsort(sorted, n, sizeof(*sorted), cmp_u32);
        for (uint32_t i = 0; i < n; i++) {
                if (sorted[i] == ring_ref || (i > 0 && sorted[i] == sorted[i - 1]))
                        return -EPROTO;
        }
        return 0;
}

/*
 * Reads and parses the keys a server published at @path. Before the server publishes,
 * xenstored answers EACCES rather than ENOENT when the nearest existing parent is not readable
 * to us (a server in dom0, say): both mean "not there yet" to a client that waits for its
 * server. A zero ring-ref or port is malformed (-EPROTO).
 */
static int client_read_keys(struct xs_handle *xs, const char *path, uint32_t *ret_ring_ref,
                            uint32_t *ret_port)
{
        int r = xs_read_uint(xs, path, VBUS_VCHAN_KEY_RING_REF, UINT32_MAX, ret_ring_ref);

        if (r == 0)
                r = xs_read_uint(xs, path, VBUS_VCHAN_KEY_EVENT_CHANNEL, UINT32_MAX, ret_port);
        if (r == -EACCES)
                r = -ENOENT;
        if (r == 0 && (*ret_ring_ref == 0 || *ret_port == 0))
                r = -EPROTO;
        return r;
}

/*
 * Binds the server's port, maps the control page and reads the orders and grant list from it
 * once, into private memory (v->grants), checked. Nothing of the rings is mapped yet.
 */
static int client_open_page(VbusVchan *v, uint32_t ring_ref, uint32_t remote_port)
{
        int r;

        errno = 0;
        {
                xenevtchn_port_or_error_t p =
                        xenevtchn_bind_interdomain(v->evtchn, v->peer_domid, remote_port);

                if (p < 0)
                        return errno_or(-EIO);
                v->port = (evtchn_port_t)p;
                v->port_bound = true;
                xenevtchn_unmask(v->evtchn, v->port);
        }
        v->page = xengnttab_map_grant_ref_notify(v->gnttab, v->peer_domid, ring_ref,
                                                 PROT_READ | PROT_WRITE, VBUS_VCHAN_OFF_CLI_LIVE,
                                                 v->port);
        if (!v->page)
                return errno_or(-EIO);
        v->grants = malloc(VBUS_VCHAN_MAX_GRANTS * sizeof(*v->grants));
        if (!v->grants)
                return -ENOMEM;
        /* Orders and grants: one read each into private memory, then validated. */
        r = vbus__vchan_page_read_layout(v->page, &v->layout, v->grants);
        if (r < 0)
                return r;
        return check_grant_refs(v->grants, vbus__vchan_layout_n_grants(&v->layout), ring_ref);
}

/* Maps the rings of the layout client_open_page() read, and says we are live. */
static int client_map_rings(VbusVchan *v)
{
        for (int i = 0, g = 0; i < 2; i++) {
                /* left = we write; right = we only read, so map it read-only */
                int prot = i == VBUS_VCHAN_LEFT ? PROT_READ | PROT_WRITE : PROT_READ;

                if (v->layout.n_pages[i] == 0)
                        continue;
                v->ext[i] = xengnttab_map_domain_grant_refs(v->gnttab, v->layout.n_pages[i],
                                                            v->peer_domid, v->grants + g, prot);
                if (!v->ext[i])
                        return errno_or(-EIO);
                g += (int)v->layout.n_pages[i];
        }
        free(v->grants);
        v->grants = NULL;
        vbus__vchan_ring_init(&v->ring, v->page, false, &v->layout, v->ext[0], v->ext[1]);
        v->ring_ready = true;
        vbus__vchan_ring_set_live(&v->ring, VBUS_VCHAN_LIVE_ON);
        vbus__vchan_ring_request(&v->ring, VBUS_VCHAN_NOTIFY_WRITE);
        /* Wake the server: it learns of the connection without waiting for data. */
        vchan_notify(v);
        return 0;
}

static int client_attach(VbusVchan *v, uint32_t ring_ref, uint32_t remote_port)
{
        int r = client_open_page(v, ring_ref, remote_port);

        return r < 0 ? r : client_map_rings(v);
}

int vbus__vchan_client_new(VbusVchan **ret_vchan, uint32_t server_domid, const char *path)
{
        uint32_t ring_ref = 0, remote_port = 0;
        VbusVchan *v = NULL;
        int r;

        r = vchan_new(&v, false, server_domid, path, NULL);
        if (r < 0 || !v)
                return r < 0 ? r : -EIO;
        r = client_read_keys(v->xs, v->path, &ring_ref, &remote_port);
        if (r < 0)
                goto fail;
        errno = 0;
        v->gnttab = xengnttab_open(NULL, 0);
        if (!v->gnttab) {
                r = errno_or(-ENODEV);
                goto fail;
        }
        r = client_attach(v, ring_ref, remote_port);
        if (r < 0)
                goto fail;
        *ret_vchan = v;
        return 0;
fail:
        vbus__vchan_free(v);
        return r;
}

int vbus__vchan_client_keys(const VbusVchanHandles *h, const char *path, uint32_t *ret_ring_ref,
                            uint32_t *ret_port)
{
        if (!h || !h->xs || !ret_ring_ref || !ret_port || !vbus__vchan_path_is_valid(path))
                return -EINVAL;
        return client_read_keys(h->xs, path, ret_ring_ref, ret_port);
}

int vbus__vchan_client_open(VbusVchan **ret_vchan, const VbusVchanHandles *h, uint32_t server_domid,
                            const char *path, uint32_t ring_ref, uint32_t port,
                            size_t *ret_read_size, size_t *ret_write_size)
{
        VbusVchan *v = NULL;
        int r;

        if (!ret_vchan || !h || !h->xs || !h->gnttab || server_domid > VBUS_VCHAN_DOMID_MAX ||
            !vbus__vchan_path_is_valid(path) || !ret_read_size || !ret_write_size)
                return -EINVAL;
        r = vchan_new(&v, false, server_domid, path, h);
        if (r < 0 || !v)
                return r < 0 ? r : -EIO;
        r = client_open_page(v, ring_ref, port);
        if (r < 0) {
                vbus__vchan_free(v);
                return r;
        }
        /* Ours to read is the right ring, ours to write the left (client_map_rings). */
        *ret_read_size = (size_t)1 << v->layout.order[VBUS_VCHAN_RIGHT];
        *ret_write_size = (size_t)1 << v->layout.order[VBUS_VCHAN_LEFT];
        *ret_vchan = v;
        return 0;
}

int vbus__vchan_client_map_rings(VbusVchan *v)
{
        if (!v || v->server || v->closed || !v->page || v->ring_ready || !v->grants)
                return -EINVAL;
        return client_map_rings(v);
}

int vbus__vchan_client_new_with(VbusVchan **ret_vchan, const VbusVchanHandles *h,
                                uint32_t server_domid, const char *path)
{
        uint32_t ring_ref = 0, remote_port = 0;
        size_t rd = 0, wr = 0;
        VbusVchan *v = NULL;
        int r;

        if (!ret_vchan || !h || !h->xs || !h->gnttab || server_domid > VBUS_VCHAN_DOMID_MAX ||
            !vbus__vchan_path_is_valid(path))
                return -EINVAL;
        /* The keys first, on the shared connection: a try that finds none opens nothing. */
        r = client_read_keys(h->xs, path, &ring_ref, &remote_port);
        if (r < 0)
                return r;
        r = vbus__vchan_client_open(&v, h, server_domid, path, ring_ref, remote_port, &rd, &wr);
        if (r < 0)
                return r;
        r = client_map_rings(v);
        if (r < 0) {
                vbus__vchan_free(v);
                return r;
        }
        *ret_vchan = v;
        return 0;
}

bool vbus__vchan_error_is_local(int r)
{
        switch (r) {
        case -EMFILE:  /* this process's descriptors */
        case -ENFILE:  /* the host's descriptors */
        case -ENOMEM:  /* memory, or (Xen) the maptrack or grant table of our domain */
        case -ENOSPC:  /* (Xen) no free event-channel port in our domain */
        case -ENOBUFS: /* kernel buffers */
        case -ENODEV:  /* no Xen driver here */
        case -EAGAIN:  /* xenstore busy */
        case -EINTR:
                return true;
        default:
                return false;
        }
}

static void vchan_unmap(VbusVchan *v)
{
        for (int i = 0; i < 2; i++) {
                if (!v->ext[i])
                        continue;
                if (v->server)
                        xengntshr_unshare(v->gntshr, v->ext[i], v->layout.n_pages[i]);
                else
                        xengnttab_unmap(v->gnttab, v->ext[i], v->layout.n_pages[i]);
                v->ext[i] = NULL;
        }
        if (v->page) {
                if (v->server)
                        xengntshr_unshare(v->gntshr, v->page, 1);
                else
                        xengnttab_unmap(v->gnttab, v->page, 1);
                v->page = NULL;
        }
}

void vbus__vchan_close(VbusVchan *v)
{
        if (!v || v->closed)
                return;
        v->closed = true;
        if (v->ring_ready) {
                if (vbus__vchan_ring_flush(&v->ring))
                        vchan_notify(v);
                vbus__vchan_ring_set_live(&v->ring, VBUS_VCHAN_LIVE_EXITED);
                vchan_notify(v);
        }
        vchan_unmap(v);
        if (v->server && v->xs && v->port_bound)
                xs_rm(v->xs, XBT_NULL, v->path);
        if (v->port_bound) {
                xenevtchn_unbind(v->evtchn, v->port);
                v->port_bound = false;
        }
}

VbusVchan *vbus__vchan_free(VbusVchan *v)
{
        if (!v)
                return NULL;
        vbus__vchan_close(v);
        if (v->gntshr)
                xengntshr_close(v->gntshr);
        if (v->gnttab && !v->borrowed)
                xengnttab_close(v->gnttab);
        if (v->evtchn && !v->shared_evtchn)
                xenevtchn_close(v->evtchn);
        free(v->grants);
        if (v->xs && !v->borrowed)
                xs_close(v->xs);
        free(v->path);
        free(v);
        return NULL;
}

int vbus__vchan_get_fd(const VbusVchan *v)
{
        return xenevtchn_fd(v->evtchn);
}

/* Takes one pending event, if any, and unmasks the port. Return: 1, 0 (none), or -errno. */
static int take_event(VbusVchan *v)
{
        xenevtchn_port_or_error_t p = xenevtchn_pending(v->evtchn);

        if (p < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : errno_or(-EIO);
        if (xenevtchn_unmask(v->evtchn, (evtchn_port_t)p) < 0)
                return errno_or(-EIO);
        v->stats.n_events++;
        return 1;
}

/*
 * One event at most, and no poll() to ask first (the fd is non-blocking). That is all there can
 * be: every event of this vchan comes on its one port, and once xenevtchn_pending() has
 * returned the port it stays masked until xenevtchn_unmask(), so the notifies that arrive
 * meanwhile merge into the one event that the unmask raises again (Xen: the pending bit set
 * while masked; xensim: the doorbell's counter). The caller reads the ring after this returns,
 * i.e. after the unmask: it sees every write notified before the unmask, and a write notified
 * after it leaves the fd readable for the next poll. Not draining loses nothing but costs at
 * worst one spurious wake-up; draining cost a poll(0) per event, and a poll(0) to find none.
 */
int vbus__vchan_process(VbusVchan *v)
{
        if (v->closed)
                return -EPIPE;
        /* On a shared handle the owner took the event (vbus__vchan_next_event()). */
        return v->shared_evtchn ? 0 : take_event(v);
}

int vbus__vchan_next_event(const VbusVchanHandles *h, uint32_t *ret_port)
{
        xenevtchn_port_or_error_t p;

        if (!h || !h->evtchn || !ret_port)
                return -EINVAL;
        errno = 0;
        p = xenevtchn_pending(h->evtchn);
        if (p < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : errno_or(-EIO);
        /* Unmasked before the caller reads the ring: see vbus__vchan_process(). A port
         * unbound meanwhile may refuse; the event meant nothing then. */
        (void)xenevtchn_unmask(h->evtchn, (evtchn_port_t)p);
        *ret_port = (uint32_t)p;
        return 1;
}

uint32_t vbus__vchan_get_port(const VbusVchan *v)
{
        return (uint32_t)v->port;
}

bool vbus__vchan_has_shared_events(const VbusVchan *v)
{
        return v->shared_evtchn;
}

int vbus__vchan_wait(VbusVchan *v, int timeout_ms)
{
        struct pollfd pfd = {.fd = xenevtchn_fd(v->evtchn), .events = POLLIN};
        int r;

        if (v->shared_evtchn)
                return -EOPNOTSUPP; /* its events are the owner's to take */
        r = vbus__vchan_flush(v);
        if (r < 0)
                return r;
        do {
                r = poll(&pfd, 1, timeout_ms);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (r == 0)
                return -ETIMEDOUT;
        r = take_event(v);
        return r < 0 ? r : 0;
}

VbusVchanPeer vbus__vchan_get_peer(VbusVchan *v)
{
        if (v->closed)
                return VBUS_VCHAN_PEER_CLOSED;
        return vbus__vchan_ring_peer(&v->ring);
}

size_t vbus__vchan_get_read_size(const VbusVchan *v)
{
        return vbus__vchan_ring_read_size(&v->ring);
}

size_t vbus__vchan_get_write_size(const VbusVchan *v)
{
        return vbus__vchan_ring_write_size(&v->ring);
}

void vbus__vchan_get_stats(const VbusVchan *v, VbusVchanStats *ret_stats)
{
        *ret_stats = v->stats;
        ret_stats->n_requests = v->ring.n_requests;
}

ssize_t vbus__vchan_peek(VbusVchan *v, size_t want, struct iovec ret_iov[2])
{
        if (v->closed)
                return -EPIPE;
        return vbus__vchan_ring_peek(&v->ring, want, ret_iov);
}

int vbus__vchan_consume(VbusVchan *v, size_t n)
{
        if (v->closed)
                return -EPIPE;
        return vbus__vchan_ring_consume(&v->ring, n);
}

ssize_t vbus__vchan_reserve(VbusVchan *v, size_t want, struct iovec ret_iov[2])
{
        if (v->closed)
                return -EPIPE;
        return vbus__vchan_ring_reserve(&v->ring, want, ret_iov);
}

int vbus__vchan_commit(VbusVchan *v, size_t n)
{
        if (v->closed)
                return -EPIPE;
        return vbus__vchan_ring_commit(&v->ring, n);
}

int vbus__vchan_flush(VbusVchan *v)
{
        if (v->closed)
                return -EPIPE;
        if (vbus__vchan_ring_flush(&v->ring)) {
                if (xenevtchn_notify(v->evtchn, v->port) < 0)
                        return errno_or(-EIO);
                v->stats.n_notify++;
        }
        return 0;
}

bool vbus__vchan_owes_flush(const VbusVchan *v)
{
        return !v->closed && vbus__vchan_ring_owes(&v->ring);
}

ssize_t vbus__vchan_read(VbusVchan *v, void *buf, size_t n)
{
        ssize_t k;
        int r;

        if (v->closed)
                return -EPIPE;
        k = vbus__vchan_ring_read(&v->ring, buf, n);
        if (k > 0) {
                r = vbus__vchan_flush(v);
                if (r < 0)
                        return r;
        }
        return k;
}

ssize_t vbus__vchan_write(VbusVchan *v, const void *buf, size_t n)
{
        ssize_t k;
        int r;

        if (v->closed)
                return -EPIPE;
        k = vbus__vchan_ring_write(&v->ring, buf, n);
        if (k > 0) {
                r = vbus__vchan_flush(v);
                if (r < 0)
                        return r;
        }
        return k;
}

size_t vbus__vchan_get_unconsumed(VbusVchan *v)
{
        if (v->closed)
                return 0;
        return vbus__vchan_ring_unconsumed(&v->ring);
}
