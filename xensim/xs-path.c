/*
 * xs-path: xenstore path validation and manipulation (see xs-path.h).
 * Pure functions over caller-provided buffers; no allocation, no state.
 */
#include "xs-path.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static bool path_chars_valid(const char *s)
{
        for (; *s; s++) {
                char c = *s;

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '/' || c == '_' || c == '@'))
                        return false;
        }
        return true;
}

/* Bytes of "/local/domain/<N>/" at the start of path, or 0 (as Xen's sscanf with %5u). */
static size_t path_local_prefix(const char *path)
{
        static const char prefix[] = "/local/domain/";
        size_t n = sizeof(prefix) - 1, digits = 0;

        if (strncmp(path, prefix, n) != 0)
                return 0;
        while (path[n + digits] >= '0' && path[n + digits] <= '9' && digits < 5)
                digits++;
        if (digits == 0 || path[n + digits] != '/')
                return 0;
        return n + digits + 1;
}

void xs_path_home(uint32_t domid, char *out, size_t out_size)
{
        /* At most 24 bytes and the NUL: with out_size >= 32 it cannot be truncated. */
        assert(out_size >= 32);
        (void)snprintf(out, out_size, "/local/domain/%" PRIu32, domid);
}

int xs_path_canonicalize(uint32_t domid, bool privileged, const char *in, bool allow_special,
                         char *out, size_t out_size, bool *ret_relative)
{
        size_t in_len = strnlen(in, XS_ABS_PATH_MAX + 1), len;
        bool relative = false;

        if (in_len > XS_ABS_PATH_MAX || !path_chars_valid(in))
                return -EINVAL;
        if (in[0] == '@') {
                if (!allow_special || in_len > XS_REL_PATH_MAX || in_len + 1 > out_size)
                        return -EINVAL;
                memcpy(out, in, in_len + 1);
                if (ret_relative)
                        *ret_relative = false;
                return 0;
        }
        if (in[0] == '/') {
                if (in_len + 1 > out_size)
                        return -EINVAL;
                memcpy(out, in, in_len + 1);
        } else {
                int n = snprintf(out, out_size, "/local/domain/%" PRIu32 "/%s", domid, in);

                if (n < 0 || (size_t)n >= out_size)
                        return -EINVAL;
                relative = true;
        }
        len = strlen(out);
        if (len > XS_ABS_PATH_MAX)
                return -EINVAL;
        if (len > 1 && out[len - 1] == '/')
                return -EINVAL;
        if (strstr(out, "//"))
                return -EINVAL;
        if (!privileged && len - path_local_prefix(out) > XS_REL_PATH_MAX)
                return -EINVAL;
        if (ret_relative)
                *ret_relative = relative;
        return 0;
}

bool xs_path_is_child(const char *child, const char *parent)
{
        size_t n = strlen(parent);

        /* As in Xen, a watch on "/" sees everything, special events included. */
        if (strcmp(parent, "/") == 0)
                return true;
        if (strncmp(child, parent, n) != 0)
                return false;
        return child[n] == '/' || child[n] == 0;
}

int xs_path_parent(const char *path, char *out, size_t out_size)
{
        const char *slash;
        size_t n;

        if (path[0] != '/' || path[1] == 0)
                return -EINVAL;
        slash = strrchr(path, '/');
        n = slash == path ? 1 : (size_t)(slash - path);
        if (n + 1 > out_size)
                return -EINVAL;
        memcpy(out, path, n);
        out[n] = 0;
        return 0;
}

const char *xs_path_basename(const char *path)
{
        const char *slash = strrchr(path, '/');

        return slash ? slash + 1 : path;
}

const char *xs_path_for_event(const char *name, bool relative, uint32_t watcher_domid)
{
        char home[32];
        size_t n;

        if (!relative)
                return name;
        xs_path_home(watcher_domid, home, sizeof(home));
        n = strlen(home);
        if (strncmp(name, home, n) != 0)
                return name;
        if (name[n] == '/')
                return name + n + 1;
        if (name[n] == 0)
                return name + n;
        return name;
}
