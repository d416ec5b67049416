/* SPDX-License-Identifier: MIT */
/*
 * Library version and status names: the small part of the public API that needs no connection.
 */
#include <errno.h>
#include <string.h>

#include <vbus/vbus.h>

static const char *const status_names[VBUS_STATUS_N] = {
        [VBUS_STATUS_UNSPECIFIED] = "unspecified",
        [VBUS_STATUS_OK] = "ok",
        [VBUS_STATUS_CANCELLED] = "cancelled",
        [VBUS_STATUS_INVALID_ARGUMENT] = "invalid-argument",
        [VBUS_STATUS_DEADLINE_EXCEEDED] = "deadline-exceeded",
        [VBUS_STATUS_NOT_FOUND] = "not-found",
        [VBUS_STATUS_PERMISSION_DENIED] = "permission-denied",
        [VBUS_STATUS_RESOURCE_EXHAUSTED] = "resource-exhausted",
        [VBUS_STATUS_UNAVAILABLE] = "unavailable",
        [VBUS_STATUS_INTERNAL] = "internal",
        [VBUS_STATUS_APPLICATION] = "application",
        [VBUS_STATUS_PROTOCOL_ERROR] = "protocol-error",
        [VBUS_STATUS_UNSUPPORTED] = "unsupported",
        [VBUS_STATUS_SHUTTING_DOWN] = "shutting-down",
};

VBUS_EXPORT const char *vbus_version(void)
{
        return VBUS_VERSION_STRING;
}

VBUS_EXPORT const char *vbus_status_name(int status)
{
        if (status < 0 || status >= VBUS_STATUS_N)
                return "unknown";
        return status_names[status];
}

VBUS_EXPORT int vbus_status_from_name(const char *name, vbus_status *ret_status)
{
        if (!name || !ret_status)
                return -EINVAL;
        for (int i = 0; i < VBUS_STATUS_N; i++) {
                if (strcmp(name, status_names[i]) == 0) {
                        *ret_status = (vbus_status)i;
                        return 0;
                }
        }
        return -ENOENT;
}
