/* SPDX-License-Identifier: MIT */
/*
 * A vbus.v1.ServiceDescription built by hand for the unit tests of the description's validator
 * (test-describe.c) and of vbusctl's JSON codec (test-pbjson.c): service t.v1.S with methods
 * Get (t.v1.Msg -> t.v1.Msg) and Watch (server-streaming); message t.v1.Msg holds a field of
 * every type, repeated ones (one packed), an enum t.v1.Color, and itself (a recursive type).
 */
#ifndef VBUS_TESTS_DESCRIBE_FIXTURE_H
#define VBUS_TESTS_DESCRIBE_FIXTURE_H

#include "vbus/v1/describe.pb-c.h"

#define FT(x) VBUS__V1__FIELD_DESCRIPTION__TYPE__TYPE_##x

typedef struct Fixture {
        Vbus__V1__ServiceDescription d;
        Vbus__V1__MethodDescription m[2], *mp[2];
        Vbus__V1__MessageDescription msg, *msgp[1];
        Vbus__V1__FieldDescription f[17], *fp[17];
        Vbus__V1__EnumDescription en, *enp[1];
        Vbus__V1__EnumValueDescription v[3], *vp[3];
} Fixture;

static void fixture_field(Fixture *fx, size_t i, const char *name, const char *json,
                          uint32_t number, Vbus__V1__FieldDescription__Type type, bool repeated,
                          const char *type_name)
{
        Vbus__V1__FieldDescription *f = &fx->f[i];

        vbus__v1__field_description__init(f);
        f->name = (char *)name;
        f->json_name = (char *)json;
        f->number = number;
        f->type = type;
        f->repeated = repeated;
        f->type_name = (char *)(type_name ? type_name : "");
        fx->fp[i] = f;
}

static void fixture_init(Fixture *fx)
{
        static const char *const names[] = {"RED", "GREEN", "BLUE"};

        memset(fx, 0, sizeof(*fx));
        vbus__v1__service_description__init(&fx->d);
        fx->d.service = (char *)"t.v1.S";
        for (size_t i = 0; i < 2; i++) {
                vbus__v1__method_description__init(&fx->m[i]);
                fx->m[i].name = (char *)(i ? "Watch" : "Get");
                fx->m[i].input = (char *)"t.v1.Msg";
                fx->m[i].output = (char *)"t.v1.Msg";
                fx->m[i].server_streaming = i == 1;
                fx->mp[i] = &fx->m[i];
        }
        fx->d.n_methods = 2;
        fx->d.methods = fx->mp;
        fixture_field(fx, 0, "i32", "i32", 1, FT(INT32), false, NULL);
        fixture_field(fx, 1, "i64", "i64", 2, FT(INT64), false, NULL);
        fixture_field(fx, 2, "u32", "u32", 3, FT(UINT32), false, NULL);
        fixture_field(fx, 3, "s64", "s64", 4, FT(SINT64), false, NULL);
        fixture_field(fx, 4, "b", "b", 5, FT(BOOL), false, NULL);
        fixture_field(fx, 5, "s", "s", 6, FT(STRING), false, NULL);
        fixture_field(fx, 6, "by", "by", 7, FT(BYTES), false, NULL);
        fixture_field(fx, 7, "d", "d", 8, FT(DOUBLE), false, NULL);
        fixture_field(fx, 8, "f", "f", 9, FT(FLOAT), false, NULL);
        fixture_field(fx, 9, "e", "e", 10, FT(ENUM), false, "t.v1.Color");
        fixture_field(fx, 10, "sub", "sub", 11, FT(MESSAGE), false, "t.v1.Msg");
        fixture_field(fx, 11, "nums", "nums", 12, FT(INT32), true, NULL);
        fx->f[11].packed = true;
        fixture_field(fx, 12, "tags", "tags", 13, FT(STRING), true, NULL);
        fixture_field(fx, 13, "kids", "kids", 14, FT(MESSAGE), true, "t.v1.Msg");
        fixture_field(fx, 14, "fx", "fx", 15, FT(FIXED64), false, NULL);
        fixture_field(fx, 15, "user_id", "userId", 16, FT(UINT64), false, NULL);
        fixture_field(fx, 16, "s32", "s32", 17, FT(SINT32), false, NULL);
        vbus__v1__message_description__init(&fx->msg);
        fx->msg.name = (char *)"t.v1.Msg";
        fx->msg.n_fields = 17;
        fx->msg.fields = fx->fp;
        fx->msgp[0] = &fx->msg;
        fx->d.n_messages = 1;
        fx->d.messages = fx->msgp;
        vbus__v1__enum_description__init(&fx->en);
        fx->en.name = (char *)"t.v1.Color";
        for (size_t i = 0; i < 3; i++) {
                vbus__v1__enum_value_description__init(&fx->v[i]);
                fx->v[i].name = (char *)names[i];
                fx->v[i].number = (int32_t)i;
                fx->vp[i] = &fx->v[i];
        }
        fx->en.n_values = 3;
        fx->en.values = fx->vp;
        fx->enp[0] = &fx->en;
        fx->d.n_enums = 1;
        fx->d.enums = fx->enp;
}

#endif /* VBUS_TESTS_DESCRIBE_FIXTURE_H */
