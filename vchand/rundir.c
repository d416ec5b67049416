/* SPDX-License-Identifier: MIT */
/*
 * rundir: the single-instance lock and the socket's permissions (see rundir.h).
 */
#include "rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int rundir_lock(const char *socket_path, int *ret_fd, char *err, size_t n_err)
{
        char path[128], pid[32] = "";
        ssize_t n;
        int fd, r;

        char *slash;

        if ((size_t)snprintf(path, sizeof(path), "%s.lock", socket_path) >= sizeof(path)) {
                (void)snprintf(err, n_err, "%s.lock: path too long", socket_path);
                return -ENAMETOOLONG;
        }
        /* The run directory (/run/vbus) may not exist yet after a boot. */
        slash = strrchr(path, '/');
        if (slash && slash != path) {
                *slash = '\0';
                (void)mkdir(path, 0755);
                *slash = '/';
        }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
                r = -errno;
                (void)snprintf(err, n_err, "cannot open the lock %s: %s", path, strerror(errno));
                return r;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                r = -errno;
                n = pread(fd, pid, sizeof(pid) - 1, 0);
                pid[n > 0 ? n : 0] = '\0';
                pid[strcspn(pid, "\n")] = '\0';
                if (r == -EWOULDBLOCK)
                        (void)snprintf(err, n_err,
                                       "another vchand (pid %s) already serves %s (it holds %s); "
                                       "this one leaves it alone and exits",
                                       pid[0] ? pid : "unknown", socket_path, path);
                else
                        (void)snprintf(err, n_err, "cannot lock %s: %s", path, strerror(-r));
                close(fd);
                return r == -EWOULDBLOCK ? -EBUSY : r;
        }
        /* For the message of the next one: which process holds it. A failure here would only
         * cost that message the pid: not worth failing for. */
        n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) != n)
                pid[0] = '\0';
        *ret_fd = fd;
        return 0;
}

/*
 * Gives the socket @path its owner, group and mode; messages name it @shown, as clients will know
 * it. @owner, @group: "" for vchand's own user and the default group. @group_default: @group is
 * the default, not the administrator's choice: when it does not exist, or cannot be given
 * (vchand not run as root), the socket stays as created and @note says so instead of failing.
 * Return: 0 (@note may hold a line for the log); -ENOENT (a named owner or group that does not
 * exist); another -errno. @note says why.
 */
static int socket_perms(const char *path, const char *shown, const char *owner, const char *group,
                        bool group_default, uint32_t mode, char *note, size_t n_note)
{
        /* -1: left as created (by vchand's own user: root for a system service). */
        uid_t uid = (uid_t)-1;
        gid_t gid = (gid_t)-1;

        note[0] = '\0';
        if (owner[0]) {
                struct passwd *pw = getpwnam(owner);

                if (!pw) {
                        (void)snprintf(note, n_note, "socket_owner '%s': no such user", owner);
                        return -ENOENT;
                }
                uid = pw->pw_uid;
        }
        if (group[0]) {
                struct group *gr = getgrnam(group);

                if (gr) {
                        gid = gr->gr_gid;
                } else if (group_default) {
                        (void)snprintf(note, n_note,
                                       "group '%s' does not exist: %s stays in root's group "
                                       "(mode %04o), so only root may connect; create the group, "
                                       "or set socket_group in vchand.conf",
                                       group, shown, mode);
                } else {
                        (void)snprintf(note, n_note, "socket_group '%s': no such group", group);
                        return -ENOENT;
                }
        }
        if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) < 0) {
                int r = -errno;

                /* Not root, and nothing asked for explicitly: the group is a default only. */
                if (!owner[0] && group_default) {
                        (void)snprintf(note, n_note,
                                       "cannot give %s to group '%s' (%s): it stays this "
                                       "user's, mode %04o",
                                       shown, group, strerror(errno), mode);
                } else {
                        (void)snprintf(note, n_note, "cannot set the owner of %s: %s", shown,
                                       strerror(errno));
                        return r;
                }
        }
        if (chmod(path, mode) < 0) {
                int r = -errno;

                (void)snprintf(note, n_note, "cannot set the mode of %s: %s", shown,
                               strerror(errno));
                return r;
        }
        return 0;
}

int rundir_listen(const char *path, const char *owner, const char *group, bool group_default,
                  uint32_t mode, int *ret_fd, char *note, size_t n_note)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd, r;

        note[0] = '\0';
        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.new", path) >=
            sizeof(sa.sun_path)) {
                (void)snprintf(note, n_note, "%s: path too long for a socket", path);
                return -ENAMETOOLONG;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                r = -errno;
                (void)snprintf(note, n_note, "socket: %s", strerror(errno));
                return r;
        }
        (void)unlink(sa.sun_path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
                r = -errno;
                (void)snprintf(note, n_note, "cannot listen on %s: %s", sa.sun_path,
                               strerror(errno));
                close(fd);
                return r;
        }
        r = socket_perms(sa.sun_path, path, owner, group, group_default, mode, note, n_note);
        if (r == 0 && rename(sa.sun_path, path) < 0) {
                r = -errno;
                (void)snprintf(note, n_note, "cannot rename %s to %s: %s", sa.sun_path, path,
                               strerror(errno));
        }
        if (r < 0) {
                close(fd);
                (void)unlink(sa.sun_path);
                return r;
        }
        *ret_fd = fd;
        return 0;
}
