/* SPDX-License-Identifier: MIT */
/*
 * describe: validation of a vbus.v1.ServiceDescription (see describe.h).
 *
 * The work is bounded by the limits before anything quadratic happens: counts are checked first,
 * names are made unique by sorting, and each reference is one binary search.
 */
#include "describe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "name.h"
#include "vbus/v1/describe.pb-c.h"

typedef Vbus__V1__FieldDescription Field;

/* One type of the description, for the sorted table of names. */
typedef struct TypeRef {
        const char *name;
        bool is_enum;
} TypeRef;

static int fail(char *why, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *why, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        /* A message for a person: cut short is fine. */
        (void)vsnprintf(why, VBUS_DESCRIPTION_WHY_MAX, fmt, ap);
        va_end(ap);
        return r;
}

static bool is_ident_start(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(char c)
{
        return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* An identifier: [A-Za-z_][A-Za-z0-9_]*, 1..VBUS_NAME_MAX bytes. */
static bool is_ident(const char *s)
{
        size_t n = strnlen(s, VBUS_NAME_MAX + 1);

        if (n == 0 || n > VBUS_NAME_MAX || !is_ident_start(s[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_ident_char(s[i]))
                        return false;
        return true;
}

/* A full type name: identifiers joined by '.', 1..VBUS_NAME_MAX bytes. */
static bool is_full_name(const char *s)
{
        size_t n = strnlen(s, VBUS_NAME_MAX + 1);
        bool start = true;

        if (n == 0 || n > VBUS_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '.') {
                        if (start)
                                return false;
                        start = true;
                } else if (start ? !is_ident_start(s[i]) : !is_ident_char(s[i])) {
                        return false;
                } else {
                        start = false;
                }
        }
        return !start;
}

/* A JSON name: [A-Za-z0-9_]+ (protoc's lowerCamelCase of a field name), 1..VBUS_NAME_MAX. */
static bool is_json_name(const char *s)
{
        size_t n = strnlen(s, VBUS_NAME_MAX + 1);

        if (n == 0 || n > VBUS_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_ident_char(s[i]))
                        return false;
        return true;
}

static int typeref_cmp(const void *a, const void *b)
{
        const char *x = ((const TypeRef *)a)->name, *y = ((const TypeRef *)b)->name;

        return strcmp(x ? x : "", y ? y : "");
}

static const TypeRef *type_find(const TypeRef *types, size_t n, const char *name)
{
        TypeRef key = {.name = name};

        return bsearch(&key, types, n, sizeof(*types), typeref_cmp);
}

static int str_cmp(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int u32_cmp(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

        return (x > y) - (x < y);
}

/* The first name of @names (@n, sorted here) that appears twice, or NULL. */
static const char *dup_name(const char **names, size_t n)
{
        qsort(names, n, sizeof(*names), str_cmp);
        for (size_t i = 1; i < n; i++)
                if (strcmp(names[i - 1], names[i]) == 0)
                        return names[i];
        return NULL;
}

static bool type_is_numeric(int t)
{
        return t >= VBUS__V1__FIELD_DESCRIPTION__TYPE__TYPE_INT32 &&
               t <= VBUS__V1__FIELD_DESCRIPTION__TYPE__TYPE_ENUM;
}

/* Scratch space for the checks of one message or enum (at most VBUS_DESCRIPTION_MEMBERS_MAX). */
typedef struct Scratch {
        const char **names;
        const char **json;
        uint32_t *numbers;
} Scratch;

static int check_field(const Vbus__V1__MessageDescription *md, const Field *f, const TypeRef *types,
                       size_t n_types, char *why)
{
        const TypeRef *t;
        bool wants_ref = f->type == VBUS__V1__FIELD_DESCRIPTION__TYPE__TYPE_ENUM ||
                         f->type == VBUS__V1__FIELD_DESCRIPTION__TYPE__TYPE_MESSAGE;

        if (!is_ident(f->name))
                return fail(why, -EINVAL, "message %s: a field name is not an identifier",
                            md->name);
        if (!is_json_name(f->json_name))
                return fail(why, -EINVAL, "message %s: field '%s': bad JSON name", md->name,
                            f->name);
        if (f->number == 0 || f->number > VBUS_FIELD_NUMBER_MAX ||
            (f->number >= VBUS_FIELD_RESERVED_FIRST && f->number <= VBUS_FIELD_RESERVED_LAST))
                return fail(why, -EINVAL, "message %s: field '%s': number %u out of range",
                            md->name, f->name, f->number);
        if ((int)f->type < VBUS__V1__FIELD_DESCRIPTION__TYPE__TYPE_INT32 ||
            (int)f->type > VBUS__V1__FIELD_DESCRIPTION__TYPE__TYPE_MESSAGE)
                return fail(why, -EINVAL, "message %s: field '%s': unknown type %d", md->name,
                            f->name, (int)f->type);
        if (f->packed && (!f->repeated || !type_is_numeric((int)f->type)))
                return fail(why, -EINVAL,
                            "message %s: field '%s': packed but not a repeated number", md->name,
                            f->name);
        if (!wants_ref) {
                if (f->type_name[0])
                        return fail(why, -EINVAL,
                                    "message %s: field '%s': type_name on a scalar field", md->name,
                                    f->name);
                return 0;
        }
        t = type_find(types, n_types, f->type_name);
        if (!t)
                return fail(why, -EINVAL, "message %s: field '%s': no type named '%.80s'", md->name,
                            f->name, f->type_name);
        if (t->is_enum != (f->type == VBUS__V1__FIELD_DESCRIPTION__TYPE__TYPE_ENUM))
                return fail(why, -EINVAL, "message %s: field '%s': '%s' is not %s", md->name,
                            f->name, f->type_name, t->is_enum ? "a message" : "an enum");
        return 0;
}

static int check_message(const Vbus__V1__MessageDescription *md, const TypeRef *types,
                         size_t n_types, Scratch *s, char *why)
{
        const char *dup;
        int r;

        if (md->n_fields > VBUS_DESCRIPTION_MEMBERS_MAX)
                return fail(why, -E2BIG, "message %s: more than %d fields", md->name,
                            VBUS_DESCRIPTION_MEMBERS_MAX);
        for (size_t i = 0; i < md->n_fields; i++) {
                r = check_field(md, md->fields[i], types, n_types, why);
                if (r < 0)
                        return r;
                s->names[i] = md->fields[i]->name;
                s->json[i] = md->fields[i]->json_name;
                s->numbers[i] = md->fields[i]->number;
        }
        if ((dup = dup_name(s->names, md->n_fields)) != NULL)
                return fail(why, -EINVAL, "message %s: two fields named '%s'", md->name, dup);
        if ((dup = dup_name(s->json, md->n_fields)) != NULL)
                return fail(why, -EINVAL, "message %s: two fields with the JSON name '%s'",
                            md->name, dup);
        qsort(s->numbers, md->n_fields, sizeof(*s->numbers), u32_cmp);
        for (size_t i = 1; i < md->n_fields; i++)
                if (s->numbers[i - 1] == s->numbers[i])
                        return fail(why, -EINVAL, "message %s: two fields numbered %u", md->name,
                                    s->numbers[i]);
        return 0;
}

static int check_enum(const Vbus__V1__EnumDescription *ed, Scratch *s, char *why)
{
        const char *dup;

        if (ed->n_values == 0)
                return fail(why, -EINVAL, "enum %s: no values", ed->name);
        if (ed->n_values > VBUS_DESCRIPTION_MEMBERS_MAX)
                return fail(why, -E2BIG, "enum %s: more than %d values", ed->name,
                            VBUS_DESCRIPTION_MEMBERS_MAX);
        for (size_t i = 0; i < ed->n_values; i++) {
                if (!is_ident(ed->values[i]->name))
                        return fail(why, -EINVAL, "enum %s: a value name is not an identifier",
                                    ed->name);
                s->names[i] = ed->values[i]->name;
        }
        if ((dup = dup_name(s->names, ed->n_values)) != NULL)
                return fail(why, -EINVAL, "enum %s: two values named '%s'", ed->name, dup);
        return 0;
}

static int check_methods(const Vbus__V1__ServiceDescription *d, const TypeRef *types,
                         size_t n_types, Scratch *s, char *why)
{
        const char *dup;

        for (size_t i = 0; i < d->n_methods; i++) {
                const Vbus__V1__MethodDescription *m = d->methods[i];
                const char *io[2] = {m->input, m->output};

                if (!is_ident(m->name))
                        return fail(why, -EINVAL, "a method name is not an identifier");
                for (size_t k = 0; k < 2; k++) {
                        const TypeRef *t = type_find(types, n_types, io[k]);

                        if (!t || t->is_enum)
                                return fail(why, -EINVAL, "method %s: %s '%.80s' is no message",
                                            m->name, k ? "output" : "input", io[k]);
                }
                s->names[i] = m->name;
        }
        if ((dup = dup_name(s->names, d->n_methods)) != NULL)
                return fail(why, -EINVAL, "two methods named '%s'", dup);
        return 0;
}

/* Counts and type names; fills @types (sorted). */
static int check_types(const Vbus__V1__ServiceDescription *d, TypeRef *types, char *why)
{
        size_t n_types = d->n_messages + d->n_enums, n_members = 0;

        for (size_t i = 0; i < d->n_messages; i++) {
                if (!is_full_name(d->messages[i]->name))
                        return fail(why, -EINVAL, "a message name is not a full type name");
                types[i] = (TypeRef){d->messages[i]->name, false};
                n_members += d->messages[i]->n_fields;
        }
        for (size_t i = 0; i < d->n_enums; i++) {
                if (!is_full_name(d->enums[i]->name))
                        return fail(why, -EINVAL, "an enum name is not a full type name");
                types[d->n_messages + i] = (TypeRef){d->enums[i]->name, true};
                n_members += d->enums[i]->n_values;
        }
        if (n_members > VBUS_DESCRIPTION_FIELDS_MAX)
                return fail(why, -E2BIG, "more than %d fields and enum values",
                            VBUS_DESCRIPTION_FIELDS_MAX);
        qsort(types, n_types, sizeof(*types), typeref_cmp);
        for (size_t i = 1; i < n_types; i++)
                if (strcmp(types[i - 1].name, types[i].name) == 0)
                        return fail(why, -EINVAL, "two types named '%s'", types[i].name);
        return 0;
}

static int check_all(const Vbus__V1__ServiceDescription *d, const char *service, char *why)
{
        size_t n_types = d->n_messages + d->n_enums;
        TypeRef *types = NULL;
        Scratch s = {0};
        int r = -ENOMEM;

        if (strcmp(d->service, service) != 0)
                return fail(why, -EINVAL, "it describes '%.80s', not the service served",
                            d->service);
        if (d->n_methods > VBUS_DESCRIPTION_METHODS_MAX)
                return fail(why, -E2BIG, "more than %d methods", VBUS_DESCRIPTION_METHODS_MAX);
        if (n_types > VBUS_DESCRIPTION_TYPES_MAX)
                return fail(why, -E2BIG, "more than %d types", VBUS_DESCRIPTION_TYPES_MAX);
        types = calloc(n_types + 1, sizeof(*types));
        s.names = calloc(VBUS_DESCRIPTION_MEMBERS_MAX, sizeof(*s.names));
        s.json = calloc(VBUS_DESCRIPTION_MEMBERS_MAX, sizeof(*s.json));
        s.numbers = calloc(VBUS_DESCRIPTION_MEMBERS_MAX, sizeof(*s.numbers));
        if (!types || !s.names || !s.json || !s.numbers)
                goto out;
        r = check_types(d, types, why);
        for (size_t i = 0; r == 0 && i < d->n_messages; i++)
                r = check_message(d->messages[i], types, n_types, &s, why);
        for (size_t i = 0; r == 0 && i < d->n_enums; i++)
                r = check_enum(d->enums[i], &s, why);
        if (r == 0)
                r = check_methods(d, types, n_types, &s, why);
out:
        if (r == -ENOMEM)
                (void)fail(why, r, "out of memory");
        free(types);
        free(s.names);
        free(s.json);
        free(s.numbers);
        return r;
}

int vbus__describe_validate(const uint8_t *buf, size_t len, const char *service, char *why)
{
        static const uint8_t empty[1];
        Vbus__V1__ServiceDescription *d;
        int r;

        if (len > VBUS_DESCRIPTION_MAX)
                return fail(why, -E2BIG, "%zu bytes, more than %d", len, VBUS_DESCRIPTION_MAX);
        if (len == 0)
                buf = empty;
        /* protobuf-c keeps strings NUL-terminated: a NUL inside would hide the rest of a name. */
        if (vbus__control_check_strings(&vbus__v1__service_description__descriptor, buf, len) != 0)
                return fail(why, -EINVAL, "not a vbus.v1.ServiceDescription");
        /* At most VBUS_DESCRIPTION_MAX bytes: so is what decoding allocates, about. */
        d = vbus__v1__service_description__unpack(NULL, len, buf);
        if (!d)
                return fail(why, -EINVAL, "not a vbus.v1.ServiceDescription");
        r = check_all(d, service, why);
        vbus__v1__service_description__free_unpacked(d, NULL);
        return r;
}
