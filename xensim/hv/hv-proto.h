/*
 * The protocol between the drop-in libraries (libxengnttab, libxenevtchn, libxenctrl) and
 * xensim-hvd. Each library handle is one SOCK_SEQPACKET connection to D/dom<N>.hv.sock; the
 * socket it connected to is the only thing that decides its domain, so nothing in a message
 * names the caller.
 *
 * Every message, request or reply, is one datagram: a fixed header (HvMsg) followed by
 * n_data 32-bit words. Requests are answered in order by exactly one reply carrying the same
 * op. File descriptors travel as SCM_RIGHTS with the reply that announces them.
 *
 * Events never pass through the daemon. Each bound port has a doorbell, an eventfd: the
 * owner of the port waits on it (armed one-shot in an epoll set, which is the fd
 * xenevtchn_fd returns; re-arming it is the unmask), and the interdomain peer holds a copy
 * and writes to it to notify, so a notify costs one write and no round trip. The daemon
 * hands out doorbells when ports are bound. When a port's peer changes later (bound, closed),
 * the daemon tells the port's owner with the asynchronous HV_OP_EVT_PEER_CHANGED, at most
 * once until the owner asks for the new doorbell with HV_OP_EVT_GET_PEER (so a peer that
 * rebinds in a loop cannot fill the owner's connection); the client reads these messages
 * while waiting for a reply, and before a notify when its news counter moved: a shared page
 * (HV_OP_EVT_NEWS) whose counter the daemon increments after sending each such message, so
 * that a notify costs no system call but the doorbell's write while nothing changed. The
 * daemon sends the message and increments the counter before answering the bind that caused
 * it, so a notify that follows that bind (in any process) sees the counter moved. A process holds
 * only the doorbells of its own ports and of the ports they are bound to, so it can signal nothing
 * else, as in Xen.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "hv-limits.h"

enum {
        HV_OP_EVT_BIND_UNBOUND = 1, /* arg0 remote domid -> arg0 port, fd: its doorbell */
        HV_OP_EVT_BIND_INTERDOMAIN, /* arg0 remote domid, arg1 remote port -> arg0 port,
                                     * fds: its doorbell, the peer's doorbell */
        HV_OP_EVT_UNBIND,           /* arg0 port */
        HV_OP_EVT_STATUS,           /* arg0 domid, arg1 port -> arg0 state, arg1 rdom, arg2 rport */
        HV_OP_EVT_GET_PEER,         /* arg0 port -> arg0 1 and fd: the peer's doorbell, or 0 */
        HV_OP_EVT_PEER_CHANGED,     /* async, daemon to client: arg0 port's peer changed */
        HV_OP_GNT_SHARE,            /* arg0 domid, arg1 count, arg2 writable, arg3 notify offset,
                                     * arg4 notify port -> arg0 share id, data refs[count], fd */
        HV_OP_GNT_UNSHARE,          /* arg0 share id */
        HV_OP_GNT_MAP,   /* arg0 count, arg1 writable, arg2 notify offset, arg3 notify port,
                          * data (domid, ref) * count -> arg0 map id, arg1 n_fds,
                          * data (fd index << 16 | page) * count, fds */
        HV_OP_GNT_UNMAP, /* arg0 map id */
        HV_OP_DOMINFO,   /* arg0 domid -> err ESRCH when the domain does not exist */
        HV_OP_EVT_NEWS,  /* -> fd: a memfd of one page whose first 32-bit word (host order)
                          * the daemon increments after each HV_OP_EVT_PEER_CHANGED it sends
                          * on this connection; err EEXIST when asked twice */
        HV_OP_MAX_,
};

/* "No notify" for the offset and port of the unmap-notify requests, as in the Xen API. */
#define HV_NOTIFY_NONE UINT32_MAX

/* Event channel states reported by HV_OP_EVT_STATUS (the values of Xen's EVTCHNSTAT_*). */
enum {
        HV_EVTCHN_FREE = 0,
        HV_EVTCHN_UNBOUND = 1,
        HV_EVTCHN_INTERDOMAIN = 2,
};

#define HV_MSG_N_ARGS 6

typedef struct HvMsg {
        uint32_t op;
        int32_t err; /* replies: 0 or a positive errno; requests: 0 */
        uint32_t arg[HV_MSG_N_ARGS];
        uint32_t n_data; /* number of 32-bit words that follow the header */
} HvMsg;

#define HV_MSG_HEADER_SIZE sizeof(HvMsg)
#define HV_MSG_MAX_DATA    ((HV_MSG_MAX - HV_MSG_HEADER_SIZE) / 4u)

/*
 * Decode one datagram (borrowed, not NUL-terminated) into a header and a pointer into buf for
 * the data words (unaligned: read them with hv_proto_word()). Checks only the framing.
 * Returns 0, or -EBADMSG when the length does not match n_data or n_data is over the limit.
 */
int hv_proto_decode(const uint8_t *buf, size_t len, HvMsg *ret_msg, const uint8_t **ret_data);

/*
 * Check that a decoded request is one the daemon accepts: a known op that clients may send,
 * zero err, and the data size the op requires (count within 1..HV_PAGES_PER_REQ where there
 * is a count). Returns 0, -EOPNOTSUPP for an unknown or daemon-only op, or -EBADMSG.
 */
int hv_proto_validate_request(const HvMsg *msg);

/* Whether op is an asynchronous daemon-to-client message (not a reply). */
int hv_proto_op_is_async(uint32_t op);

/* Read data word i (borrowed buffer from hv_proto_decode; the caller checked i < n_data). */
uint32_t hv_proto_word(const uint8_t *data, size_t i);

/*
 * Encode header and words into buf of size cap. Returns the byte length, or -EMSGSIZE.
 */
int hv_proto_encode(const HvMsg *msg, const uint32_t *data, uint8_t *buf, size_t cap);
