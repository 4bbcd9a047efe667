/* destcache.c - see destcache.h. */
#include "destcache.h"

#include <stdint.h>
#include <string.h>

#define SLOTS 64   /* a program sends to a few ports at a time */

static struct slot {
    const char *at;   /* address of the caller's ID string, or NULL */
    void *value;
    uint8_t idlen, nodelen;
    char id[AEMP_DESTCACHE_MAX_ID + 1];   /* the ID's bytes and its NUL */
} slots[SLOTS];

static inline struct slot *slot_of(const char *id)
{
    uintptr_t a = (uintptr_t)id;
    return &slots[(a ^ a >> 7) & (SLOTS - 1)];
}

void *aemp__destcache_get(const char *id, const char **name, size_t *namelen)
{
    struct slot *s = slot_of(id);
    if (s->at != id || strcmp(id, s->id) != 0)
        return NULL;
    *name = id + s->nodelen + 1;
    *namelen = (size_t)(s->idlen - s->nodelen - 1);
    return s->value;
}

void aemp__destcache_put(const char *id, size_t nodelen, size_t namelen, void *value)
{
    size_t idlen = nodelen + 1 + namelen;
    if (!namelen || idlen > AEMP_DESTCACHE_MAX_ID)
        return;
    struct slot *s = slot_of(id);
    s->at = id;
    s->value = value;
    s->idlen = (uint8_t)idlen;
    s->nodelen = (uint8_t)nodelen;
    memcpy(s->id, id, idlen);
    s->id[idlen] = 0;
}

void aemp__destcache_clear(void)
{
    memset(slots, 0, sizeof slots);
}
