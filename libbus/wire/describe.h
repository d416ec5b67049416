/* SPDX-License-Identifier: MIT */
/*
 * describe: the rules of a vbus.v1.ServiceDescription (proto/vbus/v1/describe.proto,
 * docs/reflection.md), the message a server sends on its SERVE stream to say what its service's
 * methods and types are. The broker validates every description with vbus__describe_validate()
 * before it keeps it (a server is a peer like any other: its description is untrusted input),
 * and the client library checks its own with the same function before sending, so an honest
 * server over a limit hears it from its own call, not from a reset stream.
 *
 * The description is flat: messages and enums listed once by full name, fields and methods
 * referring to them by name. Its nesting depth is therefore fixed (three), and a recursive type
 * (a message with a field of its own type, directly or through others) is a legal reference, not
 * a loop the validator has to walk: nothing here follows references transitively. Every
 * reference must resolve to a type of the right kind in the same description.
 */
#ifndef VBUS_LIBBUS_DESCRIBE_H
#define VBUS_LIBBUS_DESCRIBE_H

#include <stddef.h>
#include <stdint.h>

/* Limits of a description, mirrored in docs/protocol.md, "Limits". */
enum {
        /* Bytes of a packed description: the broker keeps one per server, charged to it. */
        VBUS_DESCRIPTION_MAX = 64 * 1024,
        /* Methods of one service. */
        VBUS_DESCRIPTION_METHODS_MAX = 256,
        /* Message and enum types together: bounds the sort and the lookups of references. */
        VBUS_DESCRIPTION_TYPES_MAX = 512,
        /* Fields over all messages, and enum values over all enums: each is looked up once. */
        VBUS_DESCRIPTION_FIELDS_MAX = 4096,
        /* Fields of one message, values of one enum. */
        VBUS_DESCRIPTION_MEMBERS_MAX = 1024,
        /* Bytes of the reason vbus__describe_validate() gives. */
        VBUS_DESCRIPTION_WHY_MAX = 160,
};

/* Highest protobuf field number, and the range protobuf reserves for itself. */
#define VBUS_FIELD_NUMBER_MAX     536870911u
#define VBUS_FIELD_RESERVED_FIRST 19000u
#define VBUS_FIELD_RESERVED_LAST  19999u

/**
 * vbus__describe_validate() - whether @buf (@len bytes, borrowed, not NUL-terminated) is a valid
 * description of the service @service (NUL-terminated, borrowed).
 * @why: at least VBUS_DESCRIPTION_WHY_MAX bytes; on failure, one line naming what is wrong and
 *       where ("message storage.v1.GetRequest: field 'key': number 0 out of range").
 *
 * Rules: at most VBUS_DESCRIPTION_MAX bytes; a protobuf encoding of ServiceDescription without
 * NUL bytes in strings; `service` is @service; names are identifiers ([A-Za-z_][A-Za-z0-9_]*,
 * at most 255 bytes; type names dot-separated identifiers), unique where they must be (methods;
 * types; fields, JSON names and numbers within a message; values within an enum); counts within
 * the limits above; field numbers within 1..VBUS_FIELD_NUMBER_MAX and outside the reserved
 * range; a known type; `type_name` set exactly for enum and message fields and naming a type of
 * that kind; `packed` only on repeated numeric fields; an enum has at least one value; method
 * inputs and outputs name messages.
 * Return: 0; -E2BIG (over a size or count limit); -EINVAL (anything else); -ENOMEM.
 */
int vbus__describe_validate(const uint8_t *buf, size_t len, const char *service, char *why);

#endif /* VBUS_LIBBUS_DESCRIBE_H */
