/*
 * Event channels of every emulated domain: Xen's port state machine (free, unbound for one
 * remote domain, interdomain), with ports numbered per domain as in Xen. No I/O: the I/O
 * layer (hvd.c) is told through HvEvtchnOps when a port is raised, when a port loses its
 * interdomain peer, and when a port is freed; it attaches its own per-port object (a
 * doorbell) through HvPort.doorbell.
 *
 * Each bound port belongs to one "owner" (opaque: the daemon's connection of the handle that
 * bound it). An unmap-notify may hold a port (hv_evtchn_hold) so that it outlives its owner
 * until the notify has been sent, as Linux's gntalloc/gntdev take a reference on the event
 * channel. Pending and mask bits are not kept here: they live with the doorbell (an eventfd
 * the receiving process arms one-shot), see hvd.c and lib-evtchn.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HvPort {
        uint8_t state; /* HV_EVTCHN_* */
        bool orphaned; /* owner closed it while holds remained */
        uint16_t remote_domid;
        uint32_t remote_port; /* interdomain only */
        void *owner;          /* borrowed; NULL when free or orphaned */
        uint32_t n_holds;
        int doorbell;     /* the I/O layer's object for this port, -1 when none; opaque here */
        uint8_t io_flags; /* the I/O layer's flags; opaque here, cleared when freed */
} HvPort;

/* Callbacks into the I/O layer; each gets the domain, port number and port concerned. */
typedef struct HvEvtchnOps {
        /* An event is sent to this port. */
        void (*raise)(void *userdata, uint32_t domid, uint32_t port, HvPort *p);
        /* This port's interdomain peer closed: it is unbound again (remote_domid = closer). */
        void (*unpeer)(void *userdata, uint32_t domid, uint32_t port, HvPort *p);
        /* This port is about to be freed (release its doorbell). */
        void (*freed)(void *userdata, uint32_t domid, uint32_t port, HvPort *p);
} HvEvtchnOps;

typedef struct HvEvtchnDomain {
        uint16_t domid;
        HvPort *ports; /* HV_PORTS_PER_DOMAIN entries, port 0 never used */
} HvEvtchnDomain;

typedef struct HvEvtchn {
        HvEvtchnDomain **domains; /* indexed by domid; NULL where none */
        size_t n_domains;
        const HvEvtchnOps *ops;
        void *userdata;
} HvEvtchn;

/* ops and userdata are borrowed for the lifetime of ev. */
void hv_evtchn_init(HvEvtchn *ev, const HvEvtchnOps *ops, void *userdata);
void hv_evtchn_deinit(HvEvtchn *ev);

/* Returns 0, -EINVAL (domid out of range), -EEXIST, -ENOMEM. */
int hv_evtchn_add_domain(HvEvtchn *ev, uint32_t domid);
/* Close every port of the domain (peers return to unbound) and forget it. No-op if absent. */
void hv_evtchn_remove_domain(HvEvtchn *ev, uint32_t domid);
bool hv_evtchn_has_domain(const HvEvtchn *ev, uint32_t domid);

/*
 * Allocate an unbound port of domid that remote_domid may bind to.
 * Returns 0, -ESRCH (no such domain), -EINVAL (remote domid out of range), -ENOSPC.
 */
int hv_evtchn_alloc_unbound(HvEvtchn *ev, uint32_t domid, uint32_t remote_domid, void *owner,
                            uint32_t *ret_port);

/*
 * Bind a new port of domid to remote_port of remote_domid, which must be unbound for domid.
 * Xen then raises the new local port once (a notify may have been lost before it); that is
 * the caller's job, once it has given the port its doorbell.
 * Returns 0, -ESRCH (remote domain absent), -EINVAL (bad port or not unbound for us), -ENOSPC.
 */
int hv_evtchn_bind_interdomain(HvEvtchn *ev, uint32_t domid, uint32_t remote_domid,
                               uint32_t remote_port, void *owner, uint32_t *ret_port);

/*
 * Close a port bound by owner; an interdomain peer returns to unbound for this domain.
 * Returns 0, -EINVAL (port out of range or domain absent), -ENOTCONN (not bound by owner).
 */
int hv_evtchn_close(HvEvtchn *ev, uint32_t domid, uint32_t port, void *owner);

/* Close every port owner holds in domid. */
void hv_evtchn_close_owner(HvEvtchn *ev, uint32_t domid, void *owner);

/*
 * Send an event on a port: raises the interdomain peer; an unbound port drops it, as Xen does.
 * owner NULL sends as the domain itself (the unmap-notify of a dead process).
 * Returns 0, -EINVAL (port out of range / free), -ENOTCONN (not bound by owner).
 */
int hv_evtchn_notify(HvEvtchn *ev, uint32_t domid, uint32_t port, void *owner);

/* The port of a domain, or NULL when the domain or port does not exist (port 0 never does). */
HvPort *hv_evtchn_port(const HvEvtchn *ev, uint32_t domid, uint32_t port);

/* Take / drop a reference keeping a bound port alive. hold: 0 or -EINVAL (not bound). */
int hv_evtchn_hold(HvEvtchn *ev, uint32_t domid, uint32_t port);
void hv_evtchn_release(HvEvtchn *ev, uint32_t domid, uint32_t port);

/* State of a port (HV_EVTCHN_*). Returns 0 or -ESRCH / -EINVAL. */
int hv_evtchn_status(const HvEvtchn *ev, uint32_t domid, uint32_t port, uint32_t *ret_state,
                     uint32_t *ret_remote_domid, uint32_t *ret_remote_port);
