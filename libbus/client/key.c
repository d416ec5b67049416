/* SPDX-License-Identifier: MIT */
/*
 * key: the key-file part of the public API of channel auth (<vbus/vbus.h>,
 * vbus_key_generate()). Keys, their files and the proofs are libbus/wire/auth.c's; this only
 * puts the public face on them for programs such as `vbusctl keygen`.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <vbus/vbus.h>

#include "auth.h"

VBUS_EXPORT int vbus_key_generate(const char *path, char *ret_public_key, size_t size)
{
        char pub_path[4096];
        VbusAuthKey key;
        int r;

        if (!path || !path[0] || (ret_public_key && size < VBUS_KEY_TEXT_SIZE))
                return -EINVAL;
        if (snprintf(pub_path, sizeof(pub_path), "%s.pub", path) >= (int)sizeof(pub_path))
                return -ENAMETOOLONG;
        r = vbus__auth_key_generate(&key);
        if (r == 0)
                r = vbus__auth_key_save(&key, path, pub_path);
        if (r == 0 && ret_public_key)
                r = vbus__auth_key_to_text(key.public_key, ret_public_key);
        vbus__auth_key_wipe(&key);
        return r;
}
