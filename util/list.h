/* SPDX-License-Identifier: MIT */
/*
 * list: an intrusive circular doubly-linked list. Embed a List in each element; the owner keeps
 * one List as the head. An element's List is self-linked when it is in no list, so unlinking twice
 * is harmless.
 */
#ifndef VBUS_UTIL_LIST_H
#define VBUS_UTIL_LIST_H

#include <stdbool.h>

#include "macros.h"

typedef struct List {
        struct List *prev, *next;
} List;

static inline void list_init(List *l)
{
        l->prev = l->next = l;
}

static inline bool list_is_empty(const List *l)
{
        return l->next == l;
}

static inline bool list_is_linked(const List *l)
{
        return l->next != l;
}

static inline void list_add_tail(List *head, List *l)
{
        l->prev = head->prev;
        l->next = head;
        head->prev->next = l;
        head->prev = l;
}

static inline void list_unlink(List *l)
{
        l->prev->next = l->next;
        l->next->prev = l->prev;
        list_init(l);
}

#define list_entry(ptr, type, member) container_of(ptr, type, member)

/* Iterates safely against removal of the current element. */
#define list_for_each_safe(pos, tmp, head)                                                         \
        for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                           \
             (pos) = (tmp), (tmp) = (pos)->next)

#endif /* VBUS_UTIL_LIST_H */
