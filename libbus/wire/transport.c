/* SPDX-License-Identifier: MIT */
/*
 * transport: the vchan and UNIX-socket byte streams behind one interface. The vchan side is a
 * thin layer over vchan.h; the UNIX side keeps two private linear buffers, compacted when the
 * free space at their end runs short, so peek and reserve always return one contiguous piece.
 */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int vbus__transport_init_unix(VbusTransport *t, int fd)
{
        int flags;

        if (!t || fd < 0)
                return -EINVAL;
        *t = (VbusTransport)VBUS_TRANSPORT_NULL;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        t->in = malloc(VBUS_TRANSPORT_UNIX_BUFFER);
        t->out = malloc(VBUS_TRANSPORT_UNIX_BUFFER);
        if (!t->in || !t->out) {
                free(t->in);
                free(t->out);
                t->in = t->out = NULL;
                return -ENOMEM;
        }
        t->kind = VBUS_TRANSPORT_UNIX;
        t->size = VBUS_TRANSPORT_UNIX_BUFFER;
        t->fd = fd;
        return 0;
}

int vbus__transport_init_vchan(VbusTransport *t, VbusVchan *vchan)
{
        if (!t || !vchan)
                return -EINVAL;
        *t = (VbusTransport)VBUS_TRANSPORT_NULL;
        t->kind = VBUS_TRANSPORT_VCHAN;
        t->vchan = vchan;
        return 0;
}

void vbus__transport_deinit(VbusTransport *t)
{
        if (!t)
                return;
        if (t->fd >= 0)
                close(t->fd);
        t->vchan = vbus__vchan_free(t->vchan);
        free(t->in);
        free(t->out);
        *t = (VbusTransport)VBUS_TRANSPORT_NULL;
}

int vbus__transport_get_fd(const VbusTransport *t)
{
        return t->kind == VBUS_TRANSPORT_VCHAN ? vbus__vchan_get_fd(t->vchan) : t->fd;
}

uint32_t vbus__transport_get_events(const VbusTransport *t)
{
        if (t->kind == VBUS_TRANSPORT_UNIX && t->out_end > t->out_start)
                return POLLIN | POLLOUT;
        return POLLIN;
}

static int unix_fail(VbusTransport *t, int error)
{
        if (!t->error)
                t->error = error;
        return t->error;
}

static int unix_send(VbusTransport *t)
{
        while (t->out_end > t->out_start) {
                ssize_t n = send(t->fd, t->out + t->out_start, t->out_end - t->out_start,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return 0;
                if (n < 0)
                        return unix_fail(t, errno == ECONNRESET ? -EPIPE : -errno);
                t->out_start += (size_t)n;
        }
        t->out_start = t->out_end = 0;
        return 0;
}

static int unix_recv(VbusTransport *t)
{
        if (t->in_start > 0 && t->in_start == t->in_end)
                t->in_start = t->in_end = 0;
        if (t->in_end == t->size && t->in_start > 0) {
                memmove(t->in, t->in + t->in_start, t->in_end - t->in_start);
                t->in_end -= t->in_start;
                t->in_start = 0;
        }
        while (!t->eof && t->in_end < t->size) {
                ssize_t n = recv(t->fd, t->in + t->in_end, t->size - t->in_end, MSG_DONTWAIT);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return 0;
                if (n < 0)
                        return unix_fail(t, errno == ECONNRESET ? -EPIPE : -errno);
                if (n == 0)
                        t->eof = true;
                t->in_end += (size_t)n;
        }
        return 0;
}

int vbus__transport_process(VbusTransport *t)
{
        int r;

        /* A failure is reported by peek only once every byte received before it has been read,
         * so the peer's last frames are never lost (for a vchan: the final re-check). */
        if (t->error)
                return 0;
        if (t->kind == VBUS_TRANSPORT_VCHAN) {
                r = vbus__vchan_process(t->vchan);
                if (r < 0)
                        t->error = r;
                return 0;
        }
        if (unix_recv(t) == 0)
                (void)unix_send(t);
        return 0;
}

ssize_t vbus__transport_peek(VbusTransport *t, struct iovec ret_iov[2])
{
        if (t->kind == VBUS_TRANSPORT_VCHAN) {
                ssize_t n = vbus__vchan_peek(t->vchan, 1, ret_iov);

                if (n == 0)
                        return -EPIPE;
                if (n == -EAGAIN && t->error)
                        return t->error == -EPIPE ? -EPIPE : t->error;
                return n;
        }
        /* A failure of this read is kept (unix_fail) and returned below once the bytes it read
         * before failing have been taken: a peer that closes with our bytes unread shows as
         * ECONNRESET just after its last bytes, in the same pass. */
        if (t->in_end == t->in_start)
                (void)unix_recv(t);
        if (t->in_end > t->in_start) {
                ret_iov[0].iov_base = t->in + t->in_start;
                ret_iov[0].iov_len = t->in_end - t->in_start;
                ret_iov[1].iov_base = NULL;
                ret_iov[1].iov_len = 0;
                return (ssize_t)ret_iov[0].iov_len;
        }
        if (t->error)
                return t->error;
        return t->eof ? -EPIPE : -EAGAIN;
}

int vbus__transport_consume(VbusTransport *t, size_t n)
{
        if (t->kind == VBUS_TRANSPORT_VCHAN)
                return vbus__vchan_consume(t->vchan, n);
        if (n > t->in_end - t->in_start)
                return -EINVAL;
        t->in_start += n;
        return 0;
}

ssize_t vbus__transport_reserve(VbusTransport *t, size_t want, struct iovec ret_iov[2])
{
        size_t free_end;

        if (t->kind == VBUS_TRANSPORT_VCHAN)
                return vbus__vchan_reserve(t->vchan, want, ret_iov);
        if (t->error)
                return t->error;
        free_end = t->size - t->out_end;
        /* Short of room: hand what is buffered to the socket first, as a ring's reader would
         * have drained it. Only when the socket itself is full does the writer have to wait (for
         * POLLOUT, which vbus__transport_get_events() then asks for). */
        if (free_end < want && t->out_end > t->out_start) {
                (void)unix_send(t);
                free_end = t->size - t->out_end;
        }
        if (free_end < want && t->out_start > 0) {
                memmove(t->out, t->out + t->out_start, t->out_end - t->out_start);
                t->out_end -= t->out_start;
                t->out_start = 0;
                free_end = t->size - t->out_end;
        }
        if (free_end == 0)
                return -EAGAIN;
        ret_iov[0].iov_base = t->out + t->out_end;
        ret_iov[0].iov_len = free_end;
        ret_iov[1].iov_base = NULL;
        ret_iov[1].iov_len = 0;
        return (ssize_t)free_end;
}

int vbus__transport_commit(VbusTransport *t, size_t n)
{
        if (t->kind == VBUS_TRANSPORT_VCHAN)
                return vbus__vchan_commit(t->vchan, n);
        if (n > t->size - t->out_end)
                return -EINVAL;
        t->out_end += n;
        return 0;
}

int vbus__transport_flush(VbusTransport *t)
{
        if (t->kind == VBUS_TRANSPORT_VCHAN)
                return vbus__vchan_flush(t->vchan);
        if (t->error)
                return t->error;
        return unix_send(t);
}

bool vbus__transport_owes_flush(VbusTransport *t)
{
        return t->kind == VBUS_TRANSPORT_VCHAN && vbus__vchan_owes_flush(t->vchan);
}

bool vbus__transport_has_pending(VbusTransport *t)
{
        if (t->kind == VBUS_TRANSPORT_VCHAN)
                return vbus__vchan_get_unconsumed(t->vchan) > 0;
        return t->out_end > t->out_start;
}
