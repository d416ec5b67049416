/* SPDX-License-Identifier: MIT */
/*
 * describe: vbus_protobuf_describe() of <vbus/vbus-protobuf.h>: a vbus.v1.ServiceDescription
 * built from protoc-c's runtime descriptors, checked against the rules the broker applies
 * (wire/describe.h) and handed to the server, which sends it on its SERVE stream (server.c).
 *
 * The types are collected breadth-first from the methods' inputs and outputs with a worklist
 * (never by recursion: a message may contain itself), each once, found by descriptor pointer.
 * Names point into the descriptors (static, generated) until the description is packed; only the
 * JSON names are made here.
 */
#include "describe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <vbus/vbus-protobuf.h>

#include "server.h"
#include "vbus/v1/describe.pb-c.h"

typedef struct Builder {
        const ProtobufCMessageDescriptor *msgs[VBUS_DESCRIPTION_TYPES_MAX];
        const ProtobufCEnumDescriptor *enums[VBUS_DESCRIPTION_TYPES_MAX];
        size_t n_msgs, n_enums;
        Vbus__V1__ServiceDescription d;
} Builder;

/* Adds @m to the worklist unless it is there. Return: 0 or -E2BIG. */
static int add_message(Builder *b, const ProtobufCMessageDescriptor *m)
{
        for (size_t i = 0; i < b->n_msgs; i++)
                if (b->msgs[i] == m)
                        return 0;
        if (b->n_msgs + b->n_enums >= VBUS_DESCRIPTION_TYPES_MAX)
                return -E2BIG;
        b->msgs[b->n_msgs++] = m;
        return 0;
}

static int add_enum(Builder *b, const ProtobufCEnumDescriptor *e)
{
        for (size_t i = 0; i < b->n_enums; i++)
                if (b->enums[i] == e)
                        return 0;
        if (b->n_msgs + b->n_enums >= VBUS_DESCRIPTION_TYPES_MAX)
                return -E2BIG;
        b->enums[b->n_enums++] = e;
        return 0;
}

/* protoc's JSON name of a field: "user_id" is "userId" (an underscore capitalises what follows). */
static char *json_name_of(const char *name)
{
        char *out = malloc(strlen(name) + 1), *w = out;
        bool upper = false;

        if (!out)
                return NULL;
        for (const char *r = name; *r; r++) {
                if (*r == '_') {
                        upper = true;
                        continue;
                }
                char c = *r;

                if (upper && c >= 'a' && c <= 'z')
                        c = (char)(c - 'a' + 'A');
                *w++ = c;
                upper = false;
        }
        *w = '\0';
        return out;
}

static void description_free(Vbus__V1__ServiceDescription *d)
{
        /* A slot whose allocation failed is NULL: the build stopped there. */
        for (size_t i = 0; i < d->n_messages; i++) {
                Vbus__V1__MessageDescription *md = d->messages[i];

                if (!md)
                        continue;
                for (size_t k = 0; k < md->n_fields; k++) {
                        free(md->fields[k]->json_name);
                        free(md->fields[k]);
                }
                free(md->fields);
                free(md);
        }
        for (size_t i = 0; i < d->n_enums; i++) {
                if (!d->enums[i])
                        continue;
                for (size_t k = 0; k < d->enums[i]->n_values; k++)
                        free(d->enums[i]->values[k]);
                free(d->enums[i]->values);
                free(d->enums[i]);
        }
        for (size_t i = 0; i < d->n_methods; i++)
                free(d->methods[i]);
        free(d->messages);
        free(d->enums);
        free(d->methods);
}

/* The description of message @m (its fields; their types join the worklist). */
static int build_message(Builder *b, const ProtobufCMessageDescriptor *m,
                         Vbus__V1__MessageDescription **ret)
{
        Vbus__V1__MessageDescription *md = calloc(1, sizeof(*md));
        int r = 0;

        if (!md)
                return -ENOMEM;
        vbus__v1__message_description__init(md);
        *ret = md; /* freed with the description, whatever happens below */
        md->name = (char *)m->name;
        md->fields = calloc(m->n_fields + 1, sizeof(Vbus__V1__FieldDescription *));
        if (!md->fields)
                return -ENOMEM;
        for (unsigned i = 0; i < m->n_fields && r == 0; i++) {
                const ProtobufCFieldDescriptor *fd = &m->fields[i];
                Vbus__V1__FieldDescription *f = calloc(1, sizeof(*f));

                if (!f)
                        return -ENOMEM;
                vbus__v1__field_description__init(f);
                md->fields[md->n_fields++] = f;
                f->name = (char *)fd->name;
                f->json_name = json_name_of(fd->name);
                if (!f->json_name)
                        return -ENOMEM;
                f->number = fd->id;
                /* protobuf-c's ProtobufCType runs INT32 .. MESSAGE in the order of ours, from 0. */
                f->type = (Vbus__V1__FieldDescription__Type)(fd->type + 1);
                f->repeated = fd->label == PROTOBUF_C_LABEL_REPEATED;
                f->packed = f->repeated && (fd->flags & PROTOBUF_C_FIELD_FLAG_PACKED);
                if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                        const ProtobufCMessageDescriptor *sub = fd->descriptor;

                        f->type_name = (char *)sub->name;
                        r = add_message(b, sub);
                } else if (fd->type == PROTOBUF_C_TYPE_ENUM) {
                        const ProtobufCEnumDescriptor *sub = fd->descriptor;

                        f->type_name = (char *)sub->name;
                        r = add_enum(b, sub);
                }
        }
        return r;
}

static int build_enum(const ProtobufCEnumDescriptor *e, Vbus__V1__EnumDescription **ret)
{
        Vbus__V1__EnumDescription *ed = calloc(1, sizeof(*ed));

        if (!ed)
                return -ENOMEM;
        vbus__v1__enum_description__init(ed);
        *ret = ed;
        ed->name = (char *)e->name;
        ed->values = calloc(e->n_values + 1, sizeof(Vbus__V1__EnumValueDescription *));
        if (!ed->values)
                return -ENOMEM;
        for (unsigned i = 0; i < e->n_values; i++) {
                Vbus__V1__EnumValueDescription *v = calloc(1, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                vbus__v1__enum_value_description__init(v);
                ed->values[ed->n_values++] = v;
                v->name = (char *)e->values[i].name;
                v->number = e->values[i].value;
        }
        return 0;
}

static int build_methods(Builder *b, const ProtobufCServiceDescriptor *desc,
                         const vbus_protobuf_method_kind *kinds, size_t n_kinds)
{
        Vbus__V1__ServiceDescription *d = &b->d;
        int r = 0;

        if (desc->n_methods > VBUS_DESCRIPTION_METHODS_MAX)
                return -E2BIG;
        for (size_t k = 0; k < n_kinds; k++) {
                bool found = false;

                for (unsigned i = 0; i < desc->n_methods && !found; i++)
                        found = kinds[k].method &&
                                strcmp(kinds[k].method, desc->methods[i].name) == 0;
                if (!found)
                        return -EINVAL;
        }
        d->methods = calloc(desc->n_methods + 1, sizeof(Vbus__V1__MethodDescription *));
        if (!d->methods)
                return -ENOMEM;
        for (unsigned i = 0; i < desc->n_methods && r == 0; i++) {
                const ProtobufCMethodDescriptor *md = &desc->methods[i];
                Vbus__V1__MethodDescription *m = calloc(1, sizeof(*m));

                if (!m)
                        return -ENOMEM;
                vbus__v1__method_description__init(m);
                d->methods[d->n_methods++] = m;
                m->name = (char *)md->name;
                m->input = (char *)md->input->name;
                m->output = (char *)md->output->name;
                for (size_t k = 0; k < n_kinds; k++) {
                        if (strcmp(kinds[k].method, md->name) == 0) {
                                m->client_streaming = kinds[k].client_streaming;
                                m->server_streaming = kinds[k].server_streaming;
                        }
                }
                r = add_message(b, md->input);
                if (r == 0)
                        r = add_message(b, md->output);
        }
        return r;
}

static int build(Builder *b, const ProtobufCServiceDescriptor *desc,
                 const vbus_protobuf_method_kind *kinds, size_t n_kinds)
{
        Vbus__V1__ServiceDescription *d = &b->d;
        int r;

        d->service = (char *)desc->name;
        r = build_methods(b, desc, kinds, n_kinds);
        if (r < 0)
                return r;
        d->messages = calloc(VBUS_DESCRIPTION_TYPES_MAX, sizeof(Vbus__V1__MessageDescription *));
        d->enums = calloc(VBUS_DESCRIPTION_TYPES_MAX, sizeof(Vbus__V1__EnumDescription *));
        if (!d->messages || !d->enums)
                return -ENOMEM;
        /* The worklist grows while it is walked: each message adds the types of its fields. */
        for (size_t i = 0; i < b->n_msgs; i++) {
                r = build_message(b, b->msgs[i], &d->messages[d->n_messages]);
                d->n_messages++;
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < b->n_enums; i++) {
                r = build_enum(b->enums[i], &d->enums[d->n_enums]);
                d->n_enums++;
                if (r < 0)
                        return r;
        }
        return 0;
}

VBUS_EXPORT int vbus_protobuf_describe(vbus_server *srv, const ProtobufCServiceDescriptor *desc,
                                       const vbus_protobuf_method_kind *kinds, size_t n_kinds)
{
        char why[VBUS_DESCRIPTION_WHY_MAX];
        Builder *b;
        uint8_t *buf = NULL;
        size_t len;
        int r;

        if (!srv || !desc || desc->magic != PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC ||
            (n_kinds > 0 && !kinds) || strcmp(desc->name, vbus__server_get_service(srv)) != 0)
                return -EINVAL;
        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        vbus__v1__service_description__init(&b->d);
        r = build(b, desc, kinds, n_kinds);
        if (r == 0) {
                len = vbus__v1__service_description__get_packed_size(&b->d);
                if (len > VBUS_DESCRIPTION_MAX)
                        r = -E2BIG;
                else if (!(buf = malloc(len ? len : 1)))
                        r = -ENOMEM;
        }
        if (r == 0) {
                (void)vbus__v1__service_description__pack(&b->d, buf);
                /* The broker's rules, checked here so a server hears what it broke at once. */
                r = vbus__describe_validate(buf, len, desc->name, why);
        }
        if (r == 0)
                r = vbus__server_set_description(srv, buf, len);
        else
                free(buf);
        description_free(&b->d);
        free(b);
        return r;
}
