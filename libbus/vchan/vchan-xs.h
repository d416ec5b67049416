/* SPDX-License-Identifier: MIT */
/*
 * vchan-xs: xenstore access for the layers above, so that only libbus/vchan calls libxenstore.
 * A thin, checked wrapper of one libxenstore handle: reads, directory listings, watches and
 * their events, and the removal of a vchan's keys that checks, in the same transaction, that
 * they are still the ones the caller means.
 *
 * Values read from xenstore come from guests or the toolstack: they are returned as bytes with a
 * length (a NUL is appended for convenience, but the value may contain NULs itself), to be
 * parsed strictly by the caller.
 *
 * Errors are negative errno values; nothing here logs or aborts. Not thread-safe: one handle per
 * thread, as libxenstore's.
 */
#ifndef VBUS_LIBBUS_VCHAN_XS_H
#define VBUS_LIBBUS_VCHAN_XS_H

#include <stddef.h>
#include <stdint.h>

#include "vchan.h"

enum {
        /* Attempts of a checked removal that keeps losing its transaction to other writers:
         * a guest rewriting its keys in a loop cannot hold the broker in one. */
        VBUS_XS_REMOVE_ATTEMPTS = 8,
};

typedef struct VbusXs VbusXs;

/* Opens xenstore as this domain. Return: 0 and a new handle in *ret, or -errno. */
int vbus__xs_open(VbusXs **ret);

/* Closes the handle (watches go with it). Accepts NULL; returns NULL. */
VbusXs *vbus__xs_close(VbusXs *xs);

/* The fd to poll for POLLIN: watch events are waiting. */
int vbus__xs_get_fd(VbusXs *xs);

/**
 * vbus__xs_read() - the value at @path (absolute, or relative to this domain's home).
 * @ret: written on success: a malloc'ed copy, NUL-terminated (free() it).
 * @ret_len: written on success: the value's length, without that NUL.
 * Return: 0, or -errno (-ENOENT: no such key; -EACCES: not ours to read).
 */
int vbus__xs_read(VbusXs *xs, const char *path, char **ret, size_t *ret_len);

/**
 * vbus__xs_read_protected() - the value at @path, only if domain @guest cannot have written it.
 * The key's permissions are read first: its owner must be @trusted (the toolstack's domain,
 * whose owner rights include writing), and neither the default permission (the first entry's)
 * nor an entry naming @guest may grant write. This is how the toolstack's tags of a guest
 * (policy @tag:) are told from keys the guest itself writes under /local/domain/<guest>.
 * @ret, @ret_len: as vbus__xs_read().
 * Return: 0; -EPERM (@guest could write the key: it is not read); -ENOENT; -errno.
 */
int vbus__xs_read_protected(VbusXs *xs, const char *path, unsigned int guest, unsigned int trusted,
                            char **ret, size_t *ret_len);

/**
 * vbus__xs_directory() - the names under @path.
 * @ret: written on success: a malloc'ed array of @ret_n NUL-terminated names, in the same
 *       allocation (one free() releases both).
 * Return: 0, or -errno.
 */
int vbus__xs_directory(VbusXs *xs, const char *path, char ***ret, unsigned int *ret_n);

/* Watches @path (and what is below it); events carry @token. Return: 0 or -errno. */
int vbus__xs_watch(VbusXs *xs, const char *path, const char *token);
int vbus__xs_unwatch(VbusXs *xs, const char *path, const char *token);

/**
 * vbus__xs_next_event() - the next watch event already received, without blocking.
 * @ret_token: written on 1: a malloc'ed copy of the event's token (free() it).
 * Return: 1 (an event), 0 (none waiting).
 */
int vbus__xs_next_event(VbusXs *xs, char **ret_token);

/**
 * vbus__xs_remove_if() - remove the directory @path if @path/@key still reads @expected.
 * The read and the removal are one transaction, retried up to VBUS_XS_REMOVE_ATTEMPTS times on
 * conflict, so a value written meanwhile (a guest's fresh vchan) is kept.
 * Return: 1 (removed), 0 (the value differs or is gone: nothing removed), -ENAMETOOLONG (the
 * path is longer than xenstore allows), or another -errno (-EAGAIN: every attempt conflicted).
 */
int vbus__xs_remove_if(VbusXs *xs, const char *path, const char *key, const char *expected);

/**
 * vbus__xs_vchan_handles() - the handles to set up client ends with on this connection (for
 * vbus__vchan_client_keys() and the steps after it): @xs's xenstore connection, and one
 * grant-table handle and one event-channel handle that every vchan set up through @xs shares
 * (both opened by the first call). So a vchan costs no descriptor of its own: its events come on
 * the one fd of vbus__xs_vchan_events_fd(), taken with vbus__vchan_next_event().
 * Borrowed: @xs must outlive the vchans.
 * Return: 0, or -errno (opening a handle: a local error).
 */
int vbus__xs_vchan_handles(VbusXs *xs, VbusVchanHandles *ret);

/* vbus__vchan_client_keys() on this connection, opening nothing else: a guest that has
 * published nothing costs the broker no handle. */
int vbus__xs_vchan_keys(VbusXs *xs, const char *path, uint32_t *ret_ring_ref, uint32_t *ret_port);

/* The fd of the shared event-channel handle to poll for POLLIN, or -1 before it is opened. */
int vbus__xs_vchan_events_fd(VbusXs *xs);

#endif /* VBUS_LIBBUS_VCHAN_XS_H */
