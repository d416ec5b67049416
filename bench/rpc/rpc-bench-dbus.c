/* SPDX-License-Identifier: MIT */
/*
 * rpc-bench-dbus: the D-Bus half of the RPC benchmark: method calls through a bus daemon
 * (bench/rpc/run starts dbus-daemon on a private socket and sets DBUS_SESSION_BUS_ADDRESS),
 * with libdbus.
 *
 *   rpc-bench-dbus serve NAME [--ready FILE]
 *       owns NAME and answers org.vbus.Bench.Echo on /org/vbus/Bench (argument and result: an
 *       array of bytes, "ay") with its argument. Creates FILE once it owns the name.
 *   rpc-bench-dbus call NAME [--warm N] [--lat N] [--tput N]
 *       the two phases of rpc-common.h: each call a method call to NAME, the reply matched by
 *       the call number inside it (libdbus's own pending-call machinery is not used, so 16
 *       calls can be in flight from one thread).
 */
#include <dbus/dbus.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc-common.h"

#define BENCH_PATH  "/org/vbus/Bench"
#define BENCH_IFACE "org.vbus.Bench"

static DBusConnection *bus_connect(const char *who)
{
        DBusError err;
        DBusConnection *c;

        dbus_error_init(&err);
        c = dbus_bus_get_private(DBUS_BUS_SESSION, &err);
        if (!c) {
                fprintf(stderr, "%s: %s\n", who, err.message);
                dbus_error_free(&err);
                return NULL;
        }
        dbus_connection_set_exit_on_disconnect(c, false);
        return c;
}

/* The "ay" argument of @m, or NULL. */
static const uint8_t *get_bytes(DBusMessage *m, int *n)
{
        DBusMessageIter it, sub;
        const uint8_t *p = NULL;

        if (!dbus_message_iter_init(m, &it) ||
            dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_ARRAY ||
            dbus_message_iter_get_element_type(&it) != DBUS_TYPE_BYTE)
                return NULL;
        dbus_message_iter_recurse(&it, &sub);
        dbus_message_iter_get_fixed_array(&sub, &p, n);
        return p;
}

static bool put_bytes(DBusMessage *m, const uint8_t *p, int n)
{
        return dbus_message_append_args(m, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &p, n,
                                        DBUS_TYPE_INVALID);
}

static int cmd_serve(const char *name, const char *ready)
{
        DBusConnection *c = bus_connect("dbus-serve");
        DBusError err;

        if (!c)
                return 1;
        dbus_error_init(&err);
        if (dbus_bus_request_name(c, name, DBUS_NAME_FLAG_DO_NOT_QUEUE, &err) !=
                    DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER ||
            rpc_ready(ready) < 0) {
                fprintf(stderr, "dbus-serve: cannot own %s: %s\n", name,
                        dbus_error_is_set(&err) ? err.message : "taken");
                return 1;
        }
        for (;;) {
                DBusMessage *m;

                if (!dbus_connection_read_write(c, -1)) {
                        fprintf(stderr, "dbus-serve: disconnected\n");
                        return 1;
                }
                while ((m = dbus_connection_pop_message(c))) {
                        if (dbus_message_is_method_call(m, BENCH_IFACE, "Echo")) {
                                int n = 0;
                                const uint8_t *p = get_bytes(m, &n);
                                DBusMessage *r = p ? dbus_message_new_method_return(m)
                                                   : dbus_message_new_error(
                                                             m, DBUS_ERROR_INVALID_ARGS, "ay");

                                if (!r || (p && !put_bytes(r, p, n)) ||
                                    !dbus_connection_send(c, r, NULL)) {
                                        fprintf(stderr, "dbus-serve: out of memory\n");
                                        return 1;
                                }
                                dbus_message_unref(r);
                        }
                        dbus_message_unref(m);
                }
                dbus_connection_flush(c);
        }
}

typedef struct DbusCaller {
        DBusConnection *conn;
        const char *name;
} DbusCaller;

static int dbus_call_send(void *ctx, uint64_t id, const uint8_t *req)
{
        DbusCaller *dc = ctx;
        DBusMessage *m = dbus_message_new_method_call(dc->name, BENCH_PATH, BENCH_IFACE, "Echo");
        bool ok = m && put_bytes(m, req, RPC_SIZE) && dbus_connection_send(dc->conn, m, NULL);

        (void)id;
        if (m)
                dbus_message_unref(m);
        if (!ok) {
                fprintf(stderr, "dbus-call: cannot send\n");
                return -1;
        }
        dbus_connection_flush(dc->conn);
        return 0;
}

static int dbus_call_wait(void *ctx, uint64_t *ids, int max)
{
        DbusCaller *dc = ctx;
        int n = 0;

        while (n == 0) {
                DBusMessage *m;

                while (n < max && (m = dbus_connection_pop_message(dc->conn))) {
                        int type = dbus_message_get_type(m), len = 0;
                        const uint8_t *p = get_bytes(m, &len);

                        if (type == DBUS_MESSAGE_TYPE_ERROR) {
                                fprintf(stderr, "dbus-call: %s\n", dbus_message_get_error_name(m));
                                dbus_message_unref(m);
                                return -1;
                        }
                        if (type == DBUS_MESSAGE_TYPE_METHOD_RETURN && p && len == RPC_SIZE)
                                ids[n++] = rpc_id(p);
                        dbus_message_unref(m);
                }
                if (n == 0 && !dbus_connection_read_write(dc->conn, -1)) {
                        fprintf(stderr, "dbus-call: disconnected\n");
                        return -1;
                }
        }
        return n;
}

static int cmd_call(const char *name, const RpcPlan *plan)
{
        static const RpcOps ops = {dbus_call_send, dbus_call_wait};
        DbusCaller dc = {.name = name};
        int ret;

        dc.conn = bus_connect("dbus-call");
        if (!dc.conn)
                return 1;
        ret = rpc_drive(&ops, &dc, plan, "dbus-call") < 0 ? 1 : 0;
        dbus_connection_close(dc.conn);
        dbus_connection_unref(dc.conn);
        return ret;
}

int main(int argc, char **argv)
{
        RpcPlan plan;
        if (argc < 3 || rpc_parse_plan(argc, argv, &plan) < 0) {
                fprintf(stderr, "usage: rpc-bench-dbus serve|call NAME [--ready FILE] "
                                "[--warm N] [--lat N] [--tput N]\n");
                return 2;
        }
        if (strcmp(argv[1], "serve") == 0)
                return cmd_serve(argv[2], plan.ready);
        if (strcmp(argv[1], "call") == 0)
                return cmd_call(argv[2], &plan);
        return 2;
}
