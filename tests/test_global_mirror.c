/* A watcher's mirror of a family under changes that arrive together:
 * g_chg2 and g_chg1 messages from the master, several before a report
 * runs, must give each db_mon_changes call exactly the keys added,
 * changed and deleted since the previous call (a key set and deleted in
 * between is not reported; deleted and set again is a change), and the
 * full monitors the family as it is.  This node is a global node, so it
 * is its own master: the test hands the master's messages to its kernel
 * as the node's own requests. */
#include "testutil.h"

#include "global.h"
#include "kv_pool.h"
#include "node.h"

#define FAMILY "tf"

static char calls[8][512];   /* each db_mon_changes call: its keys, sorted */
static int ncalls;
static aemp_msg_t *family_now;   /* the full monitor's last family */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "+a ~b -c": the keys of a call, each list sorted, in that order. */
static void on_changes(aemp_msg_t *family, aemp_msg_t *added, aemp_msg_t *changed, aemp_msg_t *deleted,
                       void *arg)
{
    assert_null(family);
    aemp_msg_t *lists[3] = { added, changed, deleted };
    char *out = ncalls < 8 ? calls[ncalls] : NULL;
    ncalls++;
    if (!out)
        return;
    out[0] = 0;
    for (int l = 0; l < 3; l++) {
        size_t n = aemp_msg_len(lists[l]);
        char *keys[64];
        assert_true(n <= 64);
        for (size_t i = 0; i < n; i++)
            keys[i] = (char *)aemp_msg_str(lists[l], i, NULL);
        qsort(keys, n, sizeof keys[0], cmp_str);
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(out);
            snprintf(out + len, 512 - len, "%s%c%s", len ? " " : "", "+~-"[l], keys[i]);
        }
    }
}

static void on_family(aemp_msg_t *family, aemp_msg_t *added, aemp_msg_t *changed, aemp_msg_t *deleted, void *arg)
{
    aemp_msg_unref(family_now);
    family_now = aemp_msg_ref(family);
}

/* The master's message, as the node's own request. */
static void from_master(aemp_msg_t *msg)
{
    assert_non_null(msg);
    aemp__kernel_request(NULL, msg);
}

/* Run the loop until a report came (bounded), and return its keys. */
static const char *next_call(void)
{
    int want = ncalls + 1;
    double end = ev_time() + 5;
    while (ncalls < want && ev_time() < end)
        tu_run_for(0.01);
    assert_int_equal(ncalls, want);
    return calls[(want - 1) % 8];
}

/* The full monitor's family as text, keys sorted: "a=1 b=2". */
static const char *family_text(void)
{
    static char out[512];
    out[0] = 0;
    const aemp_val_t *m = aemp_msg_root(family_now);
    size_t n = aemp_val_len(m);
    char *pairs[64];
    static char buf[64][32];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        int64_t v = -1;
        aemp_val_int(aemp_val_value(m, i), &v);
        snprintf(buf[i], sizeof buf[i], "%s=%lld", aemp_val_str(aemp_val_key(m, i), NULL), (long long)v);
        pairs[i] = buf[i];
    }
    qsort(pairs, n, sizeof pairs[0], cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, sizeof out - len, "%s%s", len ? " " : "", pairs[i]);
    }
    return out;
}

static int group_setup(void **state)
{
    char err[256];
    if (aemp_configuref(err, sizeof err, "{s:s, s:s, s:b, s:[s], s:[]}", "nodeid", "mirror-test", "secret",
                        "mirror-secret", "norc", 1, "binds", "127.0.0.1:0", "seeds") != 0) {
        fprintf(stderr, "configure: %s\n", err);
        return -1;
    }
    aemp__global_become();
    return aemp_is_global() ? 0 : -1;
}

static int group_teardown(void **state)
{
    aemp_msg_unref(family_now);
    aemp_shutdown();
    return 0;
}

static void changes_that_arrive_together(void **state)
{
    aemp_handle_t hc, hf;
    assert_int_equal(aemp_db_mon_changes(FAMILY, on_changes, NULL, &hc), 0);
    assert_int_equal(aemp_db_mon(FAMILY, on_family, NULL, &hf), 0);
    assert_string_equal(next_call(), "");   /* the first call: the (empty) family */

    from_master(aemp_msgf("s s {s:i s:i} []", "g_chg2", FAMILY, "a", 1, "b", 2));
    assert_string_equal(next_call(), "+a +b");
    assert_string_equal(family_text(), "a=1 b=2");

    /* one pass: a changed then deleted, b deleted then set again, c
     * added, d added and deleted, e deleted though never there */
    from_master(aemp_msgf("s s {s:i s:i s:i} []", "g_chg2", FAMILY, "a", 3, "c", 1, "d", 4));
    from_master(aemp_msgf("s s {} [s s s]", "g_chg2", FAMILY, "a", "b", "e"));
    from_master(aemp_msgf("s s {s:i} [s]", "g_chg2", FAMILY, "b", 5, "d"));
    assert_string_equal(next_call(), "+c ~b -a");
    assert_string_equal(family_text(), "b=5 c=1");

    /* a value that is already known is no change; a key twice in one
     * set is one addition */
    from_master(aemp_msgf("s s {s:i s:i s:i} []", "g_chg2", FAMILY, "b", 5, "f", 1, "f", 2));
    assert_string_equal(next_call(), "+f");
    assert_string_equal(family_text(), "b=5 c=1 f=2");

    /* a snapshot replaces the mirror: keys only in the old one are
     * deleted, the others changed or added; a change just before it and
     * a deleted key set again by it count once */
    from_master(aemp_msgf("s s {s:i} [s]", "g_chg2", FAMILY, "g", 7, "c"));
    from_master(aemp_msgf("s s {s:i s:i s:i}", "g_chg1", FAMILY, "c", 1, "f", 2, "h", 8));
    assert_string_equal(next_call(), "+h ~c ~f -b");
    assert_string_equal(family_text(), "c=1 f=2 h=8");

    /* after it, changes are counted from the snapshot */
    from_master(aemp_msgf("s s {s:i} [s s]", "g_chg2", FAMILY, "h", 9, "c", "f"));
    from_master(aemp_msgf("s s {s:i} []", "g_chg2", FAMILY, "f", 3));
    assert_string_equal(next_call(), "~f ~h -c");
    assert_string_equal(family_text(), "f=3 h=9");

    /* set and deleted between two reports: nothing to report; the next
     * report has only the key that stayed */
    from_master(aemp_msgf("s s {s:i} []", "g_chg2", FAMILY, "x", 1));
    from_master(aemp_msgf("s s {s:i} [s]", "g_chg2", FAMILY, "y", 1, "x"));
    assert_string_equal(next_call(), "+y");
    assert_string_equal(family_text(), "f=3 h=9 y=1");

    assert_int_equal(aemp_db_mon_cancel(hc), 0);
    assert_int_equal(aemp_db_mon_cancel(hf), 0);
}

/* The index hash of key[0..len). */
static uint32_t index_hash(const char *key, size_t len)
{
    return aemp__kv_index_hash(aemp__hash(key, len));
}

/* The pool of a mirror's entries: an entry released is the next one of
 * its size (same address), other sizes and keys beyond the pool's largest
 * entry come from elsewhere, every entry is 8-aligned and holds its key,
 * and clearing a table releases all its entries (under ASan a released
 * entry is poisoned: a use of one after the release is reported). */
static void pool_reuses_released_entries(void **state)
{
    aemp_kv_pool_t pool = AEMP_KV_POOL_INIT;
    aemp_kv_index_t t = AEMP_KV_INDEX_INIT;
    char key[300];
    int created;
    aemp_kv_t *e[600];
    for (int i = 0; i < 600; i++) {   /* several chunks' worth */
        int len = snprintf(key, sizeof key, "w%d#port%d", i, i);
        e[i] = aemp__kv_pool_put_new_h(&pool, &t, key, (size_t)len, index_hash(key, (size_t)len), &created);
        assert_true(created);
        assert_int_equal((uintptr_t)e[i] & 7, 0);
        assert_string_equal(e[i]->key, key);
        assert_null(e[i]->val);
        assert_null(e[i]->sub);
    }
    assert_ptr_equal(aemp__kv_pool_put_new_h(&pool, &t, "w7#port7", 8, index_hash("w7#port7", 8), &created), e[7]);
    assert_false(created);
    /* released, then the next of the same size takes its place */
    aemp_kv_t *gone = aemp__kv_index_take(&t, "w5#port5", 8);
    assert_ptr_equal(gone, e[5]);
    gone->val = aemp_msgf("i", 5);   /* the release drops the value */
    aemp__kv_pool_release(&pool, gone);
    aemp_kv_t *again = aemp__kv_pool_put_new_h(&pool, &t, "w6#pxrt6", 8, index_hash("w6#pxrt6", 8), &created);
    assert_true(created);
    assert_ptr_equal(again, e[5]);
    assert_string_equal(again->key, "w6#pxrt6");
    assert_null(again->val);
    /* a key of another length does not */
    aemp_kv_t *longer = aemp__kv_pool_put_new_h(&pool, &t, "w6#port6-and-more", 17,
                                                 index_hash("w6#port6-and-more", 17), &created);
    assert_true(longer != e[5]);
    /* a key beyond the pool's largest entry, and an entry that grew a table */
    memset(key, 'k', 200);
    aemp_kv_t *big = aemp__kv_pool_put_new_h(&pool, &t, key, 200, index_hash(key, 200), &created);
    assert_memory_equal(big->key, key, 200);
    assert_int_equal(big->key[200], 0);
    aemp__kv_set(aemp__kv_sub(e[9]), "inner", 5, NULL);
    aemp__kv_pool_clear(&pool, &t);
    assert_int_equal(t.used, 0);
    aemp__kv_pool_free(&pool);
    assert_null(pool.chunks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(changes_that_arrive_together),
        cmocka_unit_test(pool_reuses_released_entries),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
