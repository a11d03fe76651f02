/* tests/test_db_h5store.c - the HDF5 feature store: bit-identical round trip (NaN payloads,
 * NULL names, ragged competitors), atomic replacement, and rejection of bad files. */
#include "test_common.h"

#include <hdf5.h>
#include <unistd.h>

#include "db_h5store.h"
#include "eng_util.h"

static float nan_payload(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static db_history *make(int P, int T) {
    db_history *h = NULL;
    assert_int_equal(db_history_alloc(&h, P, T, 7196, 7), 0);
    eng_rng rng;
    eng_rng_seed(&rng, 11);
    h->n_competitors = 3;
    h->competitor_names = calloc(3, sizeof(char *));
    h->competitor_names[0] = strdup("Rival \"A\"");
    h->competitor_names[1] = strdup("Caf\xC3\xA9 B");
    h->competitor_names[2] = strdup("c;\\t\n");
    size_t cells = (size_t)P * (size_t)T;
    h->comp_id = malloc(cells * 3 * sizeof(int32_t) + 4);
    h->comp_price = malloc(cells * 3 * sizeof(float) + 4);
    int64_t k = 0;
    for (int p = 0; p < P; p++) {
        char id[64];
        snprintf(id, sizeof id, "p%d 'x'\t%d", p, p * 7);
        h->product_id[p] = strdup(id);
        h->name[p] = p % 3 == 1 ? NULL : strdup(p % 3 ? "" : "named");
        h->base_price[p] = 1.0 + eng_rng_uniform(&rng);
        h->unit_cost[p] = p % 2 ? NAN : 0.5;
    }
    for (size_t c = 0; c < cells; c++) {
        h->comp_off[c] = k;
        if (eng_rng_uniform(&rng) < 0.2) continue;
        h->present[c] = 1;
        h->price[c] = (float)(1 + eng_rng_uniform(&rng));
        h->units[c] = (float)eng_rng_below(&rng, 50);
        h->revenue[c] = h->price[c] * h->units[c];
        h->traffic[c] = c % 5 ? nan_payload(0x7fc00000u | (uint32_t)(c & 0xffff)) : 300.0f;
        h->promo[c] = (uint8_t)(c % 4 == 0);
        int n = (int)eng_rng_below(&rng, 4);
        for (int j = 0; j < n; j++) {
            h->comp_id[k] = j;
            h->comp_price[k++] = (float)(0.9 + eng_rng_uniform(&rng));
        }
    }
    h->comp_off[cells] = k;
    return h;
}

static void path_for(char *buf, size_t n, const char *tag) {
    snprintf(buf, n, "%s/h5_%s_%d.h5", test_tmpdir(), tag, (int)getpid());
}

static void assert_same(const db_history *a, const db_history *b) {
    assert_int_equal(a->n_products, b->n_products);
    assert_int_equal(a->n_periods, b->n_periods);
    assert_int_equal(a->day0, b->day0);
    assert_int_equal(a->period_days, b->period_days);
    assert_int_equal(a->n_competitors, b->n_competitors);
    size_t P = (size_t)a->n_products, cells = P * (size_t)a->n_periods;
    for (size_t p = 0; p < P; p++) {
        assert_string_equal(a->product_id[p], b->product_id[p]);
        if (!a->name[p]) assert_null(b->name[p]);
        else assert_string_equal(a->name[p], b->name[p]);
    }
    assert_memory_equal(a->base_price, b->base_price, P * sizeof(double));
    assert_memory_equal(a->unit_cost, b->unit_cost, P * sizeof(double));
    assert_memory_equal(a->min_price, b->min_price, P * sizeof(double));
    assert_memory_equal(a->max_change_pct, b->max_change_pct, P * sizeof(double));
    if (cells) {
        assert_memory_equal(a->price, b->price, cells * sizeof(float));
        assert_memory_equal(a->units, b->units, cells * sizeof(float));
        assert_memory_equal(a->revenue, b->revenue, cells * sizeof(float));
        assert_memory_equal(a->traffic, b->traffic, cells * sizeof(float));
        assert_memory_equal(a->promo, b->promo, cells);
        assert_memory_equal(a->present, b->present, cells);
    }
    assert_memory_equal(a->comp_off, b->comp_off, (cells + 1) * sizeof(int64_t));
    size_t n = (size_t)a->comp_off[cells];
    if (n) {
        assert_memory_equal(a->comp_id, b->comp_id, n * sizeof(int32_t));
        assert_memory_equal(a->comp_price, b->comp_price, n * sizeof(float));
    }
    for (int c = 0; c < a->n_competitors; c++) assert_string_equal(a->competitor_names[c], b->competitor_names[c]);
}

static void test_roundtrip(void **state) {
    (void)state;
    char path[512];
    path_for(path, sizeof path, "rt");
    db_history *h = make(37, 61), *g = NULL;
    assert_int_equal(db_history_save_h5_source(h, path, "test"), 0);
    assert_int_equal(db_history_load_h5(&g, path), 0);
    assert_same(h, g);
    /* NaNs with payloads were in the input and came back bit for bit (assert_same) */
    int payloads = 0;
    for (int c = 0; c < 37 * 61; c++) {
        uint32_t bits;
        memcpy(&bits, &g->traffic[c], 4);
        payloads += g->present[c] && bits != 0x7fc00000u && isnan(g->traffic[c]);
    }
    assert_true(payloads > 100);
    db_h5_info in;
    assert_int_equal(db_h5store_info(path, &in), 0);
    assert_int_equal(in.n_products, 37);
    assert_int_equal(in.n_periods, 61);
    assert_int_equal(in.n_comp_prices, h->comp_off[37 * 61]);
    assert_string_equal(in.source, "test");
    /* saving again over it replaces it atomically and leaves no temp file */
    h->price[0] = 42.0f;
    assert_int_equal(db_history_save_h5(h, path), 0);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);
    db_history_free(g);
    assert_int_equal(db_history_load_h5(&g, path), 0);
    assert_true(g->price[0] == 42.0f);
    db_history_free(g);
    /* a save that cannot happen leaves the old file alone */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.h5", test_tmpdir());
    assert_int_equal(db_history_save_h5(h, bad), ENG_EIO);
    db_history_free(h);
    /* empty history (no products) round-trips too */
    h = make(0, 5);
    assert_int_equal(db_history_save_h5(h, path), 0);
    assert_int_equal(db_history_load_h5(&g, path), 0);
    assert_same(h, g);
    db_history_free(g);
    db_history_free(h);
    unlink(path);
}

static void copy_prefix(const char *src, const char *dst, long n) {
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    assert_non_null(a);
    assert_non_null(b);
    for (long i = 0; i < n; i++) {
        int c = fgetc(a);
        if (c == EOF) break;
        fputc(c, b);
    }
    fclose(a);
    fclose(b);
}

static void test_bad_files(void **state) {
    (void)state;
    char good[512], bad[512];
    path_for(good, sizeof good, "good");
    path_for(bad, sizeof bad, "bad");
    db_history *h = make(20, 30), *g = (db_history *)1;
    assert_int_equal(db_history_save_h5(h, good), 0);
    db_history_free(h);

    assert_int_equal(db_history_load_h5(&g, "/nonexistent/file.h5"), ENG_ENOTFOUND);
    assert_null(g);

    FILE *f = fopen(bad, "w");
    fputs("product_id,price\nA,1\n", f);
    fclose(f);
    assert_int_equal(db_history_load_h5(&g, bad), ENG_EFORMAT);
    assert_non_null(strstr(eng_err_msg(), "not an HDF5 file"));

    FILE *gf = fopen(good, "rb");
    fseek(gf, 0, SEEK_END);
    long size = ftell(gf);
    fclose(gf);
    long cuts[] = {0, 100, size / 3, size / 2, size - 100};
    for (int i = 0; i < 5; i++) {
        copy_prefix(good, bad, cuts[i]);
        assert_int_equal(db_history_load_h5(&g, bad), ENG_EFORMAT);
        assert_null(g);
    }

    /* another format version */
    copy_prefix(good, bad, size);
    hid_t fid = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(fid >= 0);
    hid_t a = H5Aopen(fid, "format_version", H5P_DEFAULT);
    int32_t v = 99;
    H5Awrite(a, H5T_NATIVE_INT32, &v);
    H5Aclose(a);
    H5Fclose(fid);
    assert_int_equal(db_history_load_h5(&g, bad), ENG_EFORMAT);
    assert_non_null(strstr(eng_err_msg(), "version 99"));

    /* inconsistent competitor offsets */
    copy_prefix(good, bad, size);
    fid = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = H5Dopen2(fid, "competitors/offset", H5P_DEFAULT);
    int64_t *off = malloc((20 * 30 + 1) * sizeof(int64_t));
    H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, off);
    off[5] = off[20 * 30] + 10;
    H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, off);
    free(off);
    H5Dclose(ds);
    H5Fclose(fid);
    assert_int_equal(db_history_load_h5(&g, bad), ENG_EFORMAT);
    assert_non_null(strstr(eng_err_msg(), "offsets"));

    /* a dataset missing */
    copy_prefix(good, bad, size);
    fid = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(fid, "sales/units", H5P_DEFAULT);
    H5Fclose(fid);
    assert_int_equal(db_history_load_h5(&g, bad), ENG_EFORMAT);
    assert_non_null(strstr(eng_err_msg(), "sales/units"));
    unlink(good);
    unlink(bad);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_bad_files)};
    return cmocka_run_group_tests_name("db_h5store", tests, NULL, NULL);
}
