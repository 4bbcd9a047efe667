/* ids.c - node IDs, port names and the ID syntax.
 *
 * Port names are <prefix><counter>: the prefix is generated per process
 * start (UNIQ: derived from pid and time plus random characters; RUNIQ for
 * spawned ports: random, last character upper case) and the counter is a
 * Perl-style string increment ("b", "c", ..., "z", "aa", ...) shared by all
 * ports, so names are never reused within a process nor across restarts.
 */
#include "internal.h"
#include "random.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* Random characters for IDs; failing is not recoverable for IDs that must
 * be unique across the network. */
static void random_chars(char *out, size_t n)
{
    if (aemp__random_base62(out, n) < 0)
        abort();
}

/* Perl's magic string increment on a lowercase string. */
static void increment(char *s)
{
    size_t n = strlen(s);
    for (size_t i = n; i-- > 0;) {
        if (s[i] != 'z') {
            s[i]++;
            return;
        }
        s[i] = 'a';
    }
    if (n + 1 < sizeof aemp__g.counter) {
        memmove(s + 1, s, n + 1);
        s[0] = 'a';
    }
}

/* Called once per initialisation: fresh prefixes and counter. */
void aemp__ids_init(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    double now = tv.tv_sec + tv.tv_usec / 1e6;
    unsigned long pid = (unsigned long)getpid();
    char *u = aemp__g.uniq;
    u[0] = aemp__base62[(pid / 62) % 62];
    u[1] = aemp__base62[pid % 62];
    u[2] = aemp__base62[(unsigned long)now % 62];
    u[3] = aemp__base62[(unsigned long)(now * 100) % 62];
    u[4] = aemp__base62[(unsigned long)(now * 10000) % 62];
    random_chars(u + 5, 4);
    random_chars(aemp__g.runiq, 10);
    char *last = &aemp__g.runiq[9];
    if (*last >= 'a' && *last <= 'z')
        *last -= 'a' - 'A';
    strcpy(aemp__g.counter, "a");
}

size_t aemp__next_port_name(int spawned, char *buf)
{
    increment(aemp__g.counter);
    const char *prefix = spawned ? aemp__g.runiq : aemp__g.uniq;
    size_t pl = strlen(prefix), cl = strlen(aemp__g.counter);
    _Static_assert(sizeof aemp__g.uniq + sizeof aemp__g.counter <= AEMP_PORT_NAME_MAX, "port name buffer");
    memcpy(buf, prefix, pl);
    memcpy(buf + pl, aemp__g.counter, cl + 1);
    return pl + cl;
}

char *aemp__new_port_name(int spawned)
{
    char buf[AEMP_PORT_NAME_MAX];
    size_t n = aemp__next_port_name(spawned, buf);
    char *name = malloc(n + 1);
    if (!name)
        abort();
    memcpy(name, buf, n + 1);
    return name;
}

int aemp__split_id(const char *id, size_t *nodelen, const char **name, size_t *namelen)
{
    if (!id || !*id || *id == '#')
        return AEMP_EPORTID;
    const char *q = id;   /* in line: node IDs are short */
    while (*q && *q != '#')
        q++;
    size_t nl = (size_t)(q - id);
    if (*q) {
        *name = q + 1;
        *namelen = strlen(q + 1);
    } else {
        *name = q;
        *namelen = 0;
    }
    *nodelen = nl;
    return aemp__same_key(id, nl, aemp__g.nodeid, aemp__g.nodeid_len);
}

int aemp__split_local(const char *id, const char **name, size_t *namelen)
{
    size_t nl;
    return aemp__split_id(id, &nl, name, namelen);
}

int aemp__local_port_name(const char *id, const char **name, size_t *namelen)
{
    int r = aemp__split_local(id, name, namelen);
    if (r < 0)
        return r;
    if (!r)
        return AEMP_ENOTLOCAL;
    return *namelen ? 0 : AEMP_ENODEPORT;
}

size_t aemp_node_len(const char *id)
{
    const char *hash = strchr(id, '#');
    return hash ? (size_t)(hash - id) : strlen(id);
}

int aemp_node_of(const char *id, char *buf, size_t size)
{
    if (!id || !buf)
        return AEMP_EINVAL;
    size_t n = aemp_node_len(id);
    if (n + 1 > size)
        return AEMP_EINVAL;
    memcpy(buf, id, n);
    buf[n] = 0;
    return (int)n;
}

int aemp_port_is_local(const char *id)
{
    aemp__ensure_init();
    const char *name;
    size_t len;
    return aemp__split_local(id, &name, &len) == 1;
}
