/* Tests for the compact index of entries (kv_index.h): insert, look-up,
 * take with deleted slots, keys whose hashes collide, growth and reserve,
 * iteration with taking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_index.h"

#define N 20000

static aemp_kv_t *entry[N];

static aemp_kv_t *new_entry(const char *key)
{
    size_t len = strlen(key);
    aemp_kv_t *e = malloc(offsetof(aemp_kv_t, key) + len + 1);
    assert_non_null(e);
    return aemp__kv_init(e, key, len);
}

static uint32_t hash_of(const char *key)
{
    return aemp__kv_index_hash(aemp__hash(key, strlen(key)));
}

/* Insert the entry for key at hash h: 1 if it was new. */
static int insert(aemp_kv_index_t *ix, aemp_kv_t *e, uint32_t h)
{
    int created;
    aemp_kv_t **place = aemp__kv_index_place_h(ix, e->key, e->len, h, &created);
    if (created) {
        assert_null(*place);
        *place = e;
    } else {
        assert_ptr_equal(*place, e);
    }
    return created;
}

static void insert_find_take(void **state)
{
    aemp_kv_index_t ix = AEMP_KV_INDEX_INIT;
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "w%d#port%d", i, i);
        entry[i] = new_entry(key);
        assert_true(insert(&ix, entry[i], hash_of(key)));
    }
    assert_int_equal(ix.used, N);
    assert_true(ix.used * 4 < ix.cap * 3);   /* at most 3/4 full */
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "w%d#port%d", i, i);
        assert_ptr_equal(aemp__kv_index_get(&ix, key, strlen(key)), entry[i]);
        assert_false(insert(&ix, entry[i], hash_of(key)));   /* there already */
    }
    assert_int_equal(ix.used, N);
    /* compared by length and bytes */
    assert_null(aemp__kv_index_get(&ix, "w1#port", 7));
    assert_null(aemp__kv_index_get(&ix, "w1#port12", 9));
    /* take every other one; the rest stay reachable past the deleted slots */
    for (int i = 0; i < N; i += 2)
        assert_ptr_equal(aemp__kv_index_take(&ix, entry[i]->key, entry[i]->len), entry[i]);
    assert_null(aemp__kv_index_take(&ix, entry[0]->key, entry[0]->len));
    assert_int_equal(ix.used, N / 2);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(aemp__kv_index_get(&ix, entry[i]->key, entry[i]->len), i % 2 ? entry[i] : NULL);
    /* churn: the deleted slots do not fill the index (it rehashes) */
    size_t cap = ix.cap;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i += 2)
            insert(&ix, entry[i], hash_of(entry[i]->key));
        for (int i = 0; i < N; i += 2)
            aemp__kv_index_take(&ix, entry[i]->key, entry[i]->len);
    }
    assert_int_equal(ix.used, N / 2);
    assert_true(ix.cap <= cap * 2);
    for (int i = 1; i < N; i += 2)
        assert_ptr_equal(aemp__kv_index_get(&ix, entry[i]->key, entry[i]->len), entry[i]);
    aemp__kv_index_free(&ix);
    assert_null(ix.hash);
    assert_int_equal(ix.used, 0);
    for (int i = 0; i < N; i++)
        free(entry[i]);
}

/* Keys given the same hash -- and the two hashes that would mean an empty
 * or a deleted slot, which the index never keeps -- are told apart by
 * their bytes. */
static void colliding_hashes(void **state)
{
    aemp_kv_index_t ix = AEMP_KV_INDEX_INIT;
    assert_int_equal(aemp__kv_index_hash(0), 2);
    assert_int_equal(aemp__kv_index_hash(1), 3);
    assert_int_equal(aemp__kv_index_hash(0x100000000ULL | 7), 7);
    aemp_kv_t *e[64];
    char key[16];
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof key, "k%d", i);
        e[i] = new_entry(key);
        assert_true(insert(&ix, e[i], aemp__kv_index_hash(i % 2)));
    }
    for (int i = 0; i < 64; i++)
        assert_ptr_equal(aemp__kv_index_get_h(&ix, e[i]->key, e[i]->len, aemp__kv_index_hash(i % 2)), e[i]);
    assert_null(aemp__kv_index_get_h(&ix, "k64", 3, 2));
    assert_null(aemp__kv_index_get_h(&ix, "k1", 2, 2));   /* its bytes, another hash */
    aemp__kv_index_free(&ix);
    for (int i = 0; i < 64; i++)
        free(e[i]);
}

/* A reserve grows the index once, for all the entries to come; then
 * inserting them does not move it. */
static void reserve_grows_once(void **state)
{
    aemp_kv_index_t ix = AEMP_KV_INDEX_INIT;
    aemp__kv_index_reserve(&ix, 1000);
    uint32_t *arrays = ix.hash;
    size_t cap = ix.cap;
    assert_true(cap >= 1334 && cap <= 4096);
    char key[32];
    aemp_kv_t *e[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "key%d", i);
        e[i] = new_entry(key);
        insert(&ix, e[i], hash_of(key));
    }
    assert_ptr_equal(ix.hash, arrays);
    assert_int_equal(ix.cap, cap);
    aemp__kv_index_reserve(&ix, 0);   /* room enough: nothing happens */
    assert_ptr_equal(ix.hash, arrays);
    aemp__kv_index_free(&ix);
    for (int i = 0; i < 1000; i++)
        free(e[i]);
}

/* Iteration returns every entry once, as it was put in; the entry just
 * returned may be taken. */
static void iterate_and_take(void **state)
{
    aemp_kv_index_t ix = AEMP_KV_INDEX_INIT;
    size_t pos = 0;
    aemp_kv_t *e;
    assert_false(aemp__kv_index_next(&ix, &pos, &e));   /* empty, never allocated */
    aemp_kv_t *all[100];
    char key[16];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "m%d", i);
        all[i] = new_entry(key);
        if (i % 3 == 0)
            all[i]->val = aemp_valf("i", i);
        insert(&ix, all[i], hash_of(key));
    }
    int seen[100] = { 0 }, n = 0;
    for (pos = 0; aemp__kv_index_next(&ix, &pos, &e); n++) {
        int k = atoi(e->key + 1);
        seen[k]++;
        assert_ptr_equal(e, all[k]);
        int64_t got = -1;
        if (k % 3 == 0)
            assert_true(aemp_val_int(aemp_msg_root(e->val), &got) == 0 && got == k);
        else
            assert_null(e->val);
        if (k % 2)
            assert_ptr_equal(aemp__kv_index_take(&ix, e->key, e->len), e);
    }
    assert_int_equal(n, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(ix.used, 50);
    aemp__kv_index_free(&ix);
    for (int i = 0; i < 100; i++)
        aemp__kv_free(all[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(insert_find_take),
        cmocka_unit_test(colliding_hashes),
        cmocka_unit_test(reserve_grows_once),
        cmocka_unit_test(iterate_and_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
