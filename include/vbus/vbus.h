/* SPDX-License-Identifier: MIT */
/*
 * vbus: a message bus for the virtual machines of one Xen host.
 *
 * This is the public API of libvbus. Every handle is opaque; every function that can fail
 * returns 0 (or a documented non-negative value) on success and a negative errno value on
 * failure, and never aborts on bad input. Nothing in libvbus is thread-safe unless a function
 * says so: use one connection per thread, or lock around it.
 */
#ifndef VBUS_VBUS_H
#define VBUS_VBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VBUS_EXPORT __attribute__((visibility("default")))
#else
#define VBUS_EXPORT
#endif

/* The wire protocol version this library speaks (docs/protocol.md). */
#define VBUS_PROTOCOL_VERSION 1

/*
 * Timeouts. Every timeout_usec of this API is relative (microseconds from the call), and every
 * value is valid:
 * - blocking helpers (vbus_conn_wait(), vbus_conn_wait_ready(), vbus_conn_flush(),
 *   vbus_publish_wait(), vbus_stream_send_wait()): 0 checks once and never blocks;
 *   VBUS_TIMEOUT_FOREVER waits without a limit;
 * - call deadlines (vbus_call_start(), vbus_call_sync(), vbus_call_options.timeout_usec and
 *   the typed calls of <vbus/vbus-protobuf.h>): 0 and VBUS_TIMEOUT_FOREVER both mean no deadline
 *   of the caller's own (the broker still ends a call at its max_call_timeout_ms, a day by
 *   default, vchand(8)).
 * A timeout so large that now + timeout does not fit in 64 bits is the same as
 * VBUS_TIMEOUT_FOREVER (it never wraps around into an immediate expiry).
 */
#define VBUS_TIMEOUT_FOREVER UINT64_MAX

/*
 * The outcome of a stream, an RPC call or a link, as carried on the wire. The values are the
 * wire values of vbus.v1.Status and never change.
 */
typedef enum vbus_status {
        VBUS_STATUS_UNSPECIFIED = 0,
        VBUS_STATUS_OK = 1,
        VBUS_STATUS_CANCELLED = 2,
        VBUS_STATUS_INVALID_ARGUMENT = 3,
        VBUS_STATUS_DEADLINE_EXCEEDED = 4,
        VBUS_STATUS_NOT_FOUND = 5,
        VBUS_STATUS_PERMISSION_DENIED = 6,
        VBUS_STATUS_RESOURCE_EXHAUSTED = 7,
        VBUS_STATUS_UNAVAILABLE = 8,
        VBUS_STATUS_INTERNAL = 9,
        VBUS_STATUS_APPLICATION = 10,
        VBUS_STATUS_PROTOCOL_ERROR = 11,
        VBUS_STATUS_UNSUPPORTED = 12,
        VBUS_STATUS_SHUTTING_DOWN = 13,
        VBUS_STATUS_N = 14, /* count of defined values, not a status */
} vbus_status;

/**
 * vbus_version() - the version of the library.
 *
 * Return: a static string such as "0.1.0"; never NULL. Thread-safe.
 */
VBUS_EXPORT const char *vbus_version(void);

/**
 * vbus_status_name() - the name of a status, for messages and logs.
 * @status: any integer.
 *
 * Return: a static lower-case name such as "deadline-exceeded", or "unknown" for a value that is
 * not a defined vbus_status (a newer peer may send one). Never NULL. Thread-safe.
 */
VBUS_EXPORT const char *vbus_status_name(int status);

/**
 * vbus_status_from_name() - parse a status name as printed by vbus_status_name().
 * @name: borrowed, NUL-terminated.
 * @ret_status: written only on success.
 *
 * Return: 0 on success; -EINVAL if @name or @ret_status is NULL; -ENOENT if @name is not the name
 * of a defined status. Thread-safe.
 */
VBUS_EXPORT int vbus_status_from_name(const char *name, vbus_status *ret_status);

/* ---------------------------------------------------------------------------------------------
 * Connections
 *
 * A vbus_conn is one link to the broker. It never blocks and owns no thread: the application
 * polls vbus_conn_get_fd() for vbus_conn_get_events(), wakes at vbus_conn_get_timeout() at the
 * latest, and calls vbus_conn_process(). Callbacks run only inside vbus_conn_process() (and the
 * blocking helpers, which call it). Simple programs use the blocking helpers instead.
 *
 * When the broker goes away the connection reconnects by itself, reopens every publisher and
 * subscription, and marks the first message each subscription receives after the gap
 * (vbus_message_follows_gap()). While disconnected, vbus_publish() fails at once with
 * -ENOTCONN.
 */

typedef struct vbus_conn vbus_conn;
typedef struct vbus_publisher vbus_publisher;
typedef struct vbus_subscription vbus_subscription;
typedef struct vbus_message vbus_message;

/* The largest message libvbus sends or accepts, in bytes (the broker's default max_message). */
#define VBUS_MESSAGE_MAX (1 << 20) /* 1 MiB; an int, so that it prints with %d */

typedef enum vbus_conn_state {
        VBUS_CONN_CONNECTING = 1,   /* link being set up, or HELLO not answered yet */
        VBUS_CONN_READY = 2,        /* HELLO done: streams open and flow */
        VBUS_CONN_DISCONNECTED = 3, /* the link was lost; a reconnect is scheduled */
} vbus_conn_state;

/**
 * vbus_conn_open() - start connecting to a broker.
 * @url: borrowed, may be NULL: "unix:/path/to/socket" or "vchan:<broker-domid>". NULL means
 *       $VBUS_URL if set, else "unix:/run/vbus/broker.sock" if that socket exists, else
 *       "vchan:0". Over vchan this domain is the vchan server: it publishes its rings under
 *       /local/domain/<self>/data/vchan/<broker>/vbus and waits for the broker to map them.
 * @ret_conn: written on success; free with vbus_conn_free().
 *
 * Returns at once; the connection becomes ready later (vbus_conn_wait_ready() waits for it).
 * Return: 0; -EINVAL for a malformed URL; -ENOMEM; -EAFNOSUPPORT for an unknown scheme.
 * Failing to reach the broker is not an error here: the connection retries.
 */
VBUS_EXPORT int vbus_conn_open(const char *url, vbus_conn **ret_conn);

/* A public key in text, as vbus_key_generate() returns it: 44 characters of base64 (RFC 4648,
 * with its '=' padding) and a NUL. */
#define VBUS_KEY_TEXT_SIZE 45

/**
 * vbus_key_generate() - a new Ed25519 key pair for channel auth, in two new files: @path (the
 * secret key, mode 0600) and "@path.pub" (the public key in text and a newline, mode 0644).
 * Neither is ever overwritten.
 * @path: borrowed. @ret_public_key: may be NULL; else at least VBUS_KEY_TEXT_SIZE bytes, written
 * on success with the public key in text (what a broker's keyring, a policy and
 * VBUS_BROKER_KEY name).
 * Return: 0; -EEXIST (either file exists: nothing written); -EINVAL; -ENAMETOOLONG; -ENOTSUP
 * (built without channel auth); another negative errno from creating the files (then neither
 * is left behind).
 */
VBUS_EXPORT int vbus_key_generate(const char *path, char *ret_public_key, size_t size);

/**
 * vbus_conn_open_auth() - vbus_conn_open() with channel auth (docs/protocol.md 3.1).
 * @key_file: borrowed, may be NULL: a secret key file (`vbusctl keygen`; mode 0600: a file that
 *            group or others may read is refused) whose key this connection proves to the
 *            broker at each HELLO, so that the broker names it in the identity it stamps
 *            (vbus_request_get_caller_key()) and policy can name it. NULL: $VBUS_KEY_FILE if set
 *            and not empty, else no key.
 * @broker_key: borrowed, may be NULL: the broker's public key in text (44 characters of
 *            base64, as `vbusctl keygen` writes it in NAME.pub and vchand prints at
 *            start). The connection then refuses any broker that does not prove this key.
 *            NULL: $VBUS_BROKER_KEY if set and not empty, else none pinned.
 * @ret_conn: written on success; free with vbus_conn_free().
 *
 * vbus_conn_open() is this function with @key_file and @broker_key NULL (so the environment
 * variables apply to it too). The key is read now, once; the secret stays in this process.
 *
 * An auth failure on a link is not an error here: it shows in vbus_conn_wait_ready() (which
 * returns it at once instead of waiting) and vbus_conn_get_last_error(); the connection keeps
 * retrying with back-off, as for any link that fails.
 *
 * Return: 0; as vbus_conn_open(); -ENOTSUP (a key or a pin was given, and this libvbus was built
 * without channel auth); -EPERM (@key_file is readable or writable by group or others, or not a
 * regular file); -EBADMSG (@key_file is not a secret key file); -EINVAL (@broker_key is not a
 * public key in text); another negative errno from reading @key_file (-ENOENT, -EACCES).
 */
VBUS_EXPORT int vbus_conn_open_auth(const char *url, const char *key_file, const char *broker_key,
                                    vbus_conn **ret_conn);

/**
 * vbus_conn_free() - close the connection and free it, its publishers and subscriptions
 * (their handles become invalid). Sends what is already committed to the transport, never
 * waits. Accepts NULL.
 * Return: NULL.
 */
VBUS_EXPORT vbus_conn *vbus_conn_free(vbus_conn *conn);

/* vbus_conn_get_fd() - the fd to poll (changes across reconnects: query it each time).
 * Return: the fd, or -ENOTCONN while there is none (wait for the timeout instead), -EINVAL. */
VBUS_EXPORT int vbus_conn_get_fd(vbus_conn *conn);

/* vbus_conn_get_events() - the poll events wanted now (POLLIN, maybe POLLOUT), or -EINVAL. */
VBUS_EXPORT int vbus_conn_get_events(vbus_conn *conn);

/**
 * vbus_conn_get_timeout() - when vbus_conn_process() must run at the latest. Ask again after
 * every API call: right after vbus_publish(), vbus_call_start() and the like it may be now (over
 * a vchan the broker is told of what they wrote only by vbus_conn_process()).
 * @ret_usec: absolute CLOCK_MONOTONIC time in microseconds, or UINT64_MAX for none.
 * Return: 0 or -EINVAL.
 */
VBUS_EXPORT int vbus_conn_get_timeout(vbus_conn *conn, uint64_t *ret_usec);

/**
 * vbus_conn_process() - do all work that is ready, without blocking: read and dispatch frames
 * (running callbacks), write what is queued, reconnect when due.
 * Return: > 0 if something happened, 0 if there was nothing to do, -EINVAL, -ENOMEM. A lost link
 * is not an error: the state becomes VBUS_CONN_DISCONNECTED and a reconnect is scheduled.
 */
VBUS_EXPORT int vbus_conn_process(vbus_conn *conn);

/**
 * vbus_conn_wait() - block until there is something to process or @timeout_usec passed, then
 * process it. @timeout_usec: 0 polls once; VBUS_TIMEOUT_FOREVER blocks until something happens.
 * Return: as vbus_conn_process(), or -ETIMEDOUT, or -EINTR.
 */
VBUS_EXPORT int vbus_conn_wait(vbus_conn *conn, uint64_t timeout_usec);

/**
 * vbus_conn_wait_ready() - block until the connection is ready (HELLO answered, and with
 * channel auth, the broker proved its key and took ours), or @timeout_usec passed (0: only
 * check; VBUS_TIMEOUT_FOREVER: no limit).
 * A first attempt that failed in a way waiting cannot mend is returned at once, without waiting
 * for @timeout_usec: -ENOENT (no such socket; over vchan: no Xen, this domain has no "domid"),
 * -ECONNREFUSED (nobody listens at the socket), -EACCES or -EPERM (the socket's permissions),
 * -ENOTSOCK, -EADDRINUSE (vchan: another process of this domain holds its vchan), -ENODEV (no
 * Xen device). Once a connection has been ready, it retries whatever the error.
 * Channel auth that failed on the last link is returned at once too: -EACCES (the broker does
 * not prove the pinned key, proves none, or does not speak channel auth), -EPERM (the broker
 * refused: it requires a key, or one in its keyring).
 * Return: 0, -ETIMEDOUT, -EINVAL, or one of the errors above.
 */
VBUS_EXPORT int vbus_conn_wait_ready(vbus_conn *conn, uint64_t timeout_usec);

/**
 * vbus_conn_flush() - block until everything published so far has been handed to the
 * transport, or @timeout_usec passed (0: only check; VBUS_TIMEOUT_FOREVER: no limit).
 * Return: 0, -ETIMEDOUT, -ENOTCONN, -EINVAL.
 */
VBUS_EXPORT int vbus_conn_flush(vbus_conn *conn, uint64_t timeout_usec);

/**
 * vbus_conn_sync() - a round trip to the broker: vbus_conn_flush(), then wait until the broker
 * has handled everything this connection sent before the call, and its answers have been
 * processed (callbacks run). After it, a publication the broker refused shows in
 * vbus_publisher_get_status(), and every message published before it has been routed.
 * @timeout_usec: for the whole (0: only if it needs no waiting; VBUS_TIMEOUT_FOREVER: no limit).
 * Return: 0; -ETIMEDOUT; -ENOTCONN (not ready, or the link was lost meanwhile: what it carried
 * may or may not have been handled); -EINVAL.
 */
VBUS_EXPORT int vbus_conn_sync(vbus_conn *conn, uint64_t timeout_usec);

/* vbus_conn_get_state() - the current state, or -EINVAL for NULL. */
VBUS_EXPORT int vbus_conn_get_state(vbus_conn *conn);

/**
 * vbus_conn_get_last_error() - why the last attempt to reach the broker failed, or why the last
 * link was lost, for messages: 0 if it did not fail (and always once a link is ready);
 * -ENOENT/-ECONNREFUSED (no broker at that socket); -EADDRINUSE (vchan: another process of this
 * domain holds the domain's vchan: run the guest agent, or one vbus process per domain); -EACCES
 * or -EPERM (channel auth, as vbus_conn_wait_ready()); -EPROTO (the broker, or whatever answers
 * in its place, broke the protocol: the library told it so with ERROR and dropped the link);
 * -ECONNRESET (the broker closed the link with ERROR); -EPIPE (the broker closed the link);
 * another negative errno from the transport. The connection keeps retrying in every case.
 */
VBUS_EXPORT int vbus_conn_get_last_error(vbus_conn *conn);

/**
 * vbus_conn_get_url() - the broker URL this connection uses, as a user would write it
 * ("unix:/run/vbus/broker.sock", "vchan:0"), whether it was given, taken from $VBUS_URL or the
 * default: the one to name in messages. Borrowed until vbus_conn_free(); "" for NULL.
 */
VBUS_EXPORT const char *vbus_conn_get_url(vbus_conn *conn);

/* vbus_conn_get_reconnects() - how many times the link was re-established. */
VBUS_EXPORT uint64_t vbus_conn_get_reconnects(vbus_conn *conn);

/* ---------------------------------------------------------------------------------------------
 * Publish
 */

/**
 * vbus_publisher_open() - open a publish stream to @topic (sent once, not with each message).
 * @topic: borrowed: dot-separated tokens of [A-Za-z0-9_-], at most 255 bytes, no wildcards.
 * Return: 0; -EINVAL (bad topic or arguments); -ENOMEM.
 */
VBUS_EXPORT int vbus_publisher_open(vbus_conn *conn, const char *topic, vbus_publisher **ret_pub);

/* vbus_publisher_free() - end the stream (END ok) and free the handle. Accepts NULL. */
VBUS_EXPORT vbus_publisher *vbus_publisher_free(vbus_publisher *pub);

/**
 * vbus_publish() - publish one message.
 * @data: borrowed for the call (copied or written straight into the ring).
 *
 * Messages of up to 2048 bytes are combined into one frame in the ring (protocol.md 5.5), which
 * goes out as soon as the broker has caught up with what came before, at the next
 * vbus_conn_process()/vbus_conn_flush()/vbus_conn_wait(), when it is full, or before anything
 * else is written: vbus_conn_get_timeout() says "now" while one is open, as it does after a
 * single frame (a sleeping broker learns of either at that flush). A message for which this
 * returns 0 is sent, in order, while the link lives, provided the
 * application keeps serving the connection as vbus_conn_get_timeout() asks (a program that
 * publishes and then sleeps without calling into the library may hold the last batch until it
 * wakes; vbus_conn_flush() sends it).
 *
 * Return: 0 (the message is on its way); -EAGAIN (not now: the broker has not granted credit
 * yet, the link is still connecting, or the link is full; process and retry: this is how a
 * BLOCK subscriber slows its publishers down); -ENOTCONN (the link is down: nothing was sent);
 * -EMSGSIZE (@len > VBUS_MESSAGE_MAX); -EPIPE (the broker refused or ended this stream: see
 * vbus_publisher_get_status()); -EINVAL.
 */
VBUS_EXPORT int vbus_publish(vbus_publisher *pub, const void *data, size_t len);

/**
 * vbus_publish_wait() - vbus_publish(), retrying across -EAGAIN (processing the connection
 * meanwhile) until @timeout_usec passed (0: one attempt; VBUS_TIMEOUT_FOREVER: no limit).
 * Return: as vbus_publish(), or -ETIMEDOUT.
 */
VBUS_EXPORT int vbus_publish_wait(vbus_publisher *pub, const void *data, size_t len,
                                  uint64_t timeout_usec);

/**
 * vbus_publish_retained() - publish one message and have the broker keep it as the topic's
 * retained value: every subscription that begins later (a new subscriber, or one that
 * reconnects) gets the retained values of its matching topics first, each marked
 * (vbus_message_is_retained()). A later retained message replaces it; an empty one (@len 0)
 * clears it, and is not delivered to anyone. The message also goes to the current subscribers
 * like any other. The broker bounds what it keeps (docs/man/vchand.8.md: retained_max,
 * retained_bytes, peer_retained_bytes): a value over the bounds ends the stream with
 * VBUS_STATUS_RESOURCE_EXHAUSTED (see vbus_publisher_get_status()), and only this publisher's.
 * @data: borrowed for the call (copied or written straight into the ring).
 * Return: as vbus_publish(); -EOPNOTSUPP (the broker keeps no retained values: an older broker).
 */
VBUS_EXPORT int vbus_publish_retained(vbus_publisher *pub, const void *data, size_t len);

/* vbus_publish_retained_wait() - vbus_publish_retained() as vbus_publish_wait() is
 * vbus_publish(). Return: as vbus_publish_retained(), or -ETIMEDOUT. */
VBUS_EXPORT int vbus_publish_retained_wait(vbus_publisher *pub, const void *data, size_t len,
                                           uint64_t timeout_usec);

/**
 * vbus_publisher_get_status() - why the stream ended.
 * @ret_message: written with a borrowed string (valid until the next call on @pub), may be NULL.
 * Return: 0 while the stream is usable, else a vbus_status; -EINVAL.
 */
VBUS_EXPORT int vbus_publisher_get_status(vbus_publisher *pub, const char **ret_message);

/* ---------------------------------------------------------------------------------------------
 * Subscribe
 */

/* What the broker does when this subscriber falls behind. */
typedef enum vbus_slow_policy {
        VBUS_SLOW_DROP = 1,  /* bounded queue; vbus_message_get_dropped() counts what was lost */
        VBUS_SLOW_BLOCK = 2, /* lossless: publishers of matching topics are held back */
} vbus_slow_policy;

/* Called for each message; @msg is borrowed for the call only. Over a vchan its data may lie in
 * the ring the broker writes, where it stays untouched until the callback returns (the library
 * reads nothing more meanwhile): copy it to keep it. */
typedef void (*vbus_message_cb)(vbus_subscription *sub, const vbus_message *msg, void *userdata);

/**
 * vbus_subscribe() - subscribe to @pattern.
 * @pattern: borrowed: a topic whose tokens may be "*" (one token), and whose last token may be
 *           ">" (one or more tokens).
 * @policy: VBUS_SLOW_DROP or VBUS_SLOW_BLOCK.
 * @cb: called from vbus_conn_process() for each message. @userdata: passed to it.
 * Return: 0; -EINVAL; -ENOMEM.
 */
VBUS_EXPORT int vbus_subscribe(vbus_conn *conn, const char *pattern, vbus_slow_policy policy,
                               vbus_message_cb cb, void *userdata, vbus_subscription **ret_sub);

/* vbus_subscription_free() - unsubscribe and free the handle. Accepts NULL. Return: NULL. */
VBUS_EXPORT vbus_subscription *vbus_subscription_free(vbus_subscription *sub);

/* vbus_subscription_is_active() - true once the broker accepted the subscription on the current
 * link (messages published from then on reach it); false before, after a failure, and while
 * reconnecting. */
VBUS_EXPORT bool vbus_subscription_is_active(vbus_subscription *sub);

/* vbus_subscription_get_status() - as vbus_publisher_get_status(). */
VBUS_EXPORT int vbus_subscription_get_status(vbus_subscription *sub, const char **ret_message);

/* ---------------------------------------------------------------------------------------------
 * Messages (borrowed inside a vbus_message_cb; every pointer is valid for the callback only)
 */

VBUS_EXPORT const char *vbus_message_get_topic(const vbus_message *msg);
VBUS_EXPORT const void *vbus_message_get_data(const vbus_message *msg, size_t *ret_size);
/* The publisher as the broker knows it: never taken from the publisher's own claims. */
VBUS_EXPORT uint32_t vbus_message_get_sender_domid(const vbus_message *msg);
VBUS_EXPORT const char *vbus_message_get_sender_name(const vbus_message *msg);
VBUS_EXPORT bool vbus_message_is_sender_local(const vbus_message *msg);
/* The key the publisher proved at HELLO, as the broker names it: the name its keyring gives the
 * key, or "key:" and the key in text; "" when it proved none (channel auth, protocol.md 3.1). */
VBUS_EXPORT const char *vbus_message_get_sender_key(const vbus_message *msg);
VBUS_EXPORT uint32_t vbus_message_get_sender_uid(const vbus_message *msg);
VBUS_EXPORT uint32_t vbus_message_get_sender_pid(const vbus_message *msg);
/* The guest-agent session the publisher used (0: a link of its own), and what that domain's
 * agent claims about the local process behind it (uid, pid, command). Claims are the guest's
 * word only: the broker checks the domain, never these. _claims returns false when there are
 * none (a publisher without an agent), and then writes nothing; @ret_command is borrowed like the
 * message; any output may be NULL. */
VBUS_EXPORT uint32_t vbus_message_get_sender_session(const vbus_message *msg);
VBUS_EXPORT bool vbus_message_get_sender_claims(const vbus_message *msg, uint32_t *ret_uid,
                                                uint32_t *ret_pid, const char **ret_command);
/* Messages this subscription lost (DROP policy) just before this one. */
VBUS_EXPORT uint64_t vbus_message_get_dropped(const vbus_message *msg);
/* The subscription's delivery counter (restarts at 1 after a reconnect). */
VBUS_EXPORT uint64_t vbus_message_get_sequence(const vbus_message *msg);
/* True for the first message after the link was lost and re-established: messages published
 * meanwhile were not delivered, and are not counted in vbus_message_get_dropped(). */
VBUS_EXPORT bool vbus_message_follows_gap(const vbus_message *msg);
/* True for a retained value (vbus_publish_retained()) delivered because this subscription began
 * after it was published; such messages come before any other on the subscription. */
VBUS_EXPORT bool vbus_message_is_retained(const vbus_message *msg);

/* ---------------------------------------------------------------------------------------------
 * RPC: calls
 *
 * A call names "service/method" (service: a protobuf-style full name such as storage.v1.Store;
 * method: one identifier) and carries one request message; it ends with exactly one reply: a
 * status, a message for failures, and the reply data for VBUS_STATUS_OK. Failures are values,
 * never aborts: VBUS_STATUS_NOT_FOUND at once when nobody serves the service ("no responders"),
 * VBUS_STATUS_DEADLINE_EXCEEDED when the timeout passes (the server is told to stop),
 * VBUS_STATUS_UNAVAILABLE when the server (or the link to the broker) goes away during the call,
 * VBUS_STATUS_RESOURCE_EXHAUSTED over a limit, or whatever status the server answered.
 */

typedef struct vbus_call vbus_call;
typedef struct vbus_reply vbus_reply;
typedef struct vbus_server vbus_server;
typedef struct vbus_request vbus_request;

/* Called once per call with its outcome; @reply is borrowed for the call only. */
typedef void (*vbus_call_cb)(vbus_call *call, const vbus_reply *reply, void *userdata);

/**
 * vbus_call_start() - start a call without waiting.
 * @method: borrowed, "service/method".
 * @request: borrowed for the call (copied). @timeout_usec: the deadline from now; 0 or
 * VBUS_TIMEOUT_FOREVER for none.
 * @cb: called from vbus_conn_process() with the outcome; the call handle is freed after it.
 * @ret_call: optional: the handle, valid until @cb runs or vbus_call_cancel().
 * Return: 0; -EINVAL; -EMSGSIZE (over VBUS_MESSAGE_MAX); -ENOTCONN (the link is down);
 * -EAGAIN (still connecting: wait for ready); -ENOMEM.
 */
VBUS_EXPORT int vbus_call_start(vbus_conn *conn, const char *method, const void *request,
                                size_t request_size, uint64_t timeout_usec, vbus_call_cb cb,
                                void *userdata, vbus_call **ret_call);

/**
 * vbus_call_cancel() - give up on a call: the server is told (its request reports
 * vbus_request_is_cancelled()), the callback will not run, and the handle is freed.
 * Return: 0; -EINVAL (@call is NULL); -EALREADY (called from @call's own callback: the outcome
 * is being delivered and the library frees the handle after it).
 */
VBUS_EXPORT int vbus_call_cancel(vbus_call *call);

/**
 * vbus_call_sync() - call and wait for the outcome (blocking helper; runs vbus_conn_process()).
 * Waits for the connection to be ready within the same timeout (with none, 0, at most 5 s;
 * with VBUS_TIMEOUT_FOREVER, without a limit); the call's deadline is what is left of it.
 * @ret_reply: written on 0: the outcome, to free with vbus_reply_free().
 * Return: 0 when the call has an outcome (check vbus_reply_get_status()); -EINVAL; -EMSGSIZE;
 * -ENOTCONN; -ENOMEM; -ETIMEDOUT (the connection never became ready); at once, the error of a
 * first attempt to connect that waiting cannot mend (-ENOENT, -ECONNREFUSED, ...: see
 * vbus_conn_wait_ready()).
 */
VBUS_EXPORT int vbus_call_sync(vbus_conn *conn, const char *method, const void *request,
                               size_t request_size, uint64_t timeout_usec, vbus_reply **ret_reply);

/*
 * Call options: metadata and a timeout for vbus_call_start_opts(), vbus_call_sync_opts() and
 * vbus_stream_open(). Zero-initialise the struct and set what you need; a zeroed struct (or a
 * NULL pointer) means no timeout and no headers.
 *
 * Headers are small key-value pairs carried with the call to the server (vbus_request_
 * get_header()): at most VBUS_CALL_HEADERS_MAX, each key 1..VBUS_CALL_HEADER_KEY_MAX bytes of
 * [a-z0-9_.-], each value (any bytes) at most VBUS_CALL_HEADER_VALUE_MAX bytes. Keys are not
 * required to be unique. The caller's identity is never a header: the broker adds it.
 */
#define VBUS_CALL_HEADERS_MAX      16
#define VBUS_CALL_HEADER_KEY_MAX   64
#define VBUS_CALL_HEADER_VALUE_MAX 1024

typedef struct vbus_header {
        const char *key;   /* NUL-terminated */
        const void *value; /* may be NULL when value_size is 0 */
        size_t value_size;
} vbus_header;

typedef struct vbus_call_options {
        uint64_t timeout_usec;      /* 0 or VBUS_TIMEOUT_FOREVER: no deadline */
        const vbus_header *headers; /* n_headers entries, borrowed for the call (copied) */
        size_t n_headers;
} vbus_call_options;

/**
 * vbus_call_start_opts() - vbus_call_start() with options (@opts may be NULL).
 * Return: as vbus_call_start(); -EINVAL also for more than VBUS_CALL_HEADERS_MAX headers, a
 * malformed key or a value over VBUS_CALL_HEADER_VALUE_MAX.
 */
VBUS_EXPORT int vbus_call_start_opts(vbus_conn *conn, const char *method, const void *request,
                                     size_t request_size, const vbus_call_options *opts,
                                     vbus_call_cb cb, void *userdata, vbus_call **ret_call);

/* vbus_call_sync_opts() - vbus_call_sync() with options (@opts may be NULL). */
VBUS_EXPORT int vbus_call_sync_opts(vbus_conn *conn, const char *method, const void *request,
                                    size_t request_size, const vbus_call_options *opts,
                                    vbus_reply **ret_reply);

/* The outcome: a vbus_status (VBUS_STATUS_OK on success). */
VBUS_EXPORT int vbus_reply_get_status(const vbus_reply *reply);
/* A message for failures ("" if none); borrowed from @reply. */
VBUS_EXPORT const char *vbus_reply_get_message(const vbus_reply *reply);
/* The reply data (empty unless VBUS_STATUS_OK); borrowed from @reply. */
VBUS_EXPORT const void *vbus_reply_get_data(const vbus_reply *reply, size_t *ret_size);
/* Frees a reply from vbus_call_sync(). Accepts NULL. Return: NULL. */
VBUS_EXPORT vbus_reply *vbus_reply_free(vbus_reply *reply);

/* ---------------------------------------------------------------------------------------------
 * RPC: servers
 *
 * A server registers a service; several servers of one service share its calls (the broker
 * gives each call to the one with the fewest calls in flight). Each call arrives as a
 * vbus_request, owned by the library and answered exactly once, now or later, with
 * vbus_request_reply() or vbus_request_fail(), which release it.
 */

/* Called from vbus_conn_process() for each call; answer it now or keep @req and answer later. */
typedef void (*vbus_request_cb)(vbus_server *srv, vbus_request *req, void *userdata);

/**
 * vbus_serve() - serve @service (kept across reconnects).
 * Return: 0; -EINVAL (bad name); -ENOMEM.
 */
VBUS_EXPORT int vbus_serve(vbus_conn *conn, const char *service, vbus_request_cb cb, void *userdata,
                           vbus_server **ret_server);

/* vbus_server_free() - stop serving; requests not answered yet fail with UNAVAILABLE. */
VBUS_EXPORT vbus_server *vbus_server_free(vbus_server *srv);

/**
 * vbus_server_get_status() - why the broker does not route calls to this server.
 * @ret_message: written with a borrowed string (valid until the next call on @srv), may be NULL.
 * Return: 0 while the server is registered or being registered (also across reconnects); a
 * vbus_status once the broker refused or ended the registration (for example
 * VBUS_STATUS_PERMISSION_DENIED for a reserved service name): the server stays inactive; -EINVAL.
 */
VBUS_EXPORT int vbus_server_get_status(vbus_server *srv, const char **ret_message);

/* vbus_server_is_active() - true once the broker routes calls to this server. */
VBUS_EXPORT bool vbus_server_is_active(vbus_server *srv);

/* The request's method (after the '/'), full name ("service/method"), and data: borrowed. */
VBUS_EXPORT const char *vbus_request_get_method(const vbus_request *req);
VBUS_EXPORT const char *vbus_request_get_full_method(const vbus_request *req);
VBUS_EXPORT const void *vbus_request_get_data(const vbus_request *req, size_t *ret_size);
/* The caller, as the broker knows it (never as the caller claims). */
VBUS_EXPORT uint32_t vbus_request_get_caller_domid(const vbus_request *req);
VBUS_EXPORT const char *vbus_request_get_caller_name(const vbus_request *req);
VBUS_EXPORT bool vbus_request_is_caller_local(const vbus_request *req);
VBUS_EXPORT uint32_t vbus_request_get_caller_uid(const vbus_request *req);
/* The key the caller proved, named as vbus_message_get_sender_key() says; "" for none. */
VBUS_EXPORT const char *vbus_request_get_caller_key(const vbus_request *req);
/* The caller's deadline: absolute CLOCK_MONOTONIC microseconds, UINT64_MAX for none. */
VBUS_EXPORT uint64_t vbus_request_get_deadline(const vbus_request *req);
/* True once the caller cancelled, its deadline passed, or it went away: stop working on it
 * (an answer is still required, and is discarded). */
VBUS_EXPORT bool vbus_request_is_cancelled(const vbus_request *req);

/* The call's headers, as the caller sent them (vbus_call_options), in order. */
VBUS_EXPORT size_t vbus_request_get_n_headers(const vbus_request *req);
/**
 * vbus_request_get_header() - header @index of the call.
 * @ret_key, @ret_value, @ret_size: written on 0 (each may be NULL); borrowed from @req.
 * Return: 0; -ENOENT if @index is past the last header; -EINVAL.
 */
VBUS_EXPORT int vbus_request_get_header(const vbus_request *req, size_t index, const char **ret_key,
                                        const void **ret_value, size_t *ret_size);
/* vbus_request_find_header() - the value of the first header named @key, borrowed from @req,
 * with its size in @ret_size (may be NULL), or NULL if the call has none by that name. */
VBUS_EXPORT const void *vbus_request_find_header(const vbus_request *req, const char *key,
                                                 size_t *ret_size);

/**
 * vbus_request_reply() - answer with VBUS_STATUS_OK and @data (copied). Releases @req.
 * Return: 0; -ECANCELED (the call was cancelled: the answer is discarded, @req released);
 * -EMSGSIZE; -EINVAL (@req is NULL); -ENOMEM.
 */
VBUS_EXPORT int vbus_request_reply(vbus_request *req, const void *data, size_t size);

/**
 * vbus_request_fail() - answer with a failure @status (2..13: VBUS_STATUS_APPLICATION for the
 * application's own errors) and a @message (borrowed, may be NULL). Releases @req.
 * Return: 0; -ECANCELED; -EINVAL (bad status: @req is still released with INTERNAL).
 */
VBUS_EXPORT int vbus_request_fail(vbus_request *req, int status, const char *message);

/* ---------------------------------------------------------------------------------------------
 * RPC: streaming calls
 *
 * A streaming call carries any number of messages in each direction on one CALL stream:
 * server-streaming (one request, many replies), client-streaming (many requests, one reply) and
 * bidirectional. Both ends hold a vbus_stream and use the same functions on it:
 *
 * - The caller opens one with vbus_stream_open(). A server gets one for a call with
 *   vbus_request_stream(): from its request handler as usual (the request message is in the
 *   vbus_request: server-streaming), or, for methods named with vbus_server_stream_method(),
 *   from a handler that runs as soon as the call opens, before any request message
 *   (client-streaming and bidirectional).
 * - vbus_stream_send() sends one message. Each direction is flow-controlled end to end: the
 *   library holds at most one message that could not be sent yet (vbus_stream_send() returns
 *   -EAGAIN until it is out, then on_writable runs), and the receiving library grants the
 *   sender room only for what its application has taken (on_message returned). A stream of any
 *   length therefore runs in bounded memory in both processes and in the broker (each side
 *   buffers at most about one window, VBUS_STREAM_WINDOW). vbus_stream_set_paused() stops
 *   deliveries (and so, soon, the sender) until the application is ready again.
 * - The caller ends its side with vbus_stream_close_send() (the server's on_message then gets a
 *   NULL @data); the server ends the call with vbus_stream_finish() and a status, which the
 *   caller's on_end receives after every message sent before it.
 * - on_end runs exactly once per stream with the outcome (for the server: when the call ended
 *   without its vbus_stream_finish(), e.g. VBUS_STATUS_CANCELLED when the caller cancelled,
 *   DEADLINE_EXCEEDED, or UNAVAILABLE when the caller or the link went away). The handle is
 *   freed when on_end returns, or by vbus_stream_cancel(), whichever comes first; on_end does
 *   not run for a stream the application cancelled or finished itself.
 */

typedef struct vbus_stream vbus_stream;

/* The window each end grants for its direction: the most bytes in flight toward it. */
#define VBUS_STREAM_WINDOW (VBUS_MESSAGE_MAX + 4096)

typedef struct vbus_stream_handlers {
        /* A message from the other end (@data borrowed for the call). On the server, once more
         * with @data NULL and @size 0 when the caller closed its side. May be NULL (messages are
         * then discarded). */
        void (*on_message)(vbus_stream *st, const void *data, size_t size, void *userdata);
        /* The stream ended with @status (VBUS_STATUS_OK: the server finished it successfully)
         * and @message ("" if none). Required for the caller; may be NULL on the server. */
        void (*on_end)(vbus_stream *st, int status, const char *message, void *userdata);
        /* Optional: a vbus_stream_send() that returned -EAGAIN may succeed now. */
        void (*on_writable)(vbus_stream *st, void *userdata);
} vbus_stream_handlers;

/**
 * vbus_stream_open() - start a streaming call to "service/method".
 * @opts: may be NULL; @handlers: borrowed (copied), on_end required; @userdata: passed to them.
 * @ret_stream: the handle, valid until on_end returns or vbus_stream_cancel().
 * Return: 0; -EINVAL; -ENOTCONN (the link is down); -EAGAIN (still connecting); -ENOMEM.
 * No responders and other failures to start arrive through on_end.
 */
VBUS_EXPORT int vbus_stream_open(vbus_conn *conn, const char *method, const vbus_call_options *opts,
                                 const vbus_stream_handlers *handlers, void *userdata,
                                 vbus_stream **ret_stream);

/**
 * vbus_stream_send() - send one message (@data borrowed for the call: copied or written at once).
 * Return: 0 (on its way); -EAGAIN (the previous message is still waiting for room: retry after
 * on_writable, or use vbus_stream_send_wait()); -EPIPE (this side was closed or finished, or
 * the stream ended); -EMSGSIZE (@size > VBUS_MESSAGE_MAX); -EINVAL; -ENOMEM.
 */
VBUS_EXPORT int vbus_stream_send(vbus_stream *st, const void *data, size_t size);

/**
 * vbus_stream_send_wait() - vbus_stream_send(), processing the connection across -EAGAIN until
 * @timeout_usec passed (0: one attempt; VBUS_TIMEOUT_FOREVER: no limit). Not from inside a
 * callback. Return: as vbus_stream_send(), -ETIMEDOUT.
 * Careful: callbacks run meanwhile, and if on_end runs the handle is freed (-EPIPE is returned;
 * do not use @st after that).
 */
VBUS_EXPORT int vbus_stream_send_wait(vbus_stream *st, const void *data, size_t size,
                                      uint64_t timeout_usec);

/**
 * vbus_stream_close_send() - the caller has no more messages to send (half-close: replies keep
 * coming). Sent after any message still waiting for room. Return: 0; -EPIPE (already closed);
 * -EINVAL (on a server's stream: use vbus_stream_finish()).
 */
VBUS_EXPORT int vbus_stream_close_send(vbus_stream *st);

/**
 * vbus_stream_finish() - the server ends the call with @status (VBUS_STATUS_OK, or 2..13 with a
 * @message, borrowed, may be NULL), after any message still waiting for room. Frees the handle
 * once the end is sent (on_end does not run). Return: 0; -ECANCELED (the call already ended: the
 * handle is freed); -EINVAL (on a caller's stream, or a bad status: then INTERNAL is sent).
 */
VBUS_EXPORT int vbus_stream_finish(vbus_stream *st, int status, const char *message);

/**
 * vbus_stream_cancel() - abandon the stream: the other end gets VBUS_STATUS_CANCELLED (a server
 * abandoning a call makes the caller's outcome CANCELLED too), on_end does not run, the handle
 * is freed. Not from the stream's own on_end. Return: 0; -EINVAL; -EALREADY (from on_end).
 */
VBUS_EXPORT int vbus_stream_cancel(vbus_stream *st);

/**
 * vbus_stream_set_paused() - stop (@paused true) or resume delivering messages. Messages that
 * arrive meanwhile are kept, at most one window of them: the sender is held back by flow
 * control, not lost. Return: 0 or -EINVAL.
 */
VBUS_EXPORT int vbus_stream_set_paused(vbus_stream *st, bool paused);

/* vbus_stream_get_request() - on a server's stream, the call's vbus_request (method, caller,
 * deadline, headers; valid as long as @st); NULL on a caller's stream. */
VBUS_EXPORT vbus_request *vbus_stream_get_request(vbus_stream *st);

/* vbus_stream_get_userdata() - the userdata given with the handlers. */
VBUS_EXPORT void *vbus_stream_get_userdata(vbus_stream *st);

/**
 * vbus_server_stream_method() - let @method of @srv's service receive its requests as a stream:
 * for calls to it @cb runs as soon as the call opens (vbus_request_get_data() is then empty) and
 * must call vbus_request_stream() (or answer the request, ending the call, or keep it to decide
 * later); request messages are delivered to the stream's on_message. Other methods keep the
 * server's own handler. @method: one identifier, borrowed. Return: 0; -EINVAL; -ENOMEM.
 */
VBUS_EXPORT int vbus_server_stream_method(vbus_server *srv, const char *method, vbus_request_cb cb,
                                          void *userdata);

/**
 * vbus_request_stream() - answer @req with a stream instead of one reply: @req is taken over by
 * the returned stream (vbus_stream_get_request() gives it back; do not call vbus_request_reply()
 * or vbus_request_fail() on it any more). Messages are then sent with vbus_stream_send() and the
 * call ends with vbus_stream_finish().
 * Return: 0; -ECANCELED (the call already ended: @req is released); -EALREADY (@req is already a
 * stream); -EINVAL; -ENOMEM (@req is left as it was).
 */
VBUS_EXPORT int vbus_request_stream(vbus_request *req, const vbus_stream_handlers *handlers,
                                    void *userdata, vbus_stream **ret_stream);

#ifdef __cplusplus
}
#endif

#endif /* VBUS_VBUS_H */
