/* fuzz_main.c - a stand-in for libFuzzer's driver, so that every fuzz
 * target also runs as an ordinary test with any compiler (the smoke test of
 * `make check`).
 *
 *   fuzz_TARGET [-runs=N] [-max_total_time=S] [-seed=K] PATH...
 *
 * Calls LLVMFuzzerTestOneInput once per file named on the command line and
 * per regular file in a directory named there (not recursively, in name
 * order), then on N inputs made from those by a small deterministic
 * mutator (default 0; the sequence depends only on the corpus and K),
 * stopping early once S seconds have passed since the start.  Each input
 * is handed over in a buffer of exactly its size, so that a sanitizer sees
 * any read past its end.  Other "-flag=value" arguments (libFuzzer's) are
 * ignored.  Exit status 0, or 1 if an input cannot be read or none was
 * found (a violated property aborts in the target).
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Longest input the mutator makes. */
#define MUT_MAX_LEN 65536

/* The seed inputs, read once. */
typedef struct corpus {
    struct input {
        uint8_t *p;
        size_t n;
    } *v;
    size_t n, cap;
} corpus_t;

/* malloc that exits when out of memory. */
static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "fuzz_main: out of memory\n");
        exit(1);
    }
    return p;
}

/* Run the target on a private copy of p[0..n) of exactly n bytes. */
static void run_one(const uint8_t *p, size_t n)
{
    uint8_t *copy = xmalloc(n);
    if (n)
        memcpy(copy, p, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
}

/* Append the file at path to c; -1 if it cannot be read. */
static int read_input(corpus_t *c, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t len = 0, cap = 4096;
    uint8_t *p = xmalloc(cap);
    size_t k;
    while ((k = fread(p + len, 1, cap - len, f)) > 0) {
        len += k;
        if (len == cap) {
            uint8_t *q = realloc(p, cap *= 2);
            if (!q) {
                free(p);
                fclose(f);
                fprintf(stderr, "%s: out of memory\n", path);
                return -1;
            }
            p = q;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(p);
        return -1;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        struct input *v = realloc(c->v, c->cap * sizeof *c->v);
        if (!v) {
            free(p);
            return -1;
        }
        c->v = v;
    }
    c->v[c->n].p = p;
    c->v[c->n].n = len;
    c->n++;
    return 0;
}

/* scandir order: by name. */
static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Read path, or the regular files in it if it is a directory, into c;
 * -1 on an error. */
static int read_path(corpus_t *c, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return read_input(c, path);
    struct dirent **names;
    int n = scandir(path, &names, NULL, by_name);
    if (n < 0) {
        perror(path);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, names[i]->d_name);
        if (rc == 0 && names[i]->d_name[0] != '.' && stat(full, &st) == 0 && S_ISREG(st.st_mode))
            rc = read_input(c, full);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* xorshift64*: the mutator's deterministic random numbers. */
static uint64_t rnd_state;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return rnd_state * 2685821657736338717ull;
}

/* A random number below n (n > 0). */
static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

/* Bytes that matter to the parsers under test: structure characters of
 * the handshake, JSON and endpoints, and CBOR boundary heads. */
static const uint8_t interesting[] = {
    0x00, 0xff, 0x7f, 0x80, '\n', '\r', ';', ',', '=', '%', '"', '\\', '[', ']', '{', '}',
    ':', '#', '*', ' ', '0', '9', 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x5f, 0x7f, 0x9f, 0xbf, 0xf6,
};

/* Apply one random edit to buf[0..*n) (capacity MUT_MAX_LEN): flip a bit,
 * overwrite or insert a byte (random or interesting), delete, duplicate or
 * truncate a range, or splice in a piece of another corpus input. */
static void mutate_once(uint8_t *buf, size_t *n, const corpus_t *c)
{
    size_t len = *n;
    switch (rnd_below(8)) {
    case 0: /* flip a bit */
        if (len)
            buf[rnd_below(len)] ^= (uint8_t)(1u << rnd_below(8));
        break;
    case 1: /* overwrite a byte */
        if (len)
            buf[rnd_below(len)] = (uint8_t)rnd();
        break;
    case 2: /* overwrite with an interesting byte */
        if (len)
            buf[rnd_below(len)] = interesting[rnd_below(sizeof interesting)];
        break;
    case 3: /* insert a byte */
        if (len < MUT_MAX_LEN) {
            size_t at = rnd_below(len + 1);
            memmove(buf + at + 1, buf + at, len - at);
            buf[at] = rnd_below(2) ? (uint8_t)rnd() : interesting[rnd_below(sizeof interesting)];
            len++;
        }
        break;
    case 4: /* delete a range */
        if (len) {
            size_t at = rnd_below(len), k = 1 + rnd_below(len - at < 16 ? len - at : 16);
            memmove(buf + at, buf + at + k, len - at - k);
            len -= k;
        }
        break;
    case 5: /* duplicate a range elsewhere */
        if (len && len < MUT_MAX_LEN) {
            size_t from = rnd_below(len), k = 1 + rnd_below(len - from);
            if (k > MUT_MAX_LEN - len)
                k = MUT_MAX_LEN - len;
            size_t at = rnd_below(len + 1);
            uint8_t tmp[256];
            if (k > sizeof tmp)
                k = sizeof tmp;
            memcpy(tmp, buf + from, k);
            memmove(buf + at + k, buf + at, len - at);
            memcpy(buf + at, tmp, k);
            len += k;
        }
        break;
    case 6: { /* splice: keep a prefix, append a piece of another input */
        const struct input *o = &c->v[rnd_below(c->n)];
        size_t keep = rnd_below(len + 1);
        size_t from = o->n ? rnd_below(o->n) : 0, k = o->n - from;
        if (k > MUT_MAX_LEN - keep)
            k = MUT_MAX_LEN - keep;
        memcpy(buf + keep, o->p + from, k);
        len = keep + k;
        break;
    }
    default: /* truncate */
        len = rnd_below(len + 1);
        break;
    }
    *n = len;
}

/* Seconds since an arbitrary fixed point. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long runs = 0;
    double max_time = 0;
    unsigned long long seed = 1;
    corpus_t c = { 0 };
    double start = now();

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "-runs=", 6))
            runs = strtol(a + 6, NULL, 10);
        else if (!strncmp(a, "-max_total_time=", 16))
            max_time = strtod(a + 16, NULL);
        else if (!strncmp(a, "-seed=", 6))
            seed = strtoull(a + 6, NULL, 10);
        else if (a[0] == '-')
            continue;   /* a libFuzzer flag this driver does not implement */
        else if (read_path(&c, a) < 0)
            return 1;
    }
    if (!c.n) {
        fprintf(stderr, "fuzz_main: no inputs\n");
        return 1;
    }
    for (size_t i = 0; i < c.n; i++)
        run_one(c.v[i].p, c.v[i].n);

    rnd_state = seed * 0x9e3779b97f4a7c15ull + 1;
    uint8_t *buf = xmalloc(MUT_MAX_LEN);
    long done = 0;
    for (; done < runs; done++) {
        if (max_time > 0 && (done & 63) == 0 && now() - start > max_time)
            break;
        const struct input *base = &c.v[rnd_below(c.n)];
        size_t n = base->n < MUT_MAX_LEN ? base->n : MUT_MAX_LEN;
        memcpy(buf, base->p, n);
        for (size_t k = 1 + rnd_below(4); k > 0; k--)
            mutate_once(buf, &n, &c);
        run_one(buf, n);
    }
    free(buf);
    printf("fuzz_main: %zu corpus inputs and %ld mutated inputs checked in %.1f s\n", c.n, done,
           now() - start);
    for (size_t i = 0; i < c.n; i++)
        free(c.v[i].p);
    free(c.v);
    return 0;
}
