/* Tests for the string-keyed hash table: insert, replace, lookup, delete
 * with tombstones, growth, and iteration with deletion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "table.h"

#define N 20000

static char keys[N][16];

static void put_get_replace_delete(void **state)
{
    aemp_table_t t = AEMP_TABLE_INIT;
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "port%d", i);
        assert_null(aemp__table_put(&t, keys[i], strlen(keys[i]), (void *)(intptr_t)(i + 1)));
    }
    assert_int_equal(t.used, N);
    for (int i = 0; i < N; i++)
        assert_int_equal((intptr_t)aemp__table_get(&t, keys[i], strlen(keys[i])), i + 1);
    /* keys are compared by length and bytes, not by pointer */
    char probe[16];
    snprintf(probe, sizeof probe, "port%d", 123);
    assert_int_equal((intptr_t)aemp__table_get(&t, probe, strlen(probe)), 124);
    assert_null(aemp__table_get(&t, "port", 4));
    assert_null(aemp__table_get(&t, "port1234567", 11));
    /* replace returns the old value */
    assert_int_equal((intptr_t)aemp__table_put(&t, keys[7], strlen(keys[7]), (void *)99), 8);
    assert_int_equal((intptr_t)aemp__table_get(&t, keys[7], strlen(keys[7])), 99);
    assert_int_equal(t.used, N);
    /* delete every other key; the rest stay reachable past the tombstones */
    for (int i = 0; i < N; i += 2)
        assert_non_null(aemp__table_del(&t, keys[i], strlen(keys[i])));
    assert_null(aemp__table_del(&t, keys[0], strlen(keys[0])));
    assert_int_equal(t.used, N / 2);
    for (int i = 1; i < N; i += 2)
        assert_non_null(aemp__table_get(&t, keys[i], strlen(keys[i])));
    for (int i = 0; i < N; i += 2)
        assert_null(aemp__table_get(&t, keys[i], strlen(keys[i])));
    /* churn: insert and delete many times; the table must not fill with
     * tombstones (it rehashes) */
    size_t cap = t.cap;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i += 2)
            aemp__table_put(&t, keys[i], strlen(keys[i]), (void *)1);
        for (int i = 0; i < N; i += 2)
            aemp__table_del(&t, keys[i], strlen(keys[i]));
    }
    assert_int_equal(t.used, N / 2);
    assert_true(t.cap <= cap * 2);
    aemp__table_free(&t);
    assert_null(t.slots);
}

static void iterate_and_delete(void **state)
{
    aemp_table_t t = AEMP_TABLE_INIT;
    for (int i = 0; i < 1000; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        aemp__table_put(&t, keys[i], strlen(keys[i]), keys[i]);
    }
    size_t pos = 0, seen = 0;
    const char *k;
    size_t len;
    void *v;
    while (aemp__table_next(&t, &pos, &k, &len, &v)) {
        assert_ptr_equal(k, v);
        assert_int_equal(len, strlen(k));
        aemp__table_del(&t, k, len);   /* allowed: the entry just returned */
        seen++;
    }
    assert_int_equal(seen, 1000);
    assert_int_equal(t.used, 0);
    aemp__table_free(&t);
    /* an empty table */
    pos = 0;
    assert_false(aemp__table_next(&t, &pos, NULL, NULL, NULL));
    assert_null(aemp__table_get(&t, "x", 1));
    assert_null(aemp__table_del(&t, "x", 1));
}

/* aemp__table_slot: one probe finds the existing entry or makes one whose
 * key and value the caller then points at its own storage. */
static void slot_finds_or_creates(void **state)
{
    aemp_table_t t = AEMP_TABLE_INIT;
    static char owned[100][16];
    int created;
    for (int i = 0; i < 100; i++) {
        char probe[16];
        snprintf(probe, sizeof probe, "s%d", i);
        aemp_table_slot_t *s = aemp__table_slot(&t, probe, strlen(probe), &created);
        assert_int_equal(created, 1);
        assert_null(s->value);
        memcpy(owned[i], probe, sizeof probe);
        s->key = owned[i];   /* the probe goes out of scope */
        s->value = owned[i];
    }
    assert_int_equal(t.used, 100);
    for (int i = 0; i < 100; i++) {
        char probe[16];
        snprintf(probe, sizeof probe, "s%d", i);
        aemp_table_slot_t *s = aemp__table_slot(&t, probe, strlen(probe), &created);
        assert_int_equal(created, 0);
        assert_ptr_equal(s->value, owned[i]);
        assert_ptr_equal(aemp__table_get(&t, probe, strlen(probe)), owned[i]);
    }
    assert_int_equal(t.used, 100);
    /* a tombstone is reused by the next new key */
    assert_non_null(aemp__table_del(&t, "s5", 2));
    assert_int_equal(t.dead, 1);
    aemp_table_slot_t *s = aemp__table_slot(&t, owned[5], 2, &created);
    assert_int_equal(created, 1);
    s->value = owned[5];
    assert_ptr_equal(aemp__table_get(&t, "s5", 2), owned[5]);
    assert_int_equal(t.dead, 0);
    aemp__table_free(&t);
}

/* With the key's hash given, a slot is the one aemp__table_slot finds or
 * makes, also across a resize in the middle of a batch whose first slots
 * were loaded before it (the loads only go to waste); loading the first
 * slots of an empty table or of no keys is safe. */
static void slot_with_hash(void **state)
{
    aemp_table_t t = AEMP_TABLE_INIT;
    static char owned[300][16];
    uint32_t h[300] = { 0 };
    int created;
    aemp__table_load_first(&t, h, 0);
    for (int i = 0; i < 300; i++) {
        snprintf(owned[i], sizeof owned[i], "w%d#p%d", i, 7 * i);
        h[i] = (uint32_t)aemp__hash(owned[i], strlen(owned[i]));
    }
    aemp__table_load_first(&t, h, 300);   /* no slots yet */
    for (int b = 0; b < 300; b += 64) {
        int n = 300 - b < 64 ? 300 - b : 64;
        aemp__table_load_first(&t, h + b, (size_t)n);
        for (int i = b; i < b + n; i++) {
            aemp_table_slot_t *s = aemp__table_slot_h(&t, owned[i], strlen(owned[i]), h[i], &created);
            assert_int_equal(created, 1);
            s->value = owned[i];
        }
    }
    assert_int_equal(t.used, 300);
    assert_true(t.cap >= 512);   /* it grew under the batches */
    for (int i = 0; i < 300; i++) {
        char probe[16];
        memcpy(probe, owned[i], sizeof probe);
        aemp_table_slot_t *s = aemp__table_slot(&t, probe, strlen(probe), &created);
        assert_int_equal(created, 0);
        assert_ptr_equal(s->value, owned[i]);
        assert_ptr_equal(aemp__table_slot_h(&t, probe, strlen(probe), h[i], &created), s);
        assert_int_equal(created, 0);
    }
    aemp__table_free(&t);
}

/* A key behind a tombstone in its probe run is found, not made again in
 * the tombstone's place; a new key takes the first tombstone on its way. */
static void slot_past_tombstones(void **state)
{
    aemp_table_t t = AEMP_TABLE_INIT;
    static char keys[64][8];
    int created;
    for (int i = 0; i < 40; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        aemp__table_put(&t, keys[i], strlen(keys[i]), keys[i]);
    }
    for (int i = 0; i < 40; i += 2)   /* tombstones all over the probe runs */
        assert_ptr_equal(aemp__table_del(&t, keys[i], strlen(keys[i])), keys[i]);
    size_t dead = t.dead;
    assert_int_equal(dead, 20);
    for (int i = 1; i < 40; i += 2) {
        aemp_table_slot_t *s = aemp__table_slot(&t, keys[i], strlen(keys[i]), &created);
        assert_int_equal(created, 0);
        assert_ptr_equal(s->value, keys[i]);
    }
    assert_int_equal(t.used, 20);
    assert_int_equal(t.dead, dead);
    for (int i = 0; i < 40; i += 2) {   /* back in: each takes a tombstone or a free slot */
        aemp_table_slot_t *s = aemp__table_slot(&t, keys[i], strlen(keys[i]), &created);
        assert_int_equal(created, 1);
        s->value = keys[i];
    }
    assert_int_equal(t.used, 40);
    assert_true(t.dead < dead);
    size_t pos = 0, n = 0;
    const char *k;
    size_t len;
    void *v;
    while (aemp__table_next(&t, &pos, &k, &len, &v)) {   /* every key once */
        assert_ptr_equal(v, aemp__table_get(&t, k, len));
        n++;
    }
    assert_int_equal(n, 40);
    aemp__table_free(&t);
}

/* aemp__table_reserve: the inserts it made room for do not move the
 * slot array; the table keeps its contents. */
static void reserve_makes_room(void **state)
{
    aemp_table_t t = AEMP_TABLE_INIT;
    static char keys[1000][8];
    aemp__table_put(&t, "first", 5, "v");
    aemp__table_reserve(&t, 1000);
    aemp_table_slot_t *slots = t.slots;
    size_t cap = t.cap;
    assert_true(cap * 3 > (1000 + 1) * 4);
    for (int i = 0; i < 1000; i++) {
        snprintf(keys[i], sizeof keys[i], "r%d", i);
        aemp__table_put(&t, keys[i], strlen(keys[i]), keys[i]);
    }
    assert_ptr_equal(t.slots, slots);
    assert_int_equal(t.cap, cap);
    assert_string_equal(aemp__table_get(&t, "first", 5), "v");
    assert_ptr_equal(aemp__table_get(&t, "r999", 4), keys[999]);
    aemp__table_reserve(&t, 10);   /* room enough already: nothing moves */
    assert_ptr_equal(t.slots, slots);
    aemp__table_free(&t);
    aemp__table_reserve(&t, 0);    /* an empty table gets its first array */
    assert_true(t.cap >= 4);
    aemp__table_free(&t);
}

static void hash_spreads_similar_keys(void **state)
{
    /* port names share long prefixes: their low bits must differ */
    int buckets[64] = { 0 };
    for (int i = 0; i < 6400; i++) {
        char k[32];
        snprintf(k, sizeof k, "anon/Xy12AbCdEf#Qz5cW8DZC%d", i);
        buckets[aemp__hash(k, strlen(k)) & 63]++;
    }
    for (int b = 0; b < 64; b++)
        assert_true(buckets[b] > 50 && buckets[b] < 150);
    assert_int_equal(aemp__hash("abc", 3), aemp__hash("abc", 3));
    /* keys of different lengths whose words differ just where the
     * lengths do must not meet (a length XORed into the seed made
     * "211114" and "11114" one hash) */
    assert_true(aemp__hash("211114", 6) != aemp__hash("11114", 5));
    assert_true(aemp__hash("12345678a", 9) != aemp__hash("2345678a", 8));
    assert_true(aemp__hash("abc", 3) != aemp__hash("abd", 3));
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The 64-bit hashes of 200,000 numbered keys of every length from 1 to 25
 * bytes (decimal numbers, alone and with a prefix and a suffix) are all
 * different, and their low 32 bits (what the tables keep) meet no more
 * than chance would have them (expected about 4.7 pairs). */
static void hash_keys_all_differ(void **state)
{
    (void)state;
    enum { NKEYS = 200000 };
    uint64_t *h = malloc(NKEYS * sizeof *h);
    uint32_t *lo = malloc(NKEYS * sizeof *lo);
    assert_non_null(h);
    assert_non_null(lo);
    for (int i = 0; i < NKEYS; i++) {
        char k[40];
        static const char *const fmt[] = { "%d", "w%d#Xy12Ab", "n%d/port/%d" };
        int len = snprintf(k, sizeof k, fmt[i % 3], i / 3, i % 7);
        h[i] = aemp__hash(k, (size_t)len);
    }
    qsort(h, NKEYS, sizeof *h, cmp_u64);
    for (int i = 1; i < NKEYS; i++)
        assert_true(h[i] != h[i - 1]);
    for (int i = 0; i < NKEYS; i++)
        lo[i] = (uint32_t)h[i];
    qsort(lo, NKEYS, sizeof *lo, cmp_u32);
    int meet = 0;
    for (int i = 1; i < NKEYS; i++)
        meet += lo[i] == lo[i - 1];
    assert_true(meet < 30);
    free(h);
    free(lo);
}

/* The hash of one key in a fresh process (this program run with --hash). */
static unsigned long long hash_in_child(void)
{
    char exe[4096], cmd[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = 0;
    snprintf(cmd, sizeof cmd, "'%s' --hash", exe);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    unsigned long long h = 0;
    assert_int_equal(fscanf(f, "%llx", &h), 1);
    assert_int_equal(pclose(f), 0);
    return h;
}

/* Each process seeds the hash at random: a peer cannot compute keys that
 * collide in another node's tables.  Two fresh processes and this one
 * hash the same key three ways (all equal: a chance of 2^-128). */
static void hash_seeded_per_process(void **state)
{
    (void)state;
    unsigned long long mine = aemp__hash("w1#port", 7), a = hash_in_child(), b = hash_in_child();
    assert_true(mine != a || a != b);
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--hash")) {
        printf("%llx\n", (unsigned long long)aemp__hash("w1#port", 7));
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_get_replace_delete),
        cmocka_unit_test(iterate_and_delete),
        cmocka_unit_test(slot_finds_or_creates),
        cmocka_unit_test(slot_with_hash),
        cmocka_unit_test(slot_past_tombstones),
        cmocka_unit_test(reserve_makes_room),
        cmocka_unit_test(hash_spreads_similar_keys),
        cmocka_unit_test(hash_keys_all_differ),
        cmocka_unit_test(hash_seeded_per_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
