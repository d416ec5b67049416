/* SPDX-License-Identifier: MIT */
/*
 * rpc-bench: the vbus and plain-UNIX-socket halves of the RPC benchmark (bench/rpc/run starts
 * everything). A benchmark prints figures and asserts nothing.
 *
 *   rpc-bench vbus-serve SERVICE [--ready FILE]
 *       serves SERVICE (any method: the reply is the request's 64 bytes) until killed; creates
 *       FILE once the broker routes calls to it.
 *   rpc-bench vbus-call SERVICE/METHOD [--warm N] [--lat N] [--tput N]
 *       the two phases of rpc-common.h with vbus_call_start() (one call at a time: start, then
 *       vbus_conn_wait() until its callback ran, which is what vbus_call_sync() does).
 *   rpc-bench unix-relay DIR
 *       the middle process: listens on DIR/srv.sock and DIR/cli.sock, creates DIR/relay.ready,
 *       accepts one server then one caller, and copies bytes both ways (poll, one read of up
 *       to 64 KiB, one blocking write of all of it) until either side closes.
 *   rpc-bench unix-serve DIR
 *       connects to DIR/srv.sock and answers each 64-byte request with its 64 bytes, in one
 *       write per read.
 *   rpc-bench unix-call DIR [--warm N] [--lat N] [--tput N]
 *       connects to DIR/cli.sock and runs the two phases.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "rpc-common.h"

enum {
        START_TIMEOUT_US = 120 * 1000 * 1000,
        CALL_TIMEOUT_US = 30 * 1000 * 1000,
};

/* ---- vbus ---------------------------------------------------------------------------------- */

static vbus_conn *vbus_connect(const char *who)
{
        vbus_conn *c = NULL;
        int r = vbus_conn_open(NULL, &c);

        if (r < 0) {
                fprintf(stderr, "%s: vbus_conn_open: %s\n", who, strerror(-r));
                return NULL;
        }
        r = vbus_conn_wait_ready(c, START_TIMEOUT_US);
        if (r < 0) {
                fprintf(stderr, "%s: no broker: %s\n", who, strerror(-r));
                vbus_conn_free(c);
                return NULL;
        }
        return c;
}

static void vbus_on_request(vbus_server *srv, vbus_request *req, void *userdata)
{
        size_t n = 0;
        const void *d = vbus_request_get_data(req, &n);

        (void)srv;
        (void)userdata;
        (void)vbus_request_reply(req, d, n);
}

static int cmd_vbus_serve(const char *service, const char *ready)
{
        vbus_conn *c = vbus_connect("vbus-serve");
        vbus_server *srv = NULL;
        bool announced = false;
        int r;

        if (!c)
                return 1;
        r = vbus_serve(c, service, vbus_on_request, NULL, &srv);
        if (r < 0) {
                fprintf(stderr, "vbus-serve: %s\n", strerror(-r));
                return 1;
        }
        for (;;) {
                r = vbus_conn_wait(c, 1000000);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "vbus-serve: %s\n", strerror(-r));
                        return 1;
                }
                if (!announced && vbus_server_is_active(srv)) {
                        announced = true;
                        if (rpc_ready(ready) < 0)
                                return 1;
                }
        }
}

typedef struct VbusCaller {
        vbus_conn *conn;
        const char *method;
        uint64_t done[RPC_INFLIGHT * 4];
        int n_done;
        bool failed;
} VbusCaller;

static void vbus_on_reply(vbus_call *call, const vbus_reply *r, void *userdata)
{
        VbusCaller *vc = userdata;
        size_t n = 0;
        const void *d = vbus_reply_get_data(r, &n);

        (void)call;
        if (vbus_reply_get_status(r) != VBUS_STATUS_OK || n != RPC_SIZE) {
                fprintf(stderr, "vbus-call: %s %s\n", vbus_status_name(vbus_reply_get_status(r)),
                        vbus_reply_get_message(r));
                vc->failed = true;
                return;
        }
        if (vc->n_done < RPC_INFLIGHT * 4)
                vc->done[vc->n_done++] = rpc_id(d);
}

static int vbus_send(void *ctx, uint64_t id, const uint8_t *req)
{
        VbusCaller *vc = ctx;
        int r;

        (void)id;
        r = vbus_call_start(vc->conn, vc->method, req, RPC_SIZE, CALL_TIMEOUT_US, vbus_on_reply, vc,
                            NULL);
        if (r < 0)
                fprintf(stderr, "vbus-call: start: %s\n", strerror(-r));
        return r;
}

static int vbus_wait(void *ctx, uint64_t *ids, int max)
{
        VbusCaller *vc = ctx;
        int n;

        while (vc->n_done == 0 && !vc->failed) {
                int r = vbus_conn_wait(vc->conn, CALL_TIMEOUT_US);

                if (r < 0 && r != -EINTR && r != -ETIMEDOUT) {
                        fprintf(stderr, "vbus-call: wait: %s\n", strerror(-r));
                        return r;
                }
        }
        if (vc->failed)
                return -1;
        n = vc->n_done < max ? vc->n_done : max;
        memcpy(ids, vc->done, (size_t)n * sizeof(*ids));
        memmove(vc->done, vc->done + n, (size_t)(vc->n_done - n) * sizeof(*ids));
        vc->n_done -= n;
        return n;
}

static int cmd_vbus_call(const char *method, const RpcPlan *plan)
{
        static const RpcOps ops = {vbus_send, vbus_wait};
        VbusCaller vc = {.method = method};
        int ret;

        vc.conn = vbus_connect("vbus-call");
        if (!vc.conn)
                return 1;
        ret = rpc_drive(&ops, &vc, plan, "vbus-call") < 0 ? 1 : 0;
        vbus_conn_free(vc.conn);
        return ret;
}

/* ---- UNIX sockets --------------------------------------------------------------------------- */

static int unix_addr(struct sockaddr_un *sa, const char *dir, const char *name)
{
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, name) >=
            sizeof(sa->sun_path))
                return -1;
        return 0;
}

static int unix_listen(const char *dir, const char *name)
{
        struct sockaddr_un sa;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || unix_addr(&sa, dir, name) < 0)
                goto fail;
        unlink(sa.sun_path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
                goto fail;
        return fd;
fail:
        perror("unix-relay: listen");
        if (fd >= 0)
                close(fd);
        return -1;
}

static int unix_connect(const char *dir, const char *name)
{
        struct sockaddr_un sa;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || unix_addr(&sa, dir, name) < 0 ||
            connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                perror("unix: connect");
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
        while (n) {
                ssize_t w = write(fd, p, n);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return -1;
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

static int cmd_unix_relay(const char *dir)
{
        static uint8_t buf[65536];
        int ls = unix_listen(dir, "srv.sock"), lc = unix_listen(dir, "cli.sock");
        char ready[4096];
        struct pollfd p[2];

        if (ls < 0 || lc < 0 ||
            (size_t)snprintf(ready, sizeof(ready), "%s/relay.ready", dir) >= sizeof(ready) ||
            rpc_ready(ready) < 0)
                return 1;
        p[0].fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        p[1].fd = accept4(lc, NULL, NULL, SOCK_CLOEXEC);
        if (p[0].fd < 0 || p[1].fd < 0) {
                perror("unix-relay: accept");
                return 1;
        }
        p[0].events = p[1].events = POLLIN;
        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return 1;
                }
                for (int i = 0; i < 2; i++) {
                        ssize_t n;

                        if (!p[i].revents)
                                continue;
                        n = read(p[i].fd, buf, sizeof(buf));
                        if (n <= 0)
                                return 0; /* one side closed: the run is over */
                        if (write_all(p[1 - i].fd, buf, (size_t)n) < 0)
                                return 0;
                }
        }
}

static int cmd_unix_serve(const char *dir)
{
        static uint8_t buf[65536 + RPC_SIZE];
        size_t have = 0;
        int fd = unix_connect(dir, "srv.sock");

        if (fd < 0)
                return 1;
        for (;;) {
                ssize_t n = read(fd, buf + have, sizeof(buf) - have);
                size_t whole;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return 0;
                have += (size_t)n;
                whole = have - have % RPC_SIZE;
                if (whole && write_all(fd, buf, whole) < 0) /* the reply: the request echoed */
                        return 0;
                memmove(buf, buf + whole, have - whole);
                have -= whole;
        }
}

typedef struct UnixCaller {
        int fd;
        uint8_t buf[RPC_SIZE * RPC_INFLIGHT * 4];
        size_t have;
} UnixCaller;

static int unix_send(void *ctx, uint64_t id, const uint8_t *req)
{
        (void)id;
        return write_all(((UnixCaller *)ctx)->fd, req, RPC_SIZE);
}

static int unix_wait(void *ctx, uint64_t *ids, int max)
{
        UnixCaller *uc = ctx;
        int n = 0;

        while (uc->have < RPC_SIZE) {
                size_t room = (size_t)max * RPC_SIZE - uc->have;
                ssize_t r = read(uc->fd, uc->buf + uc->have, room);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return -1;
                uc->have += (size_t)r;
        }
        while (uc->have >= RPC_SIZE && n < max) {
                ids[n++] = rpc_id(uc->buf);
                memmove(uc->buf, uc->buf + RPC_SIZE, uc->have - RPC_SIZE);
                uc->have -= RPC_SIZE;
        }
        return n;
}

static int cmd_unix_call(const char *dir, const RpcPlan *plan)
{
        static const RpcOps ops = {unix_send, unix_wait};
        static UnixCaller uc;
        int ret;

        uc.fd = unix_connect(dir, "cli.sock");
        if (uc.fd < 0)
                return 1;
        ret = rpc_drive(&ops, &uc, plan, "unix-call") < 0 ? 1 : 0;
        close(uc.fd);
        return ret;
}

int main(int argc, char **argv)
{
        RpcPlan plan;
        if (argc < 3 || rpc_parse_plan(argc, argv, &plan) < 0) {
                fprintf(stderr, "usage: rpc-bench vbus-serve|vbus-call|unix-relay|unix-serve|"
                                "unix-call ARG [--warm N] [--lat N] [--tput N] [--ready FILE]\n");
                return 2;
        }
        if (strcmp(argv[1], "vbus-serve") == 0)
                return cmd_vbus_serve(argv[2], plan.ready);
        if (strcmp(argv[1], "vbus-call") == 0)
                return cmd_vbus_call(argv[2], &plan);
        if (strcmp(argv[1], "unix-relay") == 0)
                return cmd_unix_relay(argv[2]);
        if (strcmp(argv[1], "unix-serve") == 0)
                return cmd_unix_serve(argv[2]);
        if (strcmp(argv[1], "unix-call") == 0)
                return cmd_unix_call(argv[2], &plan);
        fprintf(stderr, "rpc-bench: unknown command %s\n", argv[1]);
        return 2;
}
