/*
 * xs-perm: permission text parsing and the access rule (see xs-perm.h).
 */
#include "xs-perm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

int xs_perm_parse(const char *s, XsPerm *ret)
{
        uint32_t access, domid = 0;
        const char *p;

        switch (s[0]) {
        case 'n':
                access = XS_ACC_NONE;
                break;
        case 'r':
                access = XS_ACC_READ;
                break;
        case 'w':
                access = XS_ACC_WRITE;
                break;
        case 'b':
                access = XS_ACC_READ | XS_ACC_WRITE;
                break;
        default:
                return -EINVAL;
        }
        if (s[1] == 0)
                return -EINVAL;
        for (p = s + 1; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                domid = domid * 10u + (uint32_t)(*p - '0');
                if (domid > 0xFFFFu)
                        return -EINVAL;
        }
        ret->domid = domid;
        ret->access = access;
        return 0;
}

size_t xs_perm_format(const XsPerm *perm, char *buf, size_t size)
{
        static const char letters[] = "nrwb";
        int n = snprintf(buf, size, "%c%" PRIu32, letters[perm->access & 3u], perm->domid);

        return n < 0 ? 0 : (size_t)n;
}

uint32_t xs_perm_for(const XsPerm *perms, size_t n_perms, uint32_t domid, bool privileged)
{
        const uint32_t all = XS_ACC_READ | XS_ACC_WRITE | XS_ACC_OWNER;

        if (privileged || perms[0].domid == domid)
                return all;
        for (size_t i = 1; i < n_perms; i++)
                if (perms[i].domid == domid)
                        return perms[i].access & (XS_ACC_READ | XS_ACC_WRITE);
        return perms[0].access & (XS_ACC_READ | XS_ACC_WRITE);
}
