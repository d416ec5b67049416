/* SPDX-License-Identifier: MIT */
/*
 * url: parsing the broker's URL and choosing the default one (see url.h).
 */
#include "url.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int vbus__url_parse(const char *url, VbusUrl *ret_url)
{
        VbusUrl u = {0};

        if (strncmp(url, "unix:", 5) == 0) {
                const char *p = url + 5;

                if (p[0] == '\0' || strlen(p) >= sizeof(u.path))
                        return -EINVAL;
                u.kind = VBUS_URL_UNIX;
                memcpy(u.path, p, strlen(p) + 1);
                *ret_url = u;
                return 0;
        }
        if (strncmp(url, "vchan:", 6) == 0) {
                const char *p = url + 6;
                char *end;
                unsigned long v;

                if (p[0] < '0' || p[0] > '9')
                        return -EINVAL;
                errno = 0;
                v = strtoul(p, &end, 10);
                if (errno || *end || v >= 0x7ff0)
                        return -EINVAL;
                u.kind = VBUS_URL_VCHAN;
                u.broker_domid = (uint32_t)v;
                *ret_url = u;
                return 0;
        }
        return strchr(url, ':') ? -EAFNOSUPPORT : -EINVAL;
}

const char *vbus__url_default(void)
{
        const char *env = getenv("VBUS_URL");
        struct stat st;

        if (env && env[0])
                return env;
        if (stat("/run/vbus/broker.sock", &st) == 0 && S_ISSOCK(st.st_mode))
                return "unix:/run/vbus/broker.sock";
        return "vchan:0";
}
