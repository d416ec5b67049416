/*
 * Limits of the xensim hypervisor emulation (xensim-hvd and the drop-in libraries), each with
 * its reason. Everything a client sends is checked against these before anything is allocated.
 */
#pragma once

/* Xen reserves domids from DOMID_FIRST_RESERVED (0x7FF0) upwards for special meanings. */
#define HV_DOMID_MAX 0x7FEFu

/* Xen's grant table v1 reserves the first 8 entries for the toolstack (console, xenstore). */
#define HV_GRANT_REF_FIRST 8u

/*
 * Grant entries per domain. Linux's gntalloc defaults to 1024 per domain; we allow more so
 * that several 1 MiB vchans (513 grants each) fit in one domain during tests.
 */
#define HV_GRANTS_PER_DOMAIN 4096u

/* Pages per share or map request: a 1 MiB vchan ring is 256 pages; leave room for two. */
#define HV_PAGES_PER_REQ 1024u

/* Xen's 2-level event channel ABI has 4096 ports on 64-bit guests (port 0 is never used). */
#define HV_PORTS_PER_DOMAIN 4096u

/*
 * Open connections (handles) per unprivileged domain: bounds what one guest can make the
 * daemon hold. Domain 0 is not bounded (only by the daemon's descriptor limit, which it raises
 * to the hard limit): on Xen, dom0's handles are descriptors of /dev/xen/evtchn and gntdev,
 * bounded by its own RLIMIT_NOFILE, and a backend in dom0 (vchand, blkback's tools) holds one
 * per guest it serves.
 */
#define HV_CONNS_PER_DOMAIN 1024u

/*
 * Live shares and maps per connection. A process that maps many guests through one grant
 * handle (vchand holds 3 mappings per guest on one) needs many; Xen's own bound is the
 * domain's maptrack table (max_maptrack_frames, 1024 frames of 256 entries by default, i.e.
 * 262144 mapped grants), which this stays well inside.
 */
#define HV_OBJECTS_PER_CONN 16384u

/*
 * Descriptors the daemon may hold for one unprivileged domain (a connection 1, a share 2, a
 * notify mapping 1, a bound port 1): one guest cannot use up the daemon's descriptors and
 * starve the others. A vchan costs its server domain about 9 and its client about 4. Domain 0
 * is exempt, as for HV_CONNS_PER_DOMAIN: its backends hold a few per guest.
 */
#define HV_FDS_PER_DOMAIN 4096u

/* Largest protocol message: a map request of HV_PAGES_PER_REQ (domid, ref) pairs. */
#define HV_MSG_MAX (64u + 8u * HV_PAGES_PER_REQ)

/* File descriptors in one reply; the kernel's SCM_MAX_FD is 253. */
#define HV_FDS_PER_MSG 253u

/* The page size of the emulated machine (Xen's XEN_PAGE_SIZE on x86). */
#define HV_PAGE_SIZE 4096u
