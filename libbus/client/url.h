/* SPDX-License-Identifier: MIT */
/*
 * url: where a connection finds its broker. "unix:<path>" (a UNIX stream socket) or
 * "vchan:<broker domid>" (this domain publishes a vchan for the broker to map); without a URL,
 * $VBUS_URL, else the broker's socket if it exists, else vchan to domain 0. Not installed.
 */
#ifndef VBUS_LIBBUS_URL_H
#define VBUS_LIBBUS_URL_H

#include <stdint.h>
#include <sys/un.h>

typedef enum VbusUrlKind {
        VBUS_URL_UNIX = 1,
        VBUS_URL_VCHAN = 2,
} VbusUrlKind;

typedef struct VbusUrl {
        VbusUrlKind kind;
        char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix: NUL-terminated */
        uint32_t broker_domid;                                  /* vchan: < 0x7ff0 */
} VbusUrl;

/**
 * vbus__url_parse() - parse @url (borrowed, NUL-terminated).
 * @ret_url: written on success.
 * Return: 0; -EINVAL (malformed: empty or too long a path, a domid that is not a decimal number
 * below 0x7ff0); -EAFNOSUPPORT (a scheme other than unix: and vchan:).
 */
int vbus__url_parse(const char *url, VbusUrl *ret_url);

/* The URL to use when the application gives none (see the top of this file). Borrowed: static,
 * or the environment's. */
const char *vbus__url_default(void);

#endif /* VBUS_LIBBUS_URL_H */
