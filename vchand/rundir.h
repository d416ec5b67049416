/* SPDX-License-Identifier: MIT */
/*
 * rundir: what vchand (broker or agent) keeps in its run directory: the single-instance lock and
 * the socket's owner, group and mode, and the listening socket itself (made under a temporary
 * name and renamed into place).
 *
 * The lock is an flock() on "<socket>.lock" (default /run/vbus/broker.sock.lock), taken before
 * anything else is touched: a second vchand for the same socket refuses to start, naming the
 * live one's pid, and never unlinks that one's socket nor, for a broker, reaches xenstore (the
 * lock is taken before discovery starts). The lock goes with the process, so a vchand killed
 * with -9 leaves nothing that stops the next one: the stale socket is unlinked under the lock.
 */
#ifndef VCHAND_RUNDIR_H
#define VCHAND_RUNDIR_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * rundir_lock() - take the single-instance lock of @socket_path.
 * @ret_fd: written on success: the lock's fd, held until exit.
 * @err, @n_err: on failure, a message for the user (names the live instance's pid if known).
 * Return: 0; -EBUSY (another vchand holds it); another -errno.
 */
int rundir_lock(const char *socket_path, int *ret_fd, char *err, size_t n_err);

/**
 * rundir_listen() - a listening socket at @path with its owner, group and mode, made under a
 * temporary name and renamed into place, so that a client never finds the path before it listens
 * with its final permissions (libvbus takes a refused or forbidden connection for a permanent
 * error). A stale socket at @path (a dead instance's: the caller holds the lock) is replaced.
 * @owner, @group: names ("": the owner stays vchand's user, root for the system service; the
 *                 group is "vbus" by default). @mode: permission bits.
 * @group_default: @group is the default, not the administrator's choice: when it does not exist
 *                 (or vchand is not root) the socket stays in vchand's group, said in @note,
 *                 instead of failing.
 * @ret_fd: written on success (non-blocking, close-on-exec).
 * @note, @n_note: written: on success a line for the log (possibly empty); on failure, why.
 * Return: 0 or -errno.
 */
int rundir_listen(const char *path, const char *owner, const char *group, bool group_default,
                  uint32_t mode, int *ret_fd, char *note, size_t n_note);

/*
 * Whether accept() failed for want of the broker's own fds or memory (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM): the connection stays in the backlog and the listening socket stays readable, so the
 * caller must rest it (LIMIT_ACCEPT_PAUSE_MS) rather than retry at once and spin.
 */
static inline bool rundir_accept_must_rest(int error)
{
        return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

#endif /* VCHAND_RUNDIR_H */
