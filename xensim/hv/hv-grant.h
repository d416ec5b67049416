/*
 * Grant tables of every emulated domain. A grant entry says "page P of backing B may be mapped
 * by domain G (read-only or writable)"; the backing is opaque here (the daemon's shared-memory
 * file of one share request). No I/O: this module only decides who may map what.
 *
 * Refs are per granting domain, as in Xen, start at HV_GRANT_REF_FIRST, and are handed out
 * round-robin so that a freed ref is not immediately reused.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HvGrant {
        bool in_use;
        bool readonly;
        uint16_t grantee;
        uint32_t page;
        void *backing; /* borrowed */
} HvGrant;

typedef struct HvGrantDomain {
        HvGrant *entries; /* HV_GRANTS_PER_DOMAIN */
        uint32_t next;    /* where the next allocation starts looking */
        uint32_t n_used;
} HvGrantDomain;

typedef struct HvGrants {
        HvGrantDomain **domains; /* indexed by domid; NULL where none */
        size_t n_domains;
} HvGrants;

void hv_grant_init(HvGrants *g);
void hv_grant_deinit(HvGrants *g);

/* Returns 0, -EINVAL (domid out of range), -EEXIST, -ENOMEM. */
int hv_grant_add_domain(HvGrants *g, uint32_t domid);
/* Revoke every grant of the domain and forget it (new maps fail with -ESRCH). */
void hv_grant_remove_domain(HvGrants *g, uint32_t domid);
bool hv_grant_has_domain(const HvGrants *g, uint32_t domid);

/*
 * Grant page `page` of `backing` (borrowed until freed) to `grantee`.
 * Returns 0, -ESRCH (no such granting domain), -EINVAL (grantee out of range), -ENOSPC.
 */
int hv_grant_alloc(HvGrants *g, uint32_t domid, uint32_t grantee, bool readonly, void *backing,
                   uint32_t page, uint32_t *ret_ref);

/* End a grant; unknown refs are ignored. */
void hv_grant_free(HvGrants *g, uint32_t domid, uint32_t ref);

/*
 * May `mapper` map `ref` of `granter`, writable or not? On success gives the backing and page.
 * Returns 0, -ESRCH (granter absent), -EINVAL (ref out of range or not granted),
 * -EPERM (granted to another domain, or writable requested on a read-only grant).
 */
int hv_grant_check_map(const HvGrants *g, uint32_t granter, uint32_t ref, uint32_t mapper,
                       bool writable, void **ret_backing, uint32_t *ret_page);
