/* SPDX-License-Identifier: MIT */
/*
 * fuzz-listen: the UNIX socket a client-side fuzz harness plays the broker on, one per process
 * (libFuzzer runs many inputs in it), removed at exit.
 */
#ifndef VBUS_FUZZ_LISTEN_H
#define VBUS_FUZZ_LISTEN_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char fuzz_sock_path[108];

static void fuzz_remove_socket(void)
{
        unlink(fuzz_sock_path);
}

/* Listens at /tmp/vbus-fuzz-@name-<pid>.sock, a SOCK_STREAM socket with @flags (SOCK_NONBLOCK,
 * or 0). A harness cannot run without it: aborts on failure. Return: the listening fd. */
static inline int fuzz_listen(const char *name, int flags)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if ((size_t)snprintf(fuzz_sock_path, sizeof(fuzz_sock_path), "/tmp/vbus-fuzz-%s-%d.sock",
                             name, (int)getpid()) >= sizeof(fuzz_sock_path) ||
            (size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fuzz_sock_path) >=
                    sizeof(sa.sun_path))
                abort();
        unlink(fuzz_sock_path);
        fd = socket(AF_UNIX, SOCK_STREAM | flags, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
                abort();
        if (atexit(fuzz_remove_socket) != 0)
                abort();
        return fd;
}

#endif /* VBUS_FUZZ_LISTEN_H */
