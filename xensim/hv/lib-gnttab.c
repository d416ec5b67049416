/*
 * Drop-in libxengnttab.so.1 for xensim: xengnttab_* (mapping other domains' grants, like
 * /dev/xen/gntdev) and xengntshr_* (granting own pages, like /dev/xen/gntalloc) of Xen 4.17
 * on top of xensim-hvd. Granted pages are shared memory files created by the daemon; a map
 * request returns, for each page, which file and page to map, and the library lays them out
 * contiguously with MAP_FIXED over a reserved range. Each live share or map is remembered
 * locally by address so that unmap/unshare can name it to the daemon, which performs the
 * unmap-notify (and performs it too if this process dies without unmapping).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xengnttab.h>

#include "hv-client.h"
#include "hv-limits.h"

#define XENGNTTAB_EXPORT __attribute__((visibility("default")))

typedef struct Region {
        struct Region *next;
        void *addr;
        uint32_t n_pages;
        uint32_t id; /* the daemon's share or map id */
} Region;

struct xengntdev_handle {
        HvClient client;
        pthread_mutex_t lock; /* guards regions */
        Region *regions;
};

static void *fail_null(int r)
{
        errno = -r;
        return NULL;
}

static xengnttab_handle *handle_open(unsigned open_flags)
{
        xengnttab_handle *h = calloc(1, sizeof(*h));
        int r;

        if (!h)
                return NULL;
        /* Like the Linux back-end of libxengnttab: close-on-exec always. */
        r = hv_client_open(&h->client, 1);
        if (r < 0) {
                free(h);
                return fail_null(r);
        }
        pthread_mutex_init(&h->lock, NULL);
        return h;
}

static int handle_close(xengnttab_handle *h)
{
        if (!h)
                return 0;
        /* Mappings stay valid after close, as with gntdev; the daemon now owns their fate. */
        while (h->regions) {
                Region *g = h->regions;

                h->regions = g->next;
                free(g);
        }
        hv_client_close(&h->client);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return 0;
}

static int region_add(xengnttab_handle *h, void *addr, uint32_t n_pages, uint32_t id)
{
        Region *g = calloc(1, sizeof(*g));

        if (!g)
                return -ENOMEM;
        *g = (Region){.addr = addr, .n_pages = n_pages, .id = id};
        pthread_mutex_lock(&h->lock);
        g->next = h->regions;
        h->regions = g;
        pthread_mutex_unlock(&h->lock);
        return 0;
}

/* Take the region that starts at addr and spans exactly count pages out of the list. */
static Region *region_take(xengnttab_handle *h, void *addr, uint32_t count)
{
        Region *g = NULL;

        pthread_mutex_lock(&h->lock);
        for (Region **p = &h->regions; *p; p = &(*p)->next) {
                if ((*p)->addr == addr && (*p)->n_pages == count) {
                        g = *p;
                        *p = g->next;
                        break;
                }
        }
        pthread_mutex_unlock(&h->lock);
        return g;
}

/* Tell the daemon an object is gone (it runs the unmap-notify), then drop the pages. */
static int region_release(xengnttab_handle *h, uint32_t op, void *addr, uint32_t count)
{
        Region *g = region_take(h, addr, count);
        HvMsg req = {.op = op}, rep;
        int r;

        if (!g) {
                errno = EINVAL;
                return -1;
        }
        req.arg[0] = g->id;
        r = hv_client_call(&h->client, &req, NULL, &rep, NULL, 0, NULL, 0, NULL);
        munmap(addr, (size_t)count * HV_PAGE_SIZE);
        free(g);
        if (r < 0) {
                errno = -r;
                return -1;
        }
        return 0;
}

/* ---- xengnttab: mapping other domains' grants --------------------------------------------- */

XENGNTTAB_EXPORT xengnttab_handle *xengnttab_open(struct xentoollog_logger *logger,
                                                  unsigned open_flags)
{
        return handle_open(open_flags);
}

XENGNTTAB_EXPORT int xengnttab_close(xengnttab_handle *xgt)
{
        return handle_close(xgt);
}

XENGNTTAB_EXPORT int xengnttab_fd(xengnttab_handle *xgt)
{
        return xgt->client.fd;
}

/* Lay the pages out: runs of consecutive pages of one file become one mmap. */
static int map_layout(uint8_t *base, uint32_t count, const uint32_t *where, const int *fds,
                      size_t n_fds, int prot)
{
        uint32_t i = 0;

        while (i < count) {
                uint32_t fdi = where[i] >> 16, page = where[i] & 0xffffu, run = 1;

                if (fdi >= n_fds)
                        return -EPROTO;
                while (i + run < count && where[i + run] >> 16 == fdi &&
                       (where[i + run] & 0xffffu) == page + run)
                        run++;
                if (mmap(base + (size_t)i * HV_PAGE_SIZE, (size_t)run * HV_PAGE_SIZE, prot,
                         MAP_SHARED | MAP_FIXED, fds[fdi],
                         (off_t)page * HV_PAGE_SIZE) == MAP_FAILED)
                        return -errno;
                i += run;
        }
        return 0;
}

static void *map_refs(xengnttab_handle *xgt, uint32_t count, const uint32_t *domids, uint32_t domid,
                      const uint32_t *refs, int prot, uint32_t notify_offset, uint32_t notify_port)
{
        HvMsg req = {.op = HV_OP_GNT_MAP}, rep = {0}, un = {.op = HV_OP_GNT_UNMAP};
        uint32_t *words = NULL;
        int fds[HV_FDS_PER_MSG];
        size_t n_fds = 0;
        void *base = MAP_FAILED;
        int r;

        if (count == 0 || count > HV_PAGES_PER_REQ || !refs)
                return fail_null(-EINVAL);
        if (prot & ~(PROT_READ | PROT_WRITE))
                return fail_null(-EINVAL);
        words = malloc(sizeof(*words) * 2u * count);
        if (!words)
                return fail_null(-ENOMEM);
        for (size_t i = 0; i < count; i++) {
                words[2 * i] = domids ? domids[i] : domid;
                words[2 * i + 1] = refs[i];
        }
        req.arg[0] = count;
        req.arg[1] = (prot & PROT_WRITE) != 0;
        req.arg[2] = notify_offset;
        req.arg[3] = notify_port;
        req.n_data = 2u * count;
        r = hv_client_call(&xgt->client, &req, words, &rep, words, count, fds, HV_FDS_PER_MSG,
                           &n_fds);
        /* Mapped in the daemon, but this process could not take the pages' descriptors (it is
         * out of them): undo the mapping there, or its unmap-notify would hold the port. */
        if (r == -EMFILE && rep.op == req.op && rep.err == 0)
                goto out_unmap_daemon;
        if (r < 0)
                goto out;
        if (rep.n_data != count || rep.arg[1] != n_fds) {
                r = -EPROTO;
                goto out_unmap_daemon;
        }
        base = mmap(NULL, (size_t)count * HV_PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                    0);
        if (base == MAP_FAILED) {
                r = -errno;
                goto out_unmap_daemon;
        }
        r = map_layout(base, count, words, fds, n_fds, prot);
        if (r < 0)
                goto out_unmap_daemon;
        r = region_add(xgt, base, count, rep.arg[0]);
        if (r < 0)
                goto out_unmap_daemon;
        goto out;

out_unmap_daemon:
        un.arg[0] = rep.arg[0];
        (void)hv_client_call(&xgt->client, &un, NULL, &rep, NULL, 0, NULL, 0, NULL);
        if (base != MAP_FAILED)
                munmap(base, (size_t)count * HV_PAGE_SIZE);
        base = MAP_FAILED;
out:
        for (size_t i = 0; i < n_fds; i++)
                close(fds[i]);
        free(words);
        if (r < 0)
                return fail_null(r);
        return base;
}

XENGNTTAB_EXPORT void *xengnttab_map_grant_ref(xengnttab_handle *xgt, uint32_t domid, uint32_t ref,
                                               int prot)
{
        return map_refs(xgt, 1, NULL, domid, &ref, prot, HV_NOTIFY_NONE, HV_NOTIFY_NONE);
}

XENGNTTAB_EXPORT void *xengnttab_map_grant_refs(xengnttab_handle *xgt, uint32_t count,
                                                uint32_t *domids, uint32_t *refs, int prot)
{
        if (!domids)
                return fail_null(-EINVAL);
        return map_refs(xgt, count, domids, 0, refs, prot, HV_NOTIFY_NONE, HV_NOTIFY_NONE);
}

XENGNTTAB_EXPORT void *xengnttab_map_domain_grant_refs(xengnttab_handle *xgt, uint32_t count,
                                                       uint32_t domid, uint32_t *refs, int prot)
{
        return map_refs(xgt, count, NULL, domid, refs, prot, HV_NOTIFY_NONE, HV_NOTIFY_NONE);
}

XENGNTTAB_EXPORT void *xengnttab_map_grant_ref_notify(xengnttab_handle *xgt, uint32_t domid,
                                                      uint32_t ref, int prot,
                                                      uint32_t notify_offset,
                                                      evtchn_port_t notify_port)
{
        return map_refs(xgt, 1, NULL, domid, &ref, prot, notify_offset, notify_port);
}

XENGNTTAB_EXPORT int xengnttab_unmap(xengnttab_handle *xgt, void *start_address, uint32_t count)
{
        return region_release(xgt, HV_OP_GNT_UNMAP, start_address, count);
}

XENGNTTAB_EXPORT int xengnttab_set_max_grants(xengnttab_handle *xgt, uint32_t nr_grants)
{
        /* Current Linux gntdev ignores this limit too; the daemon enforces its own. */
        return 0;
}

XENGNTTAB_EXPORT int xengnttab_grant_copy(xengnttab_handle *xgt, uint32_t count,
                                          xengnttab_grant_copy_segment_t *segs)
{
        /* Not emulated: what the Xen library returns on systems without grant copy. */
        errno = ENOSYS;
        return -1;
}

XENGNTTAB_EXPORT int xengnttab_dmabuf_exp_from_refs(xengnttab_handle *xgt, uint32_t domid,
                                                    uint32_t flags, uint32_t count,
                                                    const uint32_t *refs, uint32_t *fd)
{
        errno = EOPNOTSUPP;
        return -1;
}

XENGNTTAB_EXPORT int xengnttab_dmabuf_exp_wait_released(xengnttab_handle *xgt, uint32_t fd,
                                                        uint32_t wait_to_ms)
{
        errno = EOPNOTSUPP;
        return -1;
}

XENGNTTAB_EXPORT int xengnttab_dmabuf_imp_to_refs(xengnttab_handle *xgt, uint32_t domid,
                                                  uint32_t fd, uint32_t count, uint32_t *refs)
{
        errno = EOPNOTSUPP;
        return -1;
}

XENGNTTAB_EXPORT int xengnttab_dmabuf_imp_release(xengnttab_handle *xgt, uint32_t fd)
{
        errno = EOPNOTSUPP;
        return -1;
}

/* ---- xengntshr: granting our own pages ---------------------------------------------------- */

XENGNTTAB_EXPORT xengntshr_handle *xengntshr_open(struct xentoollog_logger *logger,
                                                  unsigned open_flags)
{
        return handle_open(open_flags);
}

XENGNTTAB_EXPORT int xengntshr_close(xengntshr_handle *xgs)
{
        return handle_close(xgs);
}

XENGNTTAB_EXPORT int xengntshr_fd(xengntshr_handle *xgs)
{
        return xgs->client.fd;
}

static void *share(xengntshr_handle *xgs, uint32_t domid, int count, uint32_t *refs, int writable,
                   uint32_t notify_offset, uint32_t notify_port)
{
        HvMsg req = {.op = HV_OP_GNT_SHARE}, rep, un = {.op = HV_OP_GNT_UNSHARE};
        uint32_t *got;
        size_t n_fds = 0;
        void *addr = MAP_FAILED;
        int fd = -1, r;

        if (count <= 0 || (uint32_t)count > HV_PAGES_PER_REQ || !refs)
                return fail_null(-EINVAL);
        got = malloc(sizeof(*got) * (size_t)count);
        if (!got)
                return fail_null(-ENOMEM);
        req.arg[0] = domid;
        req.arg[1] = (uint32_t)count;
        req.arg[2] = writable != 0;
        req.arg[3] = notify_offset;
        req.arg[4] = notify_port;
        r = hv_client_call(&xgs->client, &req, NULL, &rep, got, (size_t)count, &fd, 1, &n_fds);
        if (r < 0)
                goto out;
        if (n_fds != 1 || rep.n_data != (uint32_t)count) {
                r = -EPROTO;
                goto out_unshare;
        }
        addr = mmap(NULL, (size_t)count * HV_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (addr == MAP_FAILED) {
                r = -errno;
                goto out_unshare;
        }
        r = region_add(xgs, addr, (uint32_t)count, rep.arg[0]);
        if (r < 0)
                goto out_unshare;
        memcpy(refs, got, sizeof(*got) * (size_t)count);
        goto out;

out_unshare:
        un.arg[0] = rep.arg[0];
        (void)hv_client_call(&xgs->client, &un, NULL, &rep, NULL, 0, NULL, 0, NULL);
        if (addr != MAP_FAILED)
                munmap(addr, (size_t)count * HV_PAGE_SIZE);
        addr = MAP_FAILED;
out:
        if (fd >= 0)
                close(fd);
        free(got);
        if (r < 0)
                return fail_null(r);
        return addr;
}

XENGNTTAB_EXPORT void *xengntshr_share_pages(xengntshr_handle *xgs, uint32_t domid, int count,
                                             uint32_t *refs, int writable)
{
        return share(xgs, domid, count, refs, writable, HV_NOTIFY_NONE, HV_NOTIFY_NONE);
}

XENGNTTAB_EXPORT void *xengntshr_share_page_notify(xengntshr_handle *xgs, uint32_t domid,
                                                   uint32_t *ref, int writable,
                                                   uint32_t notify_offset,
                                                   evtchn_port_t notify_port)
{
        return share(xgs, domid, 1, ref, writable, notify_offset, notify_port);
}

XENGNTTAB_EXPORT int xengntshr_unshare(xengntshr_handle *xgs, void *start_address, uint32_t count)
{
        return region_release(xgs, HV_OP_GNT_UNSHARE, start_address, count);
}
