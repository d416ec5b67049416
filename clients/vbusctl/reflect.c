/* SPDX-License-Identifier: MIT */
/*
 * reflect: describe and call --json (see reflect.h).
 *
 * Both first ask the broker for the service's description (one Describe call), decode it with
 * the generated code of describe.proto and trust nothing in it beyond what the broker checked
 * (it validated it, but a broker is not bound to be ours): pbjson looks every type up by name
 * and fails cleanly when one is missing.
 */
#include "reflect.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"
#include "vbus/v1/broker.pb-c.h"
#include "vbus/v1/describe.pb-c.h"

typedef Vbus__V1__ServiceDescription Description;

/* Fetches the description of @service. Return: 0 with *@ret, or an exit status (said why). */
static int fetch(vbus_conn *c, const char *service, uint64_t timeout_usec, Description **ret,
                 uint32_t *ret_servers)
{
        Vbus__V1__DescribeRequest rq = VBUS__V1__DESCRIBE_REQUEST__INIT;
        Vbus__V1__DescribeReply *m;
        uint8_t req[512];
        vbus_reply *reply = NULL;
        const void *d;
        size_t n;
        int r, status;

        if (strlen(service) > 255) {
                fprintf(stderr, "vbusctl: '%.40s...' is not a service name\n", service);
                return 2;
        }
        rq.service = (char *)service;
        n = vbus__v1__describe_request__pack(&rq, req);
        r = vbus_call_sync(c, "vbus.v1.Broker/Describe", req, n, timeout_usec, &reply);
        if (r < 0) {
                fprintf(stderr, "vbusctl: describe %s: %s\n", service, strerror(-r));
                return 1;
        }
        status = vbus_reply_get_status(reply);
        if (status != VBUS_STATUS_OK) {
                const char *msg = vbus_reply_get_message(reply);

                fprintf(stderr, "vbusctl: describe %s: %s%s%s\n", service, vbus_status_name(status),
                        msg[0] ? ": " : "", msg);
                vbus_reply_free(reply);
                return status == VBUS_STATUS_INVALID_ARGUMENT ? 2 : 1;
        }
        d = vbus_reply_get_data(reply, &n);
        m = vbus__v1__describe_reply__unpack(NULL, n, d);
        *ret = m ? vbus__v1__service_description__unpack(NULL, m->description.len,
                                                         m->description.data)
                 : NULL;
        if (m)
                *ret_servers = m->servers;
        vbus__v1__describe_reply__free_unpacked(m, NULL);
        vbus_reply_free(reply);
        if (!*ret) {
                fprintf(stderr, "vbusctl: the broker's description of %s does not decode\n",
                        service);
                return 1;
        }
        return 0;
}

static const char *const type_words[] = {
        "?",        "int32",  "sint32",  "sfixed32", "int64",   "sint64",
        "sfixed64", "uint32", "fixed32", "uint64",   "fixed64", "float",
        "double",   "bool",   "enum",    "string",   "bytes",   "message",
};

static void print_field(const Vbus__V1__FieldDescription *f)
{
        unsigned t = f->type < sizeof(type_words) / sizeof(type_words[0]) ? f->type : 0;
        const char *type = f->type_name[0] ? f->type_name : type_words[t];

        printf("  %s%s %s = %u", f->repeated ? "repeated " : "", type, f->name, f->number);
        if (f->packed)
                printf(" [packed]");
        if (strcmp(f->json_name, f->name) != 0)
                printf(" (json \"%s\")", f->json_name);
        printf(";\n");
}

int reflect_describe(vbus_conn *c, const char *service, uint64_t timeout_usec)
{
        Description *d = NULL;
        uint32_t n_servers = 0;
        int r = fetch(c, service, timeout_usec, &d, &n_servers);

        if (r != 0)
                return r;
        printf("service %s {  // %u server%s\n", d->service, n_servers, n_servers == 1 ? "" : "s");
        for (size_t i = 0; i < d->n_methods; i++) {
                const Vbus__V1__MethodDescription *m = d->methods[i];

                printf("  rpc %s(%s%s) returns (%s%s);\n", m->name,
                       m->client_streaming ? "stream " : "", m->input,
                       m->server_streaming ? "stream " : "", m->output);
        }
        printf("}\n");
        for (size_t i = 0; i < d->n_messages; i++) {
                const Vbus__V1__MessageDescription *md = d->messages[i];

                printf("\nmessage %s {\n", md->name);
                for (size_t k = 0; k < md->n_fields; k++)
                        print_field(md->fields[k]);
                printf("}\n");
        }
        for (size_t i = 0; i < d->n_enums; i++) {
                const Vbus__V1__EnumDescription *ed = d->enums[i];

                printf("\nenum %s {\n", ed->name);
                for (size_t k = 0; k < ed->n_values; k++)
                        printf("  %s = %d;\n", ed->values[k]->name, ed->values[k]->number);
                printf("}\n");
        }
        vbus__v1__service_description__free_unpacked(d, NULL);
        return 0;
}

typedef struct JsonStream {
        const Description *d;
        const Vbus__V1__MessageDescription *out;
        bool done;
        bool failed; /* a reply did not decode, or stdout failed */
        int status;
        char message[1100];
} JsonStream;

/* Prints one reply message as a line of JSON. Return: 0 or -1 (said why). */
static int print_reply(const Description *d, const Vbus__V1__MessageDescription *md,
                       const void *data, size_t n)
{
        char err[PBJSON_ERR_MAX];

        if (pbjson_print(stdout, d, md, data, n, err) < 0) {
                putchar('\n');
                fprintf(stderr, "vbusctl: %s\n", err);
                return -1;
        }
        putchar('\n');
        return fflush(stdout) == 0 ? 0 : -1;
}

static void js_message(vbus_stream *st, const void *data, size_t n, void *userdata)
{
        JsonStream *js = userdata;

        if (js->failed)
                return;
        if (print_reply(js->d, js->out, data, n) < 0) {
                js->failed = true;
                (void)vbus_stream_cancel(st);
        }
}

static void js_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        JsonStream *js = userdata;

        (void)st;
        js->done = true;
        js->status = status;
        (void)snprintf(js->message, sizeof(js->message), "%s", message);
}

static int call_streaming(vbus_conn *c, const char *method, const Description *d,
                          const Vbus__V1__MessageDescription *out, const uint8_t *req, size_t n,
                          const vbus_call_options *opts)
{
        vbus_stream_handlers h = {.on_message = js_message, .on_end = js_end};
        JsonStream js = {.d = d, .out = out};
        static const uint8_t none;
        vbus_stream *st;
        int r = vbus_stream_open(c, method, opts, &h, &js, &st);

        if (r == 0)
                r = vbus_stream_send_wait(st, n ? req : &none, n, 5000000u);
        if (r == 0)
                r = vbus_stream_close_send(st);
        while (r == 0 && !js.done) {
                r = vbus_conn_wait(c, 200000);
                if (r == -ETIMEDOUT || r == -EINTR || r > 0)
                        r = 0;
        }
        if (!js.done) {
                fprintf(stderr, "vbusctl: call failed: %s\n", strerror(-r));
                return 1;
        }
        if (js.failed)
                return 1;
        if (js.status != VBUS_STATUS_OK) {
                fprintf(stderr, "vbusctl: %s: %s%s%s\n", method, vbus_status_name(js.status),
                        js.message[0] ? ": " : "", js.message);
                return 1;
        }
        return 0;
}

static int call_unary(vbus_conn *c, const char *method, const Description *d,
                      const Vbus__V1__MessageDescription *out, const uint8_t *req, size_t n,
                      const vbus_call_options *opts)
{
        static const uint8_t none;
        vbus_reply *reply = NULL;
        const void *data;
        size_t len;
        int r = vbus_call_sync_opts(c, method, n ? req : &none, n, opts, &reply), status;

        if (r < 0) {
                fprintf(stderr, "vbusctl: call failed: %s\n", strerror(-r));
                return 1;
        }
        status = vbus_reply_get_status(reply);
        if (status == VBUS_STATUS_OK) {
                data = vbus_reply_get_data(reply, &len);
                r = print_reply(d, out, data, len) < 0 ? 1 : 0;
        } else {
                const char *msg = vbus_reply_get_message(reply);

                fprintf(stderr, "vbusctl: %s: %s%s%s\n", method, vbus_status_name(status),
                        msg[0] ? ": " : "", msg);
                r = 1;
        }
        vbus_reply_free(reply);
        return r;
}

int reflect_call_json(vbus_conn *c, const char *method, const char *json, size_t n,
                      const vbus_call_options *opts)
{
        const char *slash = strchr(method, '/');
        const Vbus__V1__MethodDescription *m = NULL;
        const Vbus__V1__MessageDescription *in, *out;
        char service[256], err[PBJSON_ERR_MAX];
        Description *d = NULL;
        uint32_t n_servers;
        uint8_t *req = NULL;
        size_t n_req = 0;
        int r;

        if (!slash || slash == method || (size_t)(slash - method) >= sizeof(service)) {
                fprintf(stderr, "vbusctl: '%s' is not SERVICE/METHOD\n", method);
                return 2;
        }
        memcpy(service, method, (size_t)(slash - method));
        service[slash - method] = '\0';
        r = fetch(c, service, opts->timeout_usec, &d, &n_servers);
        if (r != 0)
                return r;
        for (size_t i = 0; i < d->n_methods && !m; i++)
                if (strcmp(d->methods[i]->name, slash + 1) == 0)
                        m = d->methods[i];
        in = m ? pbjson_find_message(d, m->input) : NULL;
        out = m ? pbjson_find_message(d, m->output) : NULL;
        if (!m || !in || !out) {
                fprintf(stderr, "vbusctl: %s has no method '%s' (see vbusctl describe %s)\n",
                        service, slash + 1, service);
                r = 2;
        } else if (m->client_streaming) {
                fprintf(stderr,
                        "vbusctl: %s streams requests: --json calls unary and "
                        "server-streaming methods only\n",
                        method);
                r = 2;
        } else if (pbjson_encode(d, in, json, n, &req, &n_req, err) < 0) {
                fprintf(stderr, "vbusctl: --json: %s request %s\n", m->input, err);
                r = 2;
        } else if (m->server_streaming) {
                r = call_streaming(c, method, d, out, req, n_req, opts);
        } else {
                r = call_unary(c, method, d, out, req, n_req, opts);
        }
        free(req);
        vbus__v1__service_description__free_unpacked(d, NULL);
        return r;
}
