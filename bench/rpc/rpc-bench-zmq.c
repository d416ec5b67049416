/* SPDX-License-Identifier: MIT */
/*
 * rpc-bench-zmq: the ZeroMQ half of the RPC benchmark, over ipc:// (a UNIX socket; ZeroMQ has
 * no broker, so the caller talks to the server directly).
 *
 *   rpc-bench-zmq serve ENDPOINT [--ready FILE]
 *       a REP socket bound to ENDPOINT; answers each request with its 64 bytes.
 *   rpc-bench-zmq call ENDPOINT [--warm N] [--lat N] [--tput N]
 *       the two phases of rpc-common.h with a DEALER socket, which speaks REQ's envelope (an
 *       empty delimiter frame, then the request) but may have 16 requests outstanding; the REP
 *       server answers them in order. One call at a time, it is exactly a REQ/REP exchange.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "rpc-common.h"

static int cmd_serve(const char *endpoint, const char *ready)
{
        void *ctx = zmq_ctx_new(), *s = ctx ? zmq_socket(ctx, ZMQ_REP) : NULL;
        uint8_t buf[RPC_SIZE * 2];

        if (!s || zmq_bind(s, endpoint) < 0 || rpc_ready(ready) < 0) {
                fprintf(stderr, "zmq-serve: bind %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
                return 1;
        }
        for (;;) {
                int n = zmq_recv(s, buf, sizeof(buf), 0);

                if (n < 0 && zmq_errno() == EINTR)
                        continue;
                if (n < 0 || zmq_send(s, buf, (size_t)n, 0) < 0) {
                        fprintf(stderr, "zmq-serve: %s\n", zmq_strerror(zmq_errno()));
                        return 1;
                }
        }
}

static int zmq_call_send(void *ctx, uint64_t id, const uint8_t *req)
{
        (void)id;
        if (zmq_send(ctx, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(ctx, req, RPC_SIZE, 0) < 0) {
                fprintf(stderr, "zmq-call: send: %s\n", zmq_strerror(zmq_errno()));
                return -1;
        }
        return 0;
}

static int zmq_call_wait(void *ctx, uint64_t *ids, int max)
{
        uint8_t buf[RPC_SIZE * 2];
        int n = 0;

        while (n < max) {
                int flags = n ? ZMQ_DONTWAIT : 0;
                int r = zmq_recv(ctx, buf, sizeof(buf), flags); /* the empty delimiter */

                if (r < 0 && zmq_errno() == EAGAIN && n)
                        break;
                if (r < 0 && zmq_errno() == EINTR)
                        continue;
                if (r == 0)
                        r = zmq_recv(ctx, buf, sizeof(buf), 0); /* the reply */
                if (r != RPC_SIZE) {
                        fprintf(stderr, "zmq-call: recv: %s\n", zmq_strerror(zmq_errno()));
                        return -1;
                }
                ids[n++] = rpc_id(buf);
        }
        return n;
}

static int cmd_call(const char *endpoint, const RpcPlan *plan)
{
        static const RpcOps ops = {zmq_call_send, zmq_call_wait};
        void *ctx = zmq_ctx_new(), *s = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
        int ret;

        if (!s || zmq_connect(s, endpoint) < 0) {
                fprintf(stderr, "zmq-call: connect %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
                return 1;
        }
        ret = rpc_drive(&ops, s, plan, "zmq-call") < 0 ? 1 : 0;
        zmq_close(s);
        zmq_ctx_term(ctx);
        return ret;
}

int main(int argc, char **argv)
{
        RpcPlan plan;
        if (argc < 3 || rpc_parse_plan(argc, argv, &plan) < 0) {
                fprintf(stderr, "usage: rpc-bench-zmq serve|call ENDPOINT [--ready FILE] "
                                "[--warm N] [--lat N] [--tput N]\n");
                return 2;
        }
        if (strcmp(argv[1], "serve") == 0)
                return cmd_serve(argv[2], plan.ready);
        if (strcmp(argv[1], "call") == 0)
                return cmd_call(argv[2], &plan);
        return 2;
}
