/*
 * Client connection to xensim-hvd (see hv-client.h). Linked into each drop-in library.
 */
#include "hv-client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int hv_client_open(HvClient *c, int cloexec)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        const char *path = getenv("XENSIM_HV_SOCKET");
        size_t len;

        c->fd = -1;
        if (!path || !path[0])
                return -ENOENT;
        len = strlen(path);
        if (len >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, len + 1);
        c->fd = socket(AF_UNIX, SOCK_SEQPACKET | (cloexec ? SOCK_CLOEXEC : 0), 0);
        if (c->fd < 0)
                return -errno;
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;

                close(c->fd);
                c->fd = -1;
                return r;
        }
        pthread_mutex_init(&c->lock, NULL);
        return 0;
}

void hv_client_close(HvClient *c)
{
        if (c->fd >= 0) {
                close(c->fd);
                pthread_mutex_destroy(&c->lock);
        }
        c->fd = -1;
}

static int client_send_locked(HvClient *c, const HvMsg *req, const uint32_t *data)
{
        int len = hv_proto_encode(req, data, c->buf, sizeof(c->buf));
        ssize_t n;

        if (len < 0)
                return len;
        do {
                n = send(c->fd, c->buf, (size_t)len, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return 0;
}

void hv_client_lock(HvClient *c)
{
        pthread_mutex_lock(&c->lock);
}

void hv_client_unlock(HvClient *c)
{
        pthread_mutex_unlock(&c->lock);
}

static void close_fds(const struct msghdr *mh)
{
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm;
             cm = CMSG_NXTHDR((struct msghdr *)mh, cm)) {
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                        size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

                        for (size_t i = 0; i < n; i++) {
                                int fd;

                                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
                                close(fd);
                        }
                }
        }
}

/*
 * Receive one message: header, data words and descriptors (new, closed here on error).
 * Returns the number of descriptors stored in fds (0 to max_fds, a small count such as
 * HV_FDS_PER_MSG),
 * -EAGAIN (with MSG_DONTWAIT), -ECONNRESET, -EPROTO or -errno. The count is the return value
 * rather than an out-parameter so that no caller can read a count that was not written: with
 * an out-parameter written only on success, gcc -O3 (a constant-propagated clone of this
 * function) could not tie the write to the return value and warned -Wmaybe-uninitialized.
 */
static int client_recv_one(HvClient *c, int flags, HvMsg *ret_msg, const uint8_t **ret_data,
                           int *fds, size_t max_fds)
{
        union {
                struct cmsghdr h;
                char b[CMSG_SPACE(sizeof(int) * HV_FDS_PER_MSG)];
        } ctl;
        struct iovec iov = {.iov_base = c->buf, .iov_len = sizeof(c->buf)};
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = ctl.b,
                .msg_controllen = sizeof(ctl.b),
        };
        size_t n_fds = 0;
        ssize_t n;

        do {
                n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | flags);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if (n == 0)
                return -ECONNRESET;
        /*
         * The control buffer holds HV_FDS_PER_MSG descriptors, the kernel's SCM_MAX_FD: a cut
         * there means the kernel could not install the descriptors in this process (it is at
         * RLIMIT_NOFILE), which is this process's shortage, as the real library would report
         * it, not a malformed reply.
         */
        if ((mh.msg_flags & MSG_CTRUNC) && !(mh.msg_flags & MSG_TRUNC)) {
                close_fds(&mh);
                if (hv_proto_decode(c->buf, (size_t)n, ret_msg, ret_data) < 0)
                        return -EPROTO;
                return -EMFILE; /* the message, without its descriptors */
        }
        if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
            hv_proto_decode(c->buf, (size_t)n, ret_msg, ret_data) < 0) {
                close_fds(&mh);
                return -EPROTO;
        }
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                size_t k;

                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                        continue;
                k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                if (n_fds + k > max_fds) {
                        /*
                         * close_fds() closes every descriptor of the message, those already
                         * copied to fds included: closing them here as well would close each
                         * twice (and the second close could hit a descriptor another thread
                         * has opened in between).
                         */
                        close_fds(&mh);
                        return -EPROTO;
                }
                memcpy(fds + n_fds, CMSG_DATA(cm), k * sizeof(int));
                n_fds += k;
        }
        return (int)n_fds;
}

/* Hand an asynchronous message to its handler. Returns 0 or -EPROTO. */
static int client_async(HvClient *c, const HvMsg *m, const int *fds, size_t n_fds)
{
        if (!c->on_async || n_fds > 1) {
                for (size_t i = 0; i < n_fds; i++)
                        close(fds[i]);
                return -EPROTO;
        }
        c->on_async(c->async_ctx, m, n_fds ? fds[0] : -1);
        return 0;
}

int hv_client_drain_async_locked(HvClient *c)
{
        for (;;) {
                /* Zeroed: clang-tidy 14's analyzer does not know errno > 0 after a failed
                 * recvmsg(), so it takes client_recv_one's -errno for a possible count. */
                int fds[HV_FDS_PER_MSG] = {0};
                size_t n_fds;
                const uint8_t *data = NULL;
                HvMsg m = {0};
                int r = client_recv_one(c, MSG_DONTWAIT, &m, &data, fds, HV_FDS_PER_MSG);

                if (r == -EAGAIN)
                        return 0;
                if (r < 0)
                        return r;
                n_fds = (size_t)r;
                if (!hv_proto_op_is_async(m.op)) {
                        for (size_t i = 0; i < n_fds; i++)
                                close(fds[i]);
                        return -EPROTO;
                }
                r = client_async(c, &m, fds, n_fds);
                if (r < 0)
                        return r;
        }
}

static int client_recv_locked(HvClient *c, uint32_t op, HvMsg *ret_reply, uint32_t *ret_data,
                              size_t max_data, int *ret_fds, size_t max_fds, size_t *ret_n_fds)
{
        /* Zeroed for clang-tidy's analyzer, as in hv_client_drain_async_locked(). */
        int fds[HV_FDS_PER_MSG] = {0};
        const uint8_t *data = NULL;
        size_t n_fds;
        HvMsg m = {0};
        int r;

        for (;;) {
                r = client_recv_one(c, 0, &m, &data, fds, HV_FDS_PER_MSG);
                /* An asynchronous message whose doorbell could not be received: as if the peer
                 * had none (the handle asks again before its next notify). */
                if (r == -EMFILE && hv_proto_op_is_async(m.op))
                        r = 0;
                /* A reply whose descriptors could not be received: the caller gets the reply
                 * with -EMFILE, so that it can undo what the daemon did (a mapping). */
                if (r == -EMFILE && m.op == op)
                        *ret_reply = m;
                if (r < 0)
                        return r;
                n_fds = (size_t)r;
                if (!hv_proto_op_is_async(m.op))
                        break;
                r = client_async(c, &m, fds, n_fds);
                if (r < 0)
                        return r;
        }
        if (m.op != op || m.n_data > max_data || n_fds > max_fds) {
                for (size_t i = 0; i < n_fds; i++)
                        close(fds[i]);
                return -EPROTO;
        }
        if (m.err != 0) {
                for (size_t i = 0; i < n_fds; i++)
                        close(fds[i]);
                return m.err > 0 && m.err < 4096 ? -m.err : -EPROTO;
        }
        for (size_t i = 0; i < m.n_data; i++)
                ret_data[i] = hv_proto_word(data, i);
        if (n_fds)
                memcpy(ret_fds, fds, n_fds * sizeof(int));
        *ret_reply = m;
        if (ret_n_fds)
                *ret_n_fds = n_fds;
        return 0;
}

int hv_client_call_locked(HvClient *c, const HvMsg *req, const uint32_t *data, HvMsg *ret_reply,
                          uint32_t *ret_data, size_t max_data, int *ret_fds, size_t max_fds,
                          size_t *ret_n_fds)
{
        int r = client_send_locked(c, req, data);

        if (r == 0)
                r = client_recv_locked(c, req->op, ret_reply, ret_data, max_data, ret_fds, max_fds,
                                       ret_n_fds);
        return r;
}

int hv_client_call(HvClient *c, const HvMsg *req, const uint32_t *data, HvMsg *ret_reply,
                   uint32_t *ret_data, size_t max_data, int *ret_fds, size_t max_fds,
                   size_t *ret_n_fds)
{
        int r;

        pthread_mutex_lock(&c->lock);
        r = hv_client_call_locked(c, req, data, ret_reply, ret_data, max_data, ret_fds, max_fds,
                                  ret_n_fds);
        pthread_mutex_unlock(&c->lock);
        return r;
}
