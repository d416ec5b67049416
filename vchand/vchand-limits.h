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
        /* [max_frame] Payload bytes the broker accepts per frame: fits a 64 KiB ring. */
        LIMIT_MAX_FRAME = 60 * 1024,
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
        /* [max_calls] RPC calls in flight per caller session: bounds per-peer call state. */
        LIMIT_MAX_CALLS = 256,
        /* [max_service_calls] Calls in flight per service, over all its servers. */
        LIMIT_MAX_SERVICE_CALLS = 4096,
};

/* Fixed limits. */
enum {
        /* Frames handled per peer per wakeup, so one busy peer cannot starve the others. */
        LIMIT_FRAMES_PER_WAKEUP = 256,
        /* Housekeeping tick: timeouts, and re-polling vchans (a peer can suppress our events). */
        LIMIT_TICK_MS = 1000,
        /* Log lines per peer per minute for things a peer can trigger. */
        LIMIT_PEER_LOG_PER_MINUTE = 10,
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
        /* Guests discovery tracks at once (one slot each, allocated up front): domids of guests
         * are below 0x7ff0, and max_peers bounds the links anyway. */
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
        /* Keys in the keyring (auth_keyring): each HELLO proof looks its key up in it. */
        LIMIT_KEYRING_KEYS = 4096,
        /* A key's name in the keyring: [A-Za-z0-9_.@-], a log and policy token. */
        LIMIT_KEY_NAME = 64,
        /* A keyring file: 4096 lines of a name and a key, with room for comments. */
        LIMIT_KEYRING_FILE = 1024 * 1024,
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
        /* Denials logged per peer per minute (each is also counted, without limit). */
        LIMIT_POLICY_LOG_PER_MINUTE = 10,
};

#endif /* VCHAND_LIMITS_H */
