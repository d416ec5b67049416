/* SPDX-License-Identifier: MIT */
/*
 * limits: every bound of vbus-bridge, in one place, each with its reason. Mirrored in
 * docs/federation.md ("Limits").
 */
#ifndef VBUS_BRIDGE_LIMITS_H
#define VBUS_BRIDGE_LIMITS_H

/* A host name: one token that is valid in a NATS subject, a vbus topic and a vbus service name
 * ([A-Za-z][A-Za-z0-9_]*), short enough to keep prefixes far below the 255-byte name limit. */
#define BRIDGE_HOST_MAX 32

/* vbus topics, patterns and service names (VBUS_NAME_MAX in the protocol). */
#define BRIDGE_NAME_MAX 255

/* A root (subject-root, rpc-root, import-root): one to four tokens. */
#define BRIDGE_ROOT_MAX 64

/* Rules of each kind in one configuration: a bridge is configured by hand, not generated. */
#define BRIDGE_RULES_MAX 128

/* NATS server URLs in one configuration. */
#define BRIDGE_URLS_MAX 16

/* A configuration line: longer lines are an error, not silently cut. */
#define BRIDGE_LINE_MAX 4096

/* Events handed from libnats' threads to the bridge's loop: beyond this the delivering thread
 * waits, so libnats' own pending limit (and its slow-consumer count) takes over, and the loss is
 * seen by the importer as a sequence gap. Bytes are counted as payload plus a fixed cost. */
#define BRIDGE_QUEUE_MAX_EVENTS 65536
#define BRIDGE_QUEUE_MAX_BYTES  (64u * 1024 * 1024)
#define BRIDGE_QUEUE_EVENT_COST 128

/* Events handled per turn of the loop before the vbus connection is served again. */
#define BRIDGE_BATCH 256

/* Imported messages waiting for credit on one local topic, and in all: beyond them the oldest
 * waiting message is dropped and counted in the next message's gap on that topic. */
#define BRIDGE_IMPORT_QUEUE_PER_TOPIC 4096
#define BRIDGE_IMPORT_QUEUE_BYTES     (32u * 1024 * 1024)

/* Local publishers the importer keeps open (one per local topic): an idle one is closed to make
 * room. */
#define BRIDGE_PUBLISHERS_MAX 4096

/* Sequence state the exporter and the importer keep per NATS subject. When a table is full it is
 * cleared: the exporter then starts a new epoch and the importer marks the first message of
 * every subject it sees again as following an unknown gap, so nothing is lost silently. */
#define BRIDGE_SEQ_SUBJECTS_MAX 65536

/* RPC calls in flight through the bridge in each direction (calls out to NATS, calls in from
 * NATS); over it a call fails at once with resource-exhausted. */
#define BRIDGE_RPC_CALLS_DEFAULT 1024
#define BRIDGE_RPC_CALLS_MAX     65536

/* The deadline given to calls that have none (NATS cannot tell the caller's bridge that the
 * serving bridge died, so no call may wait forever). */
#define BRIDGE_RPC_DEFAULT_TIMEOUT_MS 30000

/* Messages of one server-streaming call that arrived from NATS and wait for the local caller:
 * NATS has no flow control, so a caller slower than the remote server ends the call with
 * resource-exhausted rather than let the bridge buffer without bound. */
#define BRIDGE_STREAM_QUEUE_MSGS  1024
#define BRIDGE_STREAM_QUEUE_BYTES (8u * 1024 * 1024)

/* How often calls in flight are checked for cancellation by their local caller. */
#define BRIDGE_RPC_SWEEP_USEC 20000

/* How long one delivery of an imported message may wait for credit before the loop retries. */
#define BRIDGE_RETRY_USEC 2000

#endif /* VBUS_BRIDGE_LIMITS_H */
