/*
 * xs-perm: xenstore node permissions, with Xen's documented semantics.
 *
 * A node's permission list has at least one entry. The first names the owner and gives the
 * access of every domain not listed; later entries give the access of one domain each.
 * Domain 0 (privileged) and the owner have full access, including the OWNER right needed to
 * change permissions. Text form: one letter (n none, r read, w write, b both) and a domid.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XS_ACC_NONE  0u
#define XS_ACC_READ  1u
#define XS_ACC_WRITE 2u
#define XS_ACC_OWNER 4u

/* Buffer size for one permission in text form: letter, up to 10 digits, NUL. */
#define XS_PERM_TEXT_MAX 12u

typedef struct XsPerm {
        uint32_t domid;
        uint32_t access; /* XS_ACC_READ | XS_ACC_WRITE */
} XsPerm;

/* Parses "r3" from s (borrowed, NUL-terminated). Returns 0 or -EINVAL. */
int xs_perm_parse(const char *s, XsPerm *ret);

/* Writes the text form into buf (size >= XS_PERM_TEXT_MAX); returns its length. */
size_t xs_perm_format(const XsPerm *perm, char *buf, size_t size);

/*
 * The access (XS_ACC_* bits) that domain domid has to a node with perms[0..n_perms-1];
 * n_perms must be at least 1.
 */
uint32_t xs_perm_for(const XsPerm *perms, size_t n_perms, uint32_t domid, bool privileged);
