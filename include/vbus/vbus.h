/* SPDX-License-Identifier: MIT */
/*
 * vbus: a message bus for the virtual machines of one Xen host.
 *
 * This is the public API of libvbus. Every handle is opaque; every function that can fail
 * returns 0 (or a documented non-negative value) on success and a negative errno value on
 * failure, and never aborts on bad input. Nothing in libvbus is thread-safe unless a function
 * says so: use one connection per thread, or lock around it.
 */
#ifndef VBUS_VBUS_H
#define VBUS_VBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VBUS_EXPORT __attribute__((visibility("default")))
#else
#define VBUS_EXPORT
#endif

/* The wire protocol version this library speaks (docs/protocol.md). */
#define VBUS_PROTOCOL_VERSION 1

/*
 * The outcome of a stream, an RPC call or a link, as carried on the wire. The values are the
 * wire values of vbus.v1.Status and never change.
 */
typedef enum vbus_status {
        VBUS_STATUS_UNSPECIFIED = 0,
        VBUS_STATUS_OK = 1,
        VBUS_STATUS_CANCELLED = 2,
        VBUS_STATUS_INVALID_ARGUMENT = 3,
        VBUS_STATUS_DEADLINE_EXCEEDED = 4,
        VBUS_STATUS_NOT_FOUND = 5,
        VBUS_STATUS_PERMISSION_DENIED = 6,
        VBUS_STATUS_RESOURCE_EXHAUSTED = 7,
        VBUS_STATUS_UNAVAILABLE = 8,
        VBUS_STATUS_INTERNAL = 9,
        VBUS_STATUS_APPLICATION = 10,
        VBUS_STATUS_PROTOCOL_ERROR = 11,
        VBUS_STATUS_UNSUPPORTED = 12,
        VBUS_STATUS_SHUTTING_DOWN = 13,
        VBUS_STATUS_N = 14, /* count of defined values, not a status */
} vbus_status;

/**
 * vbus_version() - the version of the library.
 *
 * Return: a static string such as "0.1.0"; never NULL. Thread-safe.
 */
VBUS_EXPORT const char *vbus_version(void);

/**
 * vbus_status_name() - the name of a status, for messages and logs.
 * @status: any integer.
 *
 * Return: a static lower-case name such as "deadline-exceeded", or "unknown" for a value that is
 * not a defined vbus_status (a newer peer may send one). Never NULL. Thread-safe.
 */
VBUS_EXPORT const char *vbus_status_name(int status);

/**
 * vbus_status_from_name() - parse a status name as printed by vbus_status_name().
 * @name: borrowed, NUL-terminated.
 * @ret_status: written only on success.
 *
 * Return: 0 on success; -EINVAL if @name or @ret_status is NULL; -ENOENT if @name is not the name
 * of a defined status. Thread-safe.
 */
VBUS_EXPORT int vbus_status_from_name(const char *name, vbus_status *ret_status);

#ifdef __cplusplus
}
#endif

#endif /* VBUS_VBUS_H */
