/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by libbus, vchand and the clients: cleanup attributes, pointer stealing,
 * container_of and array sizes. Header-only, so linking it exports nothing.
 */
#ifndef VBUS_UTIL_MACROS_H
#define VBUS_UTIL_MACROS_H

#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member)                                                            \
        ((type *)(void *)((char *)(1 ? (ptr) : &((type *)0)->member) - offsetof(type, member)))

/* cleanup(f) runs f(&var) when var goes out of scope. */
#define cleanup(f) __attribute__((__cleanup__(f)))

/* take_ptr(p): returns p and sets it to NULL, to hand an object out of a cleanup scope. */
#define take_ptr(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) *take_ptr_p = &(p);                                                  \
                __typeof__(p) take_ptr_v = *take_ptr_p;                                            \
                *take_ptr_p = NULL;                                                                \
                take_ptr_v;                                                                        \
        })

static inline void freep(void *p)
{
        free(*(void **)p);
}
#define cleanup_free cleanup(freep)

static inline void closep(int *fd)
{
        if (*fd >= 0)
                (void)close(*fd);
}
#define cleanup_close cleanup(closep)

#endif /* VBUS_UTIL_MACROS_H */
