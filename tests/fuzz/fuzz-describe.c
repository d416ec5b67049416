/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the checks of a server's vbus.v1.ServiceDescription (libbus/wire/describe.c),
 * what the broker runs on bytes a server controls.
 *
 * Input: the bytes a server sends as the description of "t.v1.S". The checks must return 0,
 * -EINVAL or -E2BIG (never anything else), with a NUL-terminated reason within its buffer on
 * failure; a description accepted must decode again. Any crash, over-read (ASan), undefined
 * behaviour (UBSan) or leak is a finding.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "describe.h"
#include "vbus/v1/describe.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char why[VBUS_DESCRIPTION_WHY_MAX + 1];
        int r;

        memset(why, 'x', sizeof(why));
        why[VBUS_DESCRIPTION_WHY_MAX] = '\0';
        r = vbus__describe_validate(data, size, "t.v1.S", why);
        if (r != 0 && r != -EINVAL && r != -E2BIG && r != -ENOMEM)
                abort();
        if (r < 0 && !memchr(why, '\0', VBUS_DESCRIPTION_WHY_MAX))
                abort();
        if (r == 0) {
                Vbus__V1__ServiceDescription *d =
                        vbus__v1__service_description__unpack(NULL, size, data);

                if (!d || strcmp(d->service, "t.v1.S") != 0)
                        abort();
                vbus__v1__service_description__free_unpacked(d, NULL);
        }
        return 0;
}
