/* db_h5store.c - see db_h5store.h. */
#include "db_h5store.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eng_h5.h"
#include "eng_util.h"

#define H5_CHUNK_ELEMS 65536


static hid_t h5_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0) {
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
    }
    return t;
}

/* ---- writing ---- */
static int h5_write(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank, const hsize_t *dims,
                    const void *data, const char *path) {
    int st = ENG_OK;
    hid_t space = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), ds = -1;
    if (space < 0 || dcpl < 0) { st = eng_err_set(ENG_EIO, "%s: creating dataspace for %s failed", path, name); goto cleanup; }
    hsize_t total = 1;
    for (int i = 0; i < rank; i++) total *= dims[i];
    if (total > 0 && H5Tis_variable_str(ftype) <= 0) {
        hsize_t chunk[2];
        if (rank == 1) {
            chunk[0] = dims[0] < H5_CHUNK_ELEMS ? dims[0] : H5_CHUNK_ELEMS;
        } else {
            chunk[1] = dims[1] < H5_CHUNK_ELEMS ? dims[1] : H5_CHUNK_ELEMS;
            hsize_t rows = H5_CHUNK_ELEMS / chunk[1];
            chunk[0] = rows < 1 ? 1 : rows > dims[0] ? dims[0] : rows;
        }
        if (H5Pset_chunk(dcpl, rank, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, 4) < 0) {
            st = eng_err_set(ENG_EIO, "%s: setting chunking/gzip for %s failed", path, name);
            goto cleanup;
        }
    }
    ds = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (ds < 0) { st = eng_err_set(ENG_EIO, "%s: creating dataset %s failed", path, name); goto cleanup; }
    if (total > 0 && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        st = eng_err_set(ENG_EIO, "%s: writing dataset %s failed (disk full?)", path, name);
cleanup:
    if (ds >= 0) H5Dclose(ds);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return st;
}

static int h5_attr_int(hid_t loc, const char *name, int32_t v) {
    hid_t sp = H5Screate(H5S_SCALAR), a = -1;
    int st = ENG_OK;
    if (sp < 0 || (a = H5Acreate2(loc, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, H5T_NATIVE_INT32, &v) < 0)
        st = eng_err_set(ENG_EIO, "HDF5: writing attribute %s failed", name);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

static int h5_attr_str(hid_t loc, const char *name, const char *v) {
    hid_t sp = H5Screate(H5S_SCALAR), t = h5_str_type(), a = -1;
    int st = ENG_OK;
    if (sp < 0 || t < 0 || (a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 || H5Awrite(a, t, &v) < 0)
        st = eng_err_set(ENG_EIO, "HDF5: writing attribute %s failed", name);
    if (a >= 0) H5Aclose(a);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

static int h5_save_body(hid_t f, const db_history *h, const char *path, const char *source) {
    int st = ENG_OK;
    hid_t gp = -1, gs = -1, gc = -1, st_t = h5_str_type();
    size_t P = (size_t)h->n_products, cells = P * (size_t)h->n_periods;
    int64_t ncomp = h->comp_off[cells];
    const char **names = eng_calloc(P + 1, sizeof(char *));
    uint8_t *name_null = eng_calloc(P + 1, 1);
    if (!names || !name_null || st_t < 0) { st = st_t < 0 ? eng_err_set(ENG_EIO, "HDF5: string type") : ENG_ENOMEM; goto cleanup; }
    for (size_t p = 0; p < P; p++) {
        names[p] = h->name[p] ? h->name[p] : "";
        name_null[p] = !h->name[p];
    }
    if ((st = h5_attr_int(f, "format_version", DB_H5_FORMAT_VERSION)) || (st = h5_attr_int(f, "day0", h->day0)) ||
        (st = h5_attr_int(f, "period_days", h->period_days)) || (st = h5_attr_int(f, "n_products", h->n_products)) ||
        (st = h5_attr_int(f, "n_periods", h->n_periods)) || (st = h5_attr_int(f, "n_competitors", h->n_competitors)) ||
        (st = h5_attr_str(f, "source", source ? source : "rlprice")) || (st = h5_attr_str(f, "writer", "rlprice db_h5store")))
        goto cleanup;
    gp = H5Gcreate2(f, "products", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    gs = H5Gcreate2(f, "sales", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    gc = H5Gcreate2(f, "competitors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (gp < 0 || gs < 0 || gc < 0) { st = eng_err_set(ENG_EIO, "%s: creating groups failed", path); goto cleanup; }
    hsize_t dp[1] = {P}, d2[2] = {P, (hsize_t)h->n_periods}, doff[1] = {cells + 1}, dn[1] = {(hsize_t)ncomp},
            dc[1] = {(hsize_t)h->n_competitors};
    if ((st = h5_write(gp, "product_id", st_t, st_t, 1, dp, h->product_id, path)) ||
        (st = h5_write(gp, "name", st_t, st_t, 1, dp, names, path)) ||
        (st = h5_write(gp, "name_is_null", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, dp, name_null, path)) ||
        (st = h5_write(gp, "base_price", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dp, h->base_price, path)) ||
        (st = h5_write(gp, "unit_cost", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dp, h->unit_cost, path)) ||
        (st = h5_write(gp, "min_price", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dp, h->min_price, path)) ||
        (st = h5_write(gp, "max_price", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dp, h->max_price, path)) ||
        (st = h5_write(gp, "max_change_pct", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dp, h->max_change_pct, path)) ||
        (st = h5_write(gs, "price", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d2, h->price, path)) ||
        (st = h5_write(gs, "units", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d2, h->units, path)) ||
        (st = h5_write(gs, "revenue", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d2, h->revenue, path)) ||
        (st = h5_write(gs, "traffic", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d2, h->traffic, path)) ||
        (st = h5_write(gs, "promo", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, d2, h->promo, path)) ||
        (st = h5_write(gs, "present", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, d2, h->present, path)) ||
        (st = h5_write(gc, "names", st_t, st_t, 1, dc, h->competitor_names, path)) ||
        (st = h5_write(gc, "offset", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, doff, h->comp_off, path)) ||
        (st = h5_write(gc, "id", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dn, h->comp_id, path)) ||
        (st = h5_write(gc, "price", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, dn, h->comp_price, path)))
        goto cleanup;
cleanup:
    if (gp >= 0) H5Gclose(gp);
    if (gs >= 0) H5Gclose(gs);
    if (gc >= 0) H5Gclose(gc);
    if (st_t >= 0) H5Tclose(st_t);
    free(names);
    free(name_null);
    return st;
}

int db_history_save_h5_source(const db_history *h, const char *path, const char *source) {
    if (!h || !path) return eng_err_set(ENG_EINVAL, "db_history_save_h5: NULL history or path");
    size_t cells = (size_t)h->n_products * (size_t)h->n_periods;
    if (h->comp_off[cells] > 0 && (!h->comp_id || !h->comp_price))
        return eng_err_set(ENG_EINVAL, "db_history_save_h5: competitor arrays missing");
    for (int p = 0; p < h->n_products; p++)
        if (!h->product_id[p]) return eng_err_set(ENG_EINVAL, "db_history_save_h5: product %d has no id", p);
    for (int c = 0; c < h->n_competitors; c++)
        if (!h->competitor_names[c]) return eng_err_set(ENG_EINVAL, "db_history_save_h5: competitor %d has no name", c);
    size_t n = strlen(path) + 32;
    char *tmp = eng_malloc(n);
    if (!tmp) return ENG_ENOMEM;
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    eng_h5_quiet q;
    eng_h5_quiet_begin(&q);
    int st = ENG_OK;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        st = eng_err_set(ENG_EIO, "cannot create '%s' (does the folder exist and is it writable?)", tmp);
        goto cleanup;
    }
    st = h5_save_body(f, h, path, source);
    if (H5Fclose(f) < 0 && !st) st = eng_err_set(ENG_EIO, "closing '%s' failed (disk full?)", tmp);
    if (st) {
        unlink(tmp);
        goto cleanup;
    }
    st = eng_atomic_commit(tmp, path);
cleanup:
    eng_h5_quiet_end(&q);
    free(tmp);
    return st;
}

int db_history_save_h5(const db_history *h, const char *path) { return db_history_save_h5_source(h, path, NULL); }

/* ---- reading ---- */
static int h5_read_attr_int(hid_t f, const char *name, int32_t *v, const char *path) {
    if (H5Aexists(f, name) <= 0) return eng_err_set(ENG_EFORMAT, "%s: attribute '%s' missing (not an rlprice feature store?)", path, name);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    int st = ENG_OK;
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    if (a < 0 || sp < 0 || H5Sget_simple_extent_npoints(sp) != 1 || H5Aread(a, H5T_NATIVE_INT32, v) < 0)
        st = eng_err_set(ENG_EFORMAT, "%s: attribute '%s' unreadable", path, name);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    return st;
}

static void h5_read_attr_str(hid_t f, const char *name, char *out, size_t n) {
    out[0] = '\0';
    if (H5Aexists(f, name) <= 0) return;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT), t = h5_str_type();
    char *v = NULL;
    if (a >= 0 && t >= 0 && H5Aread(a, t, &v) >= 0 && v) {
        snprintf(out, n, "%s", v);
        H5free_memory(v);
    }
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
}

/* Read dataset `name` with exactly the expected shape into buf (mtype). */
static int h5_read(hid_t f, const char *name, hid_t mtype, int rank, const hsize_t *dims, void *buf, const char *path) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return eng_err_set(ENG_EFORMAT, "%s: dataset /%s missing", path, name);
    int st = ENG_OK;
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT), sp = ds >= 0 ? H5Dget_space(ds) : -1;
    hsize_t got[2] = {0, 0};
    if (ds < 0 || sp < 0) { st = eng_err_set(ENG_EFORMAT, "%s: dataset /%s unreadable", path, name); goto cleanup; }
    if (H5Sget_simple_extent_ndims(sp) != rank || H5Sget_simple_extent_dims(sp, got, NULL) != rank ||
        got[0] != dims[0] || (rank == 2 && got[1] != dims[1])) {
        st = eng_err_set(ENG_EFORMAT, "%s: dataset /%s has shape %llu x %llu, expected %llu x %llu", path, name,
                         (unsigned long long)got[0], (unsigned long long)got[1], (unsigned long long)dims[0],
                         (unsigned long long)(rank == 2 ? dims[1] : 0));
        goto cleanup;
    }
    hsize_t total = dims[0] * (rank == 2 ? dims[1] : 1);
    if (total > 0 && H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        st = eng_err_set(ENG_EFORMAT, "%s: reading /%s failed (file truncated or corrupt)", path, name);
cleanup:
    if (sp >= 0) H5Sclose(sp);
    if (ds >= 0) H5Dclose(ds);
    return st;
}

/* Read a string dataset of n entries into out[] (strdup'ed). */
static int h5_read_strings(hid_t f, const char *name, size_t n, char **out, const char *path) {
    char **tmp = eng_calloc(n + 1, sizeof(char *));
    if (!tmp) return ENG_ENOMEM;
    hid_t t = h5_str_type();
    hsize_t d[1] = {n};
    int st = h5_read(f, name, t, 1, d, tmp, path);
    for (size_t i = 0; i < n && !st; i++) {
        if (!tmp[i]) { st = eng_err_set(ENG_EFORMAT, "%s: /%s[%zu] is empty", path, name, i); break; }
        if (!(out[i] = strdup(tmp[i]))) st = eng_err_set(ENG_ENOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < n; i++)
        if (tmp[i]) H5free_memory(tmp[i]);
    H5Tclose(t);
    free(tmp);
    return st;
}

static int h5_open_checked(const char *path, hid_t *f, db_h5_info *info) {
    *f = -1;
    memset(info, 0, sizeof *info);
    if (access(path, R_OK) != 0)
        return eng_err_set(errno == ENOENT ? ENG_ENOTFOUND : ENG_EIO, "cannot read '%s': %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0) return eng_err_set(ENG_EFORMAT, "'%s' is not an HDF5 file (or is truncated/corrupt)", path);
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f < 0) return eng_err_set(ENG_EFORMAT, "'%s': HDF5 cannot open it (truncated or corrupt)", path);
    int32_t v[6];
    static const char *names[6] = {"format_version", "n_products", "n_periods", "n_competitors", "period_days", "day0"};
    for (int i = 0; i < 6; i++) {
        int st = h5_read_attr_int(*f, names[i], &v[i], path);
        if (st) return st;
    }
    if (v[0] != DB_H5_FORMAT_VERSION)
        return eng_err_set(ENG_EFORMAT, "'%s' is feature-store format version %d; this rlprice reads version %d", path, v[0],
                           DB_H5_FORMAT_VERSION);
    if (v[1] < 0 || v[2] < 0 || v[3] < 0 || v[4] <= 0)
        return eng_err_set(ENG_EFORMAT, "'%s': bad sizes (%d products, %d periods, %d competitors, period %d days)", path,
                           v[1], v[2], v[3], v[4]);
    info->format_version = v[0];
    info->n_products = v[1];
    info->n_periods = v[2];
    info->n_competitors = v[3];
    info->period_days = v[4];
    info->day0 = v[5];
    h5_read_attr_str(*f, "source", info->source, sizeof info->source);
    hid_t ds = H5Dopen2(*f, "competitors/id", H5P_DEFAULT);
    if (ds < 0) return eng_err_set(ENG_EFORMAT, "'%s': dataset /competitors/id missing", path);
    hid_t sp = H5Dget_space(ds);
    hsize_t n = 0;
    int ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 && H5Sget_simple_extent_dims(sp, &n, NULL) == 1;
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    if (!ok) return eng_err_set(ENG_EFORMAT, "'%s': /competitors/id is not a vector", path);
    info->n_comp_prices = (int64_t)n;
    return ENG_OK;
}

int db_h5store_info(const char *path, db_h5_info *info) {
    eng_h5_quiet q;
    eng_h5_quiet_begin(&q);
    hid_t f;
    int st = h5_open_checked(path, &f, info);
    if (f >= 0) H5Fclose(f);
    eng_h5_quiet_end(&q);
    return st;
}

int db_history_load_h5(db_history **out, const char *path) {
    *out = NULL;
    eng_h5_quiet q;
    eng_h5_quiet_begin(&q);
    db_h5_info in;
    db_history *h = NULL;
    uint8_t *name_null = NULL;
    hid_t f;
    int st = h5_open_checked(path, &f, &in);
    if (st) goto cleanup;
    st = db_history_alloc(&h, in.n_products, in.n_periods, in.day0, in.period_days);
    if (st) goto cleanup;
    size_t P = (size_t)in.n_products, cells = P * (size_t)in.n_periods, N = (size_t)in.n_comp_prices;
    h->n_competitors = in.n_competitors;
    h->competitor_names = eng_calloc((size_t)in.n_competitors + 1, sizeof(char *));
    h->comp_id = eng_malloc(N * sizeof(int32_t) + 1);
    h->comp_price = eng_malloc(N * sizeof(float) + 1);
    name_null = eng_malloc(P + 1);
    if (!h->competitor_names || !h->comp_id || !h->comp_price || !name_null) { st = ENG_ENOMEM; goto cleanup; }
    hsize_t dp[1] = {P}, d2[2] = {P, (hsize_t)in.n_periods}, doff[1] = {cells + 1}, dn[1] = {N};
    if ((st = h5_read_strings(f, "products/product_id", P, h->product_id, path)) ||
        (st = h5_read_strings(f, "products/name", P, h->name, path)) ||
        (st = h5_read(f, "products/name_is_null", H5T_NATIVE_UINT8, 1, dp, name_null, path)) ||
        (st = h5_read(f, "products/base_price", H5T_NATIVE_DOUBLE, 1, dp, h->base_price, path)) ||
        (st = h5_read(f, "products/unit_cost", H5T_NATIVE_DOUBLE, 1, dp, h->unit_cost, path)) ||
        (st = h5_read(f, "products/min_price", H5T_NATIVE_DOUBLE, 1, dp, h->min_price, path)) ||
        (st = h5_read(f, "products/max_price", H5T_NATIVE_DOUBLE, 1, dp, h->max_price, path)) ||
        (st = h5_read(f, "products/max_change_pct", H5T_NATIVE_DOUBLE, 1, dp, h->max_change_pct, path)) ||
        (st = h5_read(f, "sales/price", H5T_NATIVE_DOUBLE, 2, d2, h->price, path)) ||
        (st = h5_read(f, "sales/units", H5T_NATIVE_FLOAT, 2, d2, h->units, path)) ||
        (st = h5_read(f, "sales/revenue", H5T_NATIVE_FLOAT, 2, d2, h->revenue, path)) ||
        (st = h5_read(f, "sales/traffic", H5T_NATIVE_FLOAT, 2, d2, h->traffic, path)) ||
        (st = h5_read(f, "sales/promo", H5T_NATIVE_UINT8, 2, d2, h->promo, path)) ||
        (st = h5_read(f, "sales/present", H5T_NATIVE_UINT8, 2, d2, h->present, path)) ||
        (st = h5_read_strings(f, "competitors/names", (size_t)in.n_competitors, h->competitor_names, path)) ||
        (st = h5_read(f, "competitors/offset", H5T_NATIVE_INT64, 1, doff, h->comp_off, path)) ||
        (st = h5_read(f, "competitors/id", H5T_NATIVE_INT32, 1, dn, h->comp_id, path)) ||
        (st = h5_read(f, "competitors/price", H5T_NATIVE_FLOAT, 1, dn, h->comp_price, path)))
        goto cleanup;
    for (size_t p = 0; p < P; p++)
        if (name_null[p]) {
            free(h->name[p]);
            h->name[p] = NULL;
        }
    /* consistency: offsets start at 0, never decrease, end at N; ids in range */
    if (h->comp_off[0] != 0 || h->comp_off[cells] != (int64_t)N) {
        st = eng_err_set(ENG_EFORMAT, "%s: competitor offsets run %lld..%lld, expected 0..%zu", path,
                         (long long)h->comp_off[0], (long long)h->comp_off[cells], N);
        goto cleanup;
    }
    for (size_t c = 0; c < cells; c++)
        if (h->comp_off[c + 1] < h->comp_off[c]) {
            st = eng_err_set(ENG_EFORMAT, "%s: competitor offsets decrease at cell %zu", path, c);
            goto cleanup;
        }
    for (size_t k = 0; k < N; k++)
        if (h->comp_id[k] < 0 || h->comp_id[k] >= in.n_competitors) {
            st = eng_err_set(ENG_EFORMAT, "%s: competitor id %d at %zu out of range (%d competitors)", path, h->comp_id[k],
                             k, in.n_competitors);
            goto cleanup;
        }
    *out = h;
    h = NULL;
cleanup:
    if (f >= 0) H5Fclose(f);
    eng_h5_quiet_end(&q);
    db_history_free(h);
    free(name_null);
    return st;
}
