/*
 * The client side of the xensim-hvd protocol, shared by the drop-in libraries: one
 * SOCK_SEQPACKET connection per library handle, to the socket named by XENSIM_HV_SOCKET.
 * Requests are serialised by a mutex so that a handle may be used from several threads, as
 * the Xen libraries allow. The daemon may also send asynchronous messages (hv-proto.h); they
 * are handed to on_async whenever the connection is read, under the mutex.
 */
#pragma once

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "hv-proto.h"

/* Handles one asynchronous message; fd (or -1) is transferred to the handler. It must not
 * make requests (the connection is being read). */
typedef void (*HvAsyncFn)(void *ctx, const HvMsg *msg, int fd);

typedef struct HvClient {
        int fd;
        pthread_mutex_t lock;
        HvAsyncFn on_async; /* NULL: asynchronous messages are a protocol error */
        void *async_ctx;
        uint8_t buf[HV_MSG_MAX]; /* guarded by lock */
} HvClient;

/*
 * Connect to $XENSIM_HV_SOCKET. cloexec as for the Xen libraries' *_NO_CLOEXEC flags.
 * Returns 0, -ENOENT when the variable is unset (no xensim: as without /dev/xen), or -errno.
 */
int hv_client_open(HvClient *c, int cloexec);
void hv_client_close(HvClient *c);

/*
 * One request and its reply. data (n_data words in req) is borrowed. On success the reply's
 * header goes to ret_reply, up to max_data words to ret_data, and up to max_fds received
 * descriptors (new, owned by the caller) to ret_fds with their count in ret_n_fds.
 * Returns 0, the reply's error as a negative errno, -EPROTO on a bad reply, or -errno.
 */
int hv_client_call(HvClient *c, const HvMsg *req, const uint32_t *data, HvMsg *ret_reply,
                   uint32_t *ret_data, size_t max_data, int *ret_fds, size_t max_fds,
                   size_t *ret_n_fds);

/* hv_client_call with the lock already held (from the thread that holds it). */
int hv_client_call_locked(HvClient *c, const HvMsg *req, const uint32_t *data, HvMsg *ret_reply,
                          uint32_t *ret_data, size_t max_data, int *ret_fds, size_t max_fds,
                          size_t *ret_n_fds);

void hv_client_lock(HvClient *c);
void hv_client_unlock(HvClient *c);

/*
 * With the lock held: handle every asynchronous message already received, without blocking.
 * Returns 0, -EPROTO (something else arrived), or -errno (-ECONNRESET: the daemon is gone).
 */
int hv_client_drain_async_locked(HvClient *c);
