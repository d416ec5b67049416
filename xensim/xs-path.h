/*
 * xs-path: xenstore path syntax, as Xen's xenstored checks it.
 *
 * A canonical path is absolute ("/a/b"), or a special path ("@introduceDomain"), built only
 * from [A-Za-z0-9-/_@], without "//" and without a trailing '/' (except "/" itself), at most
 * XS_ABS_PATH_MAX bytes, and for unprivileged callers at most XS_REL_PATH_MAX bytes below
 * "/local/domain/<N>/". A relative path is resolved against the caller's home
 * "/local/domain/<domid>".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xs-limits.h"

/* Buffer size that holds any canonical path and its NUL. */
#define XS_PATH_BUF (XS_ABS_PATH_MAX + 32u)

/*
 * Canonicalizes in (borrowed, NUL-terminated) as sent by domain domid into out (out_size at
 * least XS_PATH_BUF). Special paths are accepted only with allow_special. *ret_relative
 * (may be NULL) tells whether in was relative. Returns 0 or -EINVAL.
 */
int xs_path_canonicalize(uint32_t domid, bool privileged, const char *in, bool allow_special,
                         char *out, size_t out_size, bool *ret_relative);

/* Whether child is parent or below it (as in Xen, "/" is the parent of every path). */
bool xs_path_is_child(const char *child, const char *parent);

/*
 * Writes the parent of an absolute path other than "/" into out (out_size >= strlen+1).
 * Returns 0, or -EINVAL for "/", special or relative paths.
 */
int xs_path_parent(const char *path, char *out, size_t out_size);

/* The last component of an absolute path other than "/" (borrowed, points into path). */
const char *xs_path_basename(const char *path);

/* Writes "/local/domain/<domid>" into out (out_size >= 32). */
void xs_path_home(uint32_t domid, char *out, size_t out_size);

/*
 * The path to report in a watch event: for a watch registered with a relative path, name
 * relative to the watcher's home (borrowed, points into name); otherwise name itself.
 */
const char *xs_path_for_event(const char *name, bool relative, uint32_t watcher_domid);
