/* SPDX-License-Identifier: MIT */
/*
 * vchan-xs: xenstore access over libxenstore (see vchan-xs.h).
 */
#include "vchan-xs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

#include "vchan.h"

struct VbusXs {
        struct xs_handle *h;
        xengnttab_handle *gnttab; /* opened by the first vbus__xs_vchan_handles() */
        xenevtchn_handle *evtchn; /* likewise, non-blocking */
};

/* errno after a failed libxenstore call; EIO if it left none. */
static int xs_errno(void)
{
        return errno ? -errno : -EIO;
}

int vbus__xs_open(VbusXs **ret)
{
        VbusXs *xs = calloc(1, sizeof(*xs));

        if (!xs)
                return -ENOMEM;
        errno = 0;
        xs->h = xs_open(0);
        if (!xs->h) {
                int r = xs_errno();

                free(xs);
                return r;
        }
        *ret = xs;
        return 0;
}

VbusXs *vbus__xs_close(VbusXs *xs)
{
        if (!xs)
                return NULL;
        if (xs->gnttab)
                xengnttab_close(xs->gnttab);
        if (xs->evtchn)
                xenevtchn_close(xs->evtchn);
        xs_close(xs->h);
        free(xs);
        return NULL;
}

int vbus__xs_get_fd(VbusXs *xs)
{
        return xs_fileno(xs->h);
}

static int xs_read_in(VbusXs *xs, xs_transaction_t t, const char *path, char **ret, size_t *ret_len)
{
        unsigned int len = 0;
        char *v;

        errno = 0;
        v = xs_read(xs->h, t, path, &len);
        if (!v)
                return xs_errno();
        *ret = v; /* libxenstore appends a NUL */
        *ret_len = len;
        return 0;
}

int vbus__xs_read(VbusXs *xs, const char *path, char **ret, size_t *ret_len)
{
        return xs_read_in(xs, XBT_NULL, path, ret, ret_len);
}

int vbus__xs_read_protected(VbusXs *xs, const char *path, unsigned int guest, unsigned int trusted,
                            char **ret, size_t *ret_len)
{
        struct xs_permissions *perms;
        unsigned int n = 0;
        bool ok;

        errno = 0;
        perms = xs_get_permissions(xs->h, XBT_NULL, path, &n);
        if (!perms)
                return xs_errno();
        ok = n > 0 && perms[0].id == trusted && !(perms[0].perms & XS_PERM_WRITE);
        for (unsigned int i = 1; ok && i < n; i++)
                ok = perms[i].id != guest || !(perms[i].perms & XS_PERM_WRITE);
        free(perms);
        if (!ok)
                return -EPERM;
        /* Only the owner (@trusted) could change the permissions between the two reads. */
        return xs_read_in(xs, XBT_NULL, path, ret, ret_len);
}

int vbus__xs_directory(VbusXs *xs, const char *path, char ***ret, unsigned int *ret_n)
{
        unsigned int n = 0;
        char **v;

        errno = 0;
        v = xs_directory(xs->h, XBT_NULL, path, &n);
        if (!v)
                return xs_errno();
        *ret = v;
        *ret_n = n;
        return 0;
}

int vbus__xs_watch(VbusXs *xs, const char *path, const char *token)
{
        errno = 0;
        return xs_watch(xs->h, path, token) ? 0 : xs_errno();
}

int vbus__xs_unwatch(VbusXs *xs, const char *path, const char *token)
{
        errno = 0;
        return xs_unwatch(xs->h, path, token) ? 0 : xs_errno();
}

int vbus__xs_next_event(VbusXs *xs, char **ret_token)
{
        char **w = xs_check_watch(xs->h);
        char *token;

        if (!w)
                return 0;
        token = strdup(w[XS_WATCH_TOKEN]);
        free(w);
        if (!token)
                return 0; /* out of memory: the event is lost, as a dropped watch would be */
        *ret_token = token;
        return 1;
}

int vbus__xs_remove_if(VbusXs *xs, const char *path, const char *key, const char *expected)
{
        char full[VBUS_VCHAN_PATH_MAX + 1];
        int r = 0;

        if (snprintf(full, sizeof(full), "%s/%s", path, key) >= (int)sizeof(full))
                return -ENAMETOOLONG;
        for (int attempt = 0; attempt < VBUS_XS_REMOVE_ATTEMPTS; attempt++) {
                xs_transaction_t t = xs_transaction_start(xs->h);
                size_t len = 0;
                char *v = NULL;
                bool same;

                if (t == XBT_NULL)
                        return xs_errno();
                same = xs_read_in(xs, t, full, &v, &len) == 0 && v && strlen(expected) == len &&
                       memcmp(v, expected, len) == 0;
                free(v);
                if (same)
                        (void)xs_rm(xs->h, t, path);
                errno = 0;
                if (xs_transaction_end(xs->h, t, false))
                        return same ? 1 : 0;
                r = xs_errno();
                if (r != -EAGAIN)
                        return r;
        }
        return r;
}

/* Opens the shared event-channel handle, non-blocking (xenevtchn_pending() then answers
 * EAGAIN when no event is there, on Linux's /dev/xen/evtchn and on xensim alike). */
static int xs_open_evtchn(VbusXs *xs)
{
        int fd, fl, r;

        errno = 0;
        xs->evtchn = xenevtchn_open(NULL, 0);
        if (!xs->evtchn)
                return errno > 0 ? -errno : -ENODEV;
        fd = xenevtchn_fd(xs->evtchn);
        fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
        if (fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0)
                return 0;
        r = errno > 0 ? -errno : -EIO;
        xenevtchn_close(xs->evtchn);
        xs->evtchn = NULL;
        return r;
}

int vbus__xs_vchan_handles(VbusXs *xs, VbusVchanHandles *ret)
{
        if (!xs->gnttab) {
                errno = 0;
                xs->gnttab = xengnttab_open(NULL, 0);
                if (!xs->gnttab)
                        return errno > 0 ? -errno : -ENODEV;
        }
        if (!xs->evtchn) {
                int r = xs_open_evtchn(xs);

                if (r < 0)
                        return r;
        }
        *ret = (VbusVchanHandles){.xs = xs->h, .gnttab = xs->gnttab, .evtchn = xs->evtchn};
        return 0;
}

int vbus__xs_vchan_keys(VbusXs *xs, const char *path, uint32_t *ret_ring_ref, uint32_t *ret_port)
{
        VbusVchanHandles h = {.xs = xs->h}; /* reading the keys needs no other handle */

        return vbus__vchan_client_keys(&h, path, ret_ring_ref, ret_port);
}

int vbus__xs_vchan_events_fd(VbusXs *xs)
{
        return xs->evtchn ? xenevtchn_fd(xs->evtchn) : -1;
}
