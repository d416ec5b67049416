/* SPDX-License-Identifier: MIT */
/*
 * vchand-limits: every limit and default of the broker, each with its reason. The configurable ones
 * are read from vchand.conf (see docs/vchand.8.md); the wire limits are in libbus/frame.h and
 * libbus/control.h.
 */
#ifndef VCHAND_LIMITS_H
#define VCHAND_LIMITS_H

/* Defaults of the configurable limits (vchand.conf key in brackets). */
enum {
        /* [max_frame] Payload bytes the broker accepts per frame: as libvbus announces
         * (VBUS_FRAME_MAX_DEFAULT), so that a 64 KiB message and its Meta go in one frame each
         * way. What the broker writes to a peer is capped by that peer's ring too. */
        LIMIT_MAX_FRAME = 128 * 1024,
        /* [max_message] Largest reassembled message: bounds one publisher's buffer. It must not
         * exceed publish_window, since a message's credit returns only once it is routed. */
        LIMIT_MAX_MESSAGE = 1024 * 1024,
        /* [max_streams] Streams open at once per client session: bounds per-peer state. */
        LIMIT_MAX_STREAMS = 1024,
        /* [max_subscriptions] Subscriptions per client session. */
        LIMIT_MAX_SUBSCRIPTIONS = 256,
        /* [publish_window] Bytes a publisher may have in flight: with BLOCK subscribers, the most
         * the broker holds for it. */
        LIMIT_PUBLISH_WINDOW = 1024 * 1024,
        /* [peer_publish_bytes] Sum of the windows granted to one session's publishers: with
         * peer_queued_bytes, bounds what one peer can make the broker hold. */
        LIMIT_PEER_PUBLISH_BYTES = 32 * 1024 * 1024,
        /* [queue_messages] Default DROP queue per subscription, in messages. */
        LIMIT_QUEUE_MESSAGES = 1024,
        /* [queue_bytes] Bytes queued for one subscription before DROP drops. */
        LIMIT_QUEUE_BYTES = 4 * 1024 * 1024,
        /* [peer_queued_bytes] Bytes queued for one peer over all its subscriptions. */
        LIMIT_PEER_QUEUED_BYTES = 16 * 1024 * 1024,
        /* [hello_timeout_ms] A peer that has not said HELLO by then is dropped. */
        LIMIT_HELLO_TIMEOUT_MS = 10000,
        /* [max_peers] Links at once: bounds fds and memory. */
        LIMIT_MAX_PEERS = 4096,
        /* [max_sessions] Agent sessions open at once on one link (protocol.md 7): each is a
         * peer with its own quotas, so this bounds what one guest agent makes the broker hold
         * to max_sessions times a peer's quotas. */
        LIMIT_MAX_SESSIONS = 256,
        /* [socket_mode] The socket's permissions: its owner (root) and group (socket_group)
         * may connect, nobody else. */
        LIMIT_SOCKET_MODE = 0660,
        /* [max_calls] RPC calls in flight per caller session: bounds per-peer call state. */
        LIMIT_MAX_CALLS = 256,
        /* [max_service_calls] Calls in flight per service, over all its servers. Once reached, a
         * caller holding more of them than its share (max_service_calls / live peers) is refused
         * and one under its share is not: a few callers cannot fill a service for everyone. */
        LIMIT_MAX_SERVICE_CALLS = 4096,
        /* [retained_max] Retained values the broker keeps (retain.h): bounds the table and
         * what a new subscription walks. 0 keeps none. */
        LIMIT_RETAINED_MAX = 4096,
        /* [retained_bytes] Bytes charged for all retained values (payload, topic and
         * LIMIT_RETAIN_ENTRY_COST each): the most the table holds. */
        LIMIT_RETAINED_BYTES = 64 * 1024 * 1024,
        /* [peer_retained_bytes] Bytes charged to one publisher identity (a domain or a local
         * uid): one guest cannot fill the table for the others. */
        LIMIT_PEER_RETAINED_BYTES = 4 * 1024 * 1024,
        /* [max_local_peers] Local (UNIX socket) links at once, out of max_peers: guests always
         * have max_peers - max_local_peers links however many local clients connect. */
        LIMIT_MAX_LOCAL_PEERS = 256,
        /* [max_call_timeout_ms] Longest deadline a call gets, and the one a call without a
         * timeout (0) gets: no call holds a server, a service's share and the caller's budget
         * for ever. A day, so that forwarded connections (docs/forward.md) live long. */
        LIMIT_MAX_CALL_TIMEOUT_MS = 24 * 3600 * 1000,
};

/* Memory budgets (budget.h), 64-bit: what the broker holds on peers' behalf, counted as payload
 * bytes plus LIMIT_ITEM_OVERHEAD per item, so that empty messages cost something. */
enum {
        /* [peer_memory] Held for one peer (its queues, its calls' relays, its streams): a peer
         * over it is refused, or loses its own messages. */
        LIMIT_PEER_MEMORY = 64ull * 1024 * 1024,
        /* [max_memory] Held for all peers together. Once reached, a peer holding more than its
         * share (max_memory / live peers) is refused; one under its share is not, so the total
         * can pass max_memory by at most what the peers under their share hold (a soft bound of
         * at most twice max_memory). */
        LIMIT_MAX_MEMORY = 1024ull * 1024 * 1024,
        /* [max_grant_mappings] Pages of guests' rings (and their control pages) the broker maps
         * at once: dom0's grant maptrack is shared with blkback and netback (Xen's default
         * gnttab_max_maptrack_frames, 1024, gives about 512 K mappings). Once reached, a guest
         * whose rings need more pages than its share (max_grant_mappings / guests) is refused. */
        LIMIT_MAX_GRANT_MAPPINGS = 262144,
        /* [max_ring_order] Largest ring the broker maps, as log2 of its bytes (12..20): 20 is a
         * 1 MiB ring, 256 pages; a guest offering larger ones is refused. */
        LIMIT_MAX_RING_ORDER = 20,
};

/* [socket_group] The group whose members may connect to the socket. */
#define LIMIT_SOCKET_GROUP "vbus"

/* Fixed limits. */
enum {
        /* What a retained value is charged besides its payload and topic: its bookkeeping,
         * so that many empty-ish values cannot hide under a byte budget. */
        LIMIT_RETAIN_ENTRY_COST = 256,
        /* Frames handled per peer per wakeup, so one busy peer cannot starve the others. */
        LIMIT_FRAMES_PER_WAKEUP = 256,
        /* Freed memory the heap keeps at its top while traffic flows (heap.h): a few queues'
         * worth (queue_bytes), so that routing does not pay a page fault per 4 KiB for memory
         * the kernel took back a moment before. Given back after a quiet tick. */
        LIMIT_HEAP_KEEP = 16 * 1024 * 1024,
        /* Allocations up to this size come from the heap, not from an mmap() each (heap.h):
         * above the default max_message and LIMIT_ADMIN_REPLY, below glibc's ceiling (32 MiB). */
        LIMIT_HEAP_MMAP = 8 * 1024 * 1024,
        /* Housekeeping tick: timeouts, and re-polling vchans (a peer can suppress our events). */
        LIMIT_TICK_MS = 1000,
        /* Out of fds or memory at accept(): the listening socket rests this long (broker.c). */
        LIMIT_ACCEPT_PAUSE_MS = 100,
        /* Orderly stop (SIGTERM, SIGINT): how long queued deliveries and calls in flight get
         * after GOAWAY before the remaining links are closed. systemd's stop timeout is far
         * longer; a restart should not wait on a peer that never leaves. */
        LIMIT_STOP_GRACE_MS = 2000,
        /* Log lines per source (a guest's domain, or a local process) per minute for things a
         * peer can trigger, its connections, disconnections and policy denials included (each
         * denial is also counted, without limit): a guest reconnecting in a loop cannot fill
         * dom0's journal (ratelimit.h). */
        LIMIT_LOG_PER_MINUTE = 20,
        /* Sources the log limiter tracks at once (a fixed table; see ratelimit.h). */
        LIMIT_LOG_SOURCES = 1024,
        /* Queue limit a subscriber may request (Open.queue_limit). */
        LIMIT_QUEUE_MESSAGES_MAX = 65536,
        /* Window libvbus grants per subscription, and the minimum the broker needs to make
         * progress with a message of max_frame. */
        LIMIT_SUBSCRIBER_WINDOW = 1024 * 1024,
        /* Window the broker grants each side of a call: what it buffers per direction. */
        LIMIT_CALL_WINDOW = 256 * 1024,
        /* Largest request to vbus.v1.Broker: a ListServicesRequest is a prefix of at most 255
         * bytes; the rest is room for fields added later. */
        LIMIT_INTROSPECT_REQUEST = 4096,
        /* Largest ListServices reply, cut at a service or server boundary: what the broker
         * buffers for one direction of any call. */
        LIMIT_INTROSPECT_REPLY = LIMIT_CALL_WINDOW,
        /* Bytes charged per item the broker holds for a peer (a queued message, a relayed
         * message, a stream) on top of its payload: about what the item's own allocations cost,
         * so that a flood of empty frames is bounded by the same budgets as one of full ones. */
        LIMIT_ITEM_OVERHEAD = 64,
        /* Largest message the broker puts into a batch frame toward a subscriber (protocol.md
         * 5.5); above it a message goes in a frame of its own, whose cost is small beside it. A
         * batch's message is never split, so with its Meta prefix (VBUS_META_MAX + 2) and length
         * (2 bytes) it must fit the smallest frame a peer may announce (VBUS_FRAME_MAX_MIN). */
        LIMIT_BATCH_MESSAGE_MAX = 2048,
        /* Smallest Open.initial_credit of a subscription whose queue may hold a batch's rest as
         * one item: a batch's message is never split in fragments, so the window it has when
         * caught up must take the largest (LIMIT_BATCH_MESSAGE_MAX) with its Meta prefix and
         * charge; smaller windows get their messages one by one. */
        LIMIT_BATCH_QUEUE_MIN_WINDOW = 16384,
        /* Entries of one BLOCK subscription's queue (DROP queues have queue_limit): bytes alone
         * do not bound empty messages. */
        LIMIT_BLOCK_QUEUE_MESSAGES = 65536,
        /* Messages relayed in one direction of one call and not yet written on (each a boundary
         * in the call's coalesced buffer): the window bounds the bytes, this the empty ones. It
         * lets a window of LIMIT_CALL_WINDOW bytes be filled with messages of 4 bytes or more, so
         * a sender of tiny messages to a slow reader is held back by the window, not refused. */
        LIMIT_CALL_MESSAGES = 65536,
        /* Charged to a caller per call in flight: its Call (about 1.3 KiB: the two sides, the
         * stamped server identity and a small first buffer per direction are inside it; rpc.c
         * checks that it fits) and the two streams of the call in the links' sessions. */
        LIMIT_CALL_COST = 2048,
        /* Share of a link's control backlog (VBUS_LINK_BACKLOG_MAX) that OPENs the broker sends
         * on others' behalf may fill; a new call that does not fit is refused with UNAVAILABLE,
         * and the rest is kept for the frames of the streams already open (budget.h). */
        LIMIT_BACKLOG_NEW_SHARE_PERCENT = 50,
        /* Charged to a peer per subscription or publisher it holds. */
        LIMIT_STREAM_COST = 512,
        /* A peer whose stream ids the broker has used up (finding 6) is sent GOAWAY and takes no
         * new call; its link is closed once the calls opened toward it end, or after this, so
         * that it reconnects with fresh ids (a client reconnects on its own). */
        LIMIT_RETIRE_GRACE_MS = 30 * 1000,
        /* Guests discovery tracks at once (a pointer each allocated up front, the rest per guest
         * found): domids of guests are below 0x7ff0, and max_peers bounds the links anyway. Each
         * tracked guest also holds one xenstore watch on the broker's connection. */
        LIMIT_DISCOVER_GUESTS = 4096,
        /* Largest reply of an admin listing (Peers, Topics, Subs) or of Metrics, cut at an entry
         * boundary with `truncated` set: what one admin call makes the broker buffer. */
        LIMIT_ADMIN_REPLY = 4 * 1024 * 1024,
        /* Bytes of a Kick reason kept: it goes into one log line and one ERROR frame. */
        LIMIT_KICK_REASON = 200,
        /* Presence events waiting for the end of the loop iteration: one per peer and service
         * that can come or go in one iteration, at the default max_peers. */
        LIMIT_PRESENCE_PENDING = 8192,
        /* Monitors at once over the whole broker: each costs a queue and a check per message. */
        LIMIT_MONITORS = 8,
        /* Events queued per monitor before it drops (and counts) them: a monitor never slows the
         * traffic it watches. About 400 bytes each at most. */
        LIMIT_MONITOR_QUEUE = 4096,
        /* Services with their own call latency histogram; the calls of any further service are
         * counted under service="_other" (service names are chosen by peers). */
        LIMIT_METRICS_SERVICES = 256,
        /* Connections to the metrics listener at once (metrics_listen); more wait in the
         * kernel's backlog. A scraper needs one. */
        LIMIT_SCRAPE_CONNS = 8,
        /* Bytes of an HTTP request to the metrics listener: a GET line and a few headers. */
        LIMIT_SCRAPE_REQUEST = 8192,
        /* A metrics connection that has not finished by then is closed. */
        LIMIT_SCRAPE_TIMEOUT_MS = 5000,
        /* Steps of guest setup per loop iteration (a setup is six steps of one to three
         * blocking round trips to xenstore or the hypervisor each: discover.c): a thousand
         * guests connecting at once are set up between the turns of the peers already
         * served, which a bystander's latency shows (bench/scale). */
        LIMIT_DISCOVER_SETUP_STEPS_PER_WAKEUP = 1,
        /* Event-channel ports the broker's table of guests by port covers: Xen's FIFO ABI has
         * 2^17 per domain (the 2-level ABI 4096 on 64-bit, xensim 4096); a port past it is
         * a setup that fails as the broker's own (never seen on Xen). */
        LIMIT_EVENT_PORTS = 1 << 17,
        /* Guest events taken from the shared event-channel handle per loop iteration (as
         * epoll's batch of 64): guests notifying without pause cannot hold the loop. */
        LIMIT_EVENTS_PER_WAKEUP = 64,
        /* First delay before a guest is set up again after the broker's own error (out of fds,
         * memory, ports, max_peers): the tick's period, so a passing shortage costs a second. */
        LIMIT_DISCOVER_RETRY_MIN_MS = 1000,
        /* The delay doubles up to this, so a lasting shortage costs each waiting guest one try
         * per half minute, not one per tick. */
        LIMIT_DISCOVER_RETRY_MAX_MS = 32000,
        /* The broker's own setup errors are logged once per this period for all guests, with a
         * count of those not logged: a shortage must not flood the journal either. */
        LIMIT_DISCOVER_LOCAL_LOG_MS = 10000,
        /* Keys in the keyring (auth_keyring): each HELLO proof looks its key up in it. */
        LIMIT_KEYRING_KEYS = 4096,
        /* A key's name in the keyring: [A-Za-z0-9_.@-], a log and policy token. */
        LIMIT_KEY_NAME = 64,
        /* A keyring file: 4096 lines of a name and a key, with room for comments. */
        LIMIT_KEYRING_FILE = 1024 * 1024,
};

/* The guest agent (vchand --agent, agent.h). */
enum {
        /* [agent_max_clients] Local connections at once: each is a session at the broker,
         * whose max_sessions (256 by default) refuses more anyway. */
        LIMIT_AGENT_MAX_CLIENTS = 256,
        /* [agent_client_queue] Bytes waiting toward one local process that does not read its
         * socket. What the broker sends a session is bounded by the windows the process
         * granted (1 MiB per subscription), so a process over this is cut off, alone. */
        LIMIT_AGENT_CLIENT_QUEUE = 16 * 1024 * 1024,
        /* Largest frame payload the agent relays each way: fits a 64 KiB ring and the UNIX
         * buffer; HELLOs (libvbus announces VBUS_FRAME_MAX_DEFAULT) are clamped to it. */
        LIMIT_AGENT_MAX_FRAME = 61440,
        /* Ring size the agent grants each way on its vchan: as libvbus (1 MiB). */
        LIMIT_AGENT_RING = 1024 * 1024,
        /* Frames read from one local process per turn, so one busy process cannot starve the
         * others; and from the broker per loop iteration. */
        LIMIT_AGENT_FRAMES_PER_CLIENT = 64,
        LIMIT_AGENT_FRAMES_FROM_BROKER = 4096,
        /* A published ring the broker has not mapped by then is published afresh (as libvbus
         * does: the broker may have removed it as stale). */
        LIMIT_AGENT_VCHAN_WAIT_MS = 5000,
        /* Reconnect back-off toward the broker, doubling from the first to the last. */
        LIMIT_AGENT_RECONNECT_MIN_MS = 50,
        LIMIT_AGENT_RECONNECT_MAX_MS = 2000,
};

/* Policy (policy.c): bounds on what an administrator's files can make the broker hold and scan;
 * each is far above a realistic policy (a hundred rules). */
enum {
        /* Rules over all files: every OPEN scans them in order. */
        LIMIT_POLICY_RULES = 65536,
        /* Bytes of one policy file. */
        LIMIT_POLICY_FILE_BYTES = 1024 * 1024,
        /* *.policy files in the directory. */
        LIMIT_POLICY_FILES = 1024,
        /* Bytes of one line. */
        LIMIT_POLICY_LINE = 4096,
        /* Named keys (!key). */
        LIMIT_POLICY_KEYS = 4096,
};

#endif /* VCHAND_LIMITS_H */
