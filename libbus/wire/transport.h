/* SPDX-License-Identifier: MIT */
/*
 * transport: one byte stream under a link, as a vchan or a UNIX stream socket, behind one
 * zero-copy interface: peek/consume what was received, reserve/commit space to send, flush.
 *
 * A vchan transport works in place in the shared rings (see vchan.h): peeked bytes are in
 * shared memory and may change under the reader, so callers copy anything they validate. A UNIX
 * transport keeps a private input and output buffer and moves bytes with recv()/send() in
 * vbus__transport_process() and vbus__transport_flush(). Nothing here blocks.
 *
 * Errors: negative errno. -EPIPE: the peer has gone (after all its bytes were read); -EPROTO: the
 * peer broke the vchan protocol.
 */
#ifndef VBUS_LIBBUS_TRANSPORT_H
#define VBUS_LIBBUS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "vchan.h"

enum {
        /* Private buffer of a UNIX transport, each way: like a 256 KiB ring. */
        VBUS_TRANSPORT_UNIX_BUFFER = 256 * 1024,
};

typedef enum VbusTransportKind {
        VBUS_TRANSPORT_UNIX = 1,
        VBUS_TRANSPORT_VCHAN = 2,
} VbusTransportKind;

typedef struct VbusTransport {
        VbusTransportKind kind;
        int fd;           /* UNIX: the socket (owned) */
        VbusVchan *vchan; /* VCHAN: owned */
        uint8_t *in, *out;
        size_t in_start, in_end, out_start, out_end, size;
        bool eof;  /* UNIX: the peer shut down its side */
        int error; /* sticky failure, negative errno, 0 while healthy */
} VbusTransport;

#define VBUS_TRANSPORT_NULL                                                                        \
        {                                                                                          \
                .fd = -1                                                                           \
        }

/* Takes ownership of @fd (made non-blocking). Return: 0, -ENOMEM, -EINVAL. */
int vbus__transport_init_unix(VbusTransport *t, int fd);

/* Takes ownership of @vchan. Return: 0 or -EINVAL. */
int vbus__transport_init_vchan(VbusTransport *t, VbusVchan *vchan);

/* Closes and frees what it owns; idempotent. */
void vbus__transport_deinit(VbusTransport *t);

/* The fd to poll (socket or event channel). */
int vbus__transport_get_fd(const VbusTransport *t);

/* POLLIN, plus POLLOUT while a UNIX transport has bytes it could not send yet. */
uint32_t vbus__transport_get_events(const VbusTransport *t);

/*
 * Moves bytes after the fd was readable or writable: a UNIX transport reads what fits into its
 * input buffer and sends what it can; a vchan transport takes its pending events.
 * Return: 0. A failure (the peer gone, a socket error) is kept and returned by
 * vbus__transport_peek() once the bytes received before it have been read.
 */
int vbus__transport_process(VbusTransport *t);

/*
 * The received bytes, in place, in at most two pieces. Return: the number of bytes (> 0),
 * -EAGAIN (none yet; for a vchan, the peer has been asked to signal its next write), -EPIPE
 * (the peer closed and every byte it sent was read), another negative errno.
 */
ssize_t vbus__transport_peek(VbusTransport *t, struct iovec ret_iov[2]);

/* Releases @n bytes of the last peek. Return: 0, -EINVAL, -EPROTO. */
int vbus__transport_consume(VbusTransport *t, size_t n);

/*
 * Free space to write into, in place, in at most two pieces. For a vchan, when less than @want
 * bytes are free the peer is asked to signal when it reads. Return: the free bytes (> 0; may be
 * less than @want), -EAGAIN (full), -EPIPE, another negative errno.
 */
ssize_t vbus__transport_reserve(VbusTransport *t, size_t want, struct iovec ret_iov[2]);

/* Publishes @n bytes of the last reserve. Return: 0, -EINVAL, -EPROTO. */
int vbus__transport_commit(VbusTransport *t, size_t n);

/* Sends what was committed: send() for UNIX, at most one event for a vchan. Return: 0 or -errno. */
int vbus__transport_flush(VbusTransport *t);

/* True while committed bytes wait for the peer (UNIX: not yet sent; vchan: not yet consumed). */
bool vbus__transport_has_pending(VbusTransport *t);

/* True when a vchan's vbus__transport_flush() may owe the peer an event (commits or consumes
 * since the last flush): an event loop must not sleep before that flush. False for UNIX, whose
 * unsent bytes are waited for with POLLOUT. */
bool vbus__transport_owes_flush(VbusTransport *t);

#endif /* VBUS_LIBBUS_TRANSPORT_H */
