/* SPDX-License-Identifier: MIT */
/*
 * fwd-addr: the socket addresses of vbusctl's forwarding commands ("tcp:HOST:PORT",
 * "tcp:[V6]:PORT", "unix:/path"): parsing, listening and non-blocking connecting. Every socket
 * it makes is non-blocking and close-on-exec.
 */
#ifndef VBUSCTL_FWD_ADDR_H
#define VBUSCTL_FWD_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* The longest address text we print or accept. */
#define FWD_ADDR_TEXT_MAX 300

typedef struct FwdAddr {
        struct sockaddr_storage sa;
        socklen_t len;
        bool is_unix;
        char text[FWD_ADDR_TEXT_MAX]; /* as the user wrote it, for messages */
} FwdAddr;

/**
 * fwd_addr_parse() - parse @text (borrowed) into @ret.
 * @passive: true for an address to listen on (port 0 allowed: the kernel picks one).
 * Return: 0; -EINVAL (malformed: @ret_why says what is wrong, a static string);
 * -ENAMETOOLONG (a unix path over the kernel's limit); -ENOENT (the host does not resolve).
 */
int fwd_addr_parse(const char *text, bool passive, FwdAddr *ret, const char **ret_why);

/**
 * fwd_addr_listen() - a listening socket on @a. A unix path that exists but where nobody
 * accepts (a forwarder that died) is replaced; one where somebody accepts is -EADDRINUSE.
 * Return: the fd, or a negative errno (-EADDRINUSE, -EACCES, -EADDRNOTAVAIL, ...).
 */
int fwd_addr_listen(const FwdAddr *a);

/**
 * fwd_addr_connect() - start connecting to @a.
 * @ret_fd: written on 0 and -EINPROGRESS (poll it for POLLOUT, then fwd_addr_connected()).
 * Return: 0 (connected); -EINPROGRESS; another negative errno (nothing to close).
 */
int fwd_addr_connect(const FwdAddr *a, int *ret_fd);

/* fwd_addr_connected() - the outcome of a connect that was in progress: 0 or a negative errno. */
int fwd_addr_connected(int fd);

/* fwd_addr_describe_bound() - "tcp:HOST:PORT" of the local end of @fd (the port the kernel
 * picked for a listen on port 0), or @a's text for a unix socket, into @buf. */
void fwd_addr_describe_bound(const FwdAddr *a, int fd, char *buf, size_t n);

/* fwd_addr_describe_peer() - the remote end of an accepted connection, into @buf. */
void fwd_addr_describe_peer(int fd, char *buf, size_t n);

/* fwd_addr_close_reset() - close @fd so that a TCP peer sees a reset (SO_LINGER 0). A unix
 * socket has no reset: its peer sees an end of file (or ECONNRESET if it had unread data). */
void fwd_addr_close_reset(int fd);

#endif /* VBUSCTL_FWD_ADDR_H */
