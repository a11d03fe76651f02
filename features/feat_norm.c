/* feat_norm.c - mean/std normalisation of state features, fitted on a training window,
 * stored as a flat float array or an HDF5 group (see feat.h). */
#include <math.h>
#include <string.h>

#include "eng_par.h"
#include "eng_util.h"
#include "feat.h"

static void norm_identity(feat_norm *nm) {
    memset(nm, 0, sizeof *nm);
    nm->n = FEAT_N;
    nm->layout_hash = feat_layout_get()->hash;
    nm->t_begin = nm->t_end = -1;
    nm->n_rows = -1;
    for (int i = 0; i < FEAT_N; i++) {
        nm->mean[i] = 0.0f;
        nm->std[i] = 1.0f;
    }
}

/* One pass over the listed products' states: per product a double sum in period order of x
 * (pass 1) or of (x - mean)^2 (pass 2, mean given), added exactly into acc[FEAT_N], so the
 * result does not depend on the order of the products nor on how they are split over ranks.
 * Returns 0 or feat_state's failure. */
static int norm_pass(const db_history *h, const int *products, int np, int t_begin, int t_end, const double *mean,
                     eng_xsum *acc) {
    float x[FEAT_N];
    for (int i = 0; i < np; i++) {
        int p = products ? products[i] : i;
        double part[FEAT_N] = {0};
        for (int t = t_begin; t < t_end; t++) {
            int rc = feat_state(h, p, t, x);
            if (rc) return rc;
            for (int f = 0; f < FEAT_N; f++) {
                double d = mean ? (double)x[f] - mean[f] : (double)x[f];
                part[f] += mean ? d * d : d;
            }
        }
        for (int f = 0; f < FEAT_N; f++) eng_xsum_add(&acc[f], part[f]);
    }
    return ENG_OK;
}

int feat_norm_fit(feat_norm *nm, const db_history *h, const int *products, int n_products, int t_begin,
                  int t_end) {
    return feat_norm_fit_ex(nm, h, products, n_products, t_begin, t_end, 0);
}

int feat_norm_fit_ex(feat_norm *nm, const db_history *h, const int *products, int n_products, int t_begin, int t_end,
                     int over_ranks) {
    int rc = ENG_OK;
    if (!nm || !h || t_begin < 0 || t_end <= t_begin || t_end > h->n_periods)
        rc = eng_err_set(ENG_EINVAL, "feat_norm_fit: bad training window [%d, %d) for %d periods", t_begin, t_end,
                         h ? h->n_periods : 0);
    int np = !h ? 0 : products ? n_products : h->n_products;
    if (!rc && np <= 0 && !over_ranks) rc = eng_err_set(ENG_EINVAL, "feat_norm_fit: no products");
    for (int i = 0; !rc && products && i < np; i++)
        if (products[i] < 0 || products[i] >= h->n_products)
            rc = eng_err_set(ENG_EINVAL, "feat_norm_fit: product index %d out of range", products[i]);
    if (over_ranks && (rc = eng_par_agree(rc))) return rc;
    if (rc) return rc;
    const feat_layout *L = feat_layout_get();
    eng_xsum acc[FEAT_N];
    double mean[FEAT_N];
    int64_t n = (int64_t)np * (t_end - t_begin);
    eng_xsum_zero(acc, FEAT_N);
    rc = norm_pass(h, products, np, t_begin, t_end, NULL, acc);
    if (over_ranks && ((rc = eng_par_agree(rc)) || (rc = eng_par_allreduce_xsum(acc, FEAT_N)) ||
                       (rc = eng_par_allreduce_i64(&n, 1, ENG_PAR_SUM))))
        return rc;
    if (rc) return rc;
    if (n <= 0) return eng_err_set(ENG_EINVAL, "feat_norm_fit: no products");
    for (int f = 0; f < FEAT_N; f++) mean[f] = eng_xsum_round(&acc[f]) / (double)n;
    eng_xsum_zero(acc, FEAT_N);
    rc = norm_pass(h, products, np, t_begin, t_end, mean, acc);
    if (over_ranks && ((rc = eng_par_agree(rc)) || (rc = eng_par_allreduce_xsum(acc, FEAT_N)))) return rc;
    if (rc) return rc;
    norm_identity(nm);
    nm->t_begin = t_begin;
    nm->t_end = t_end;
    nm->n_rows = (long)n;
    for (int f = 0; f < FEAT_N; f++) {
        if (L->kinds[f] != FEAT_KIND_CONT) continue;
        double var = eng_xsum_round(&acc[f]) / (double)n;
        double sd = var > 0.0 ? sqrt(var) : 0.0;
        nm->mean[f] = (float)mean[f];
        nm->std[f] = sd < 1e-6 ? 1.0f : (float)sd;
    }
    return ENG_OK;
}

int feat_norm_apply(const feat_norm *nm, float *x, size_t n_rows) {
    if (!nm || (n_rows && !x)) return eng_err_set(ENG_EINVAL, "feat_norm_apply: NULL argument");
    int rc = feat_layout_check(nm->n, nm->layout_hash, "feature normalisation");
    if (rc) return rc;
    for (size_t r = 0; r < n_rows; r++) {
        float *v = x + r * FEAT_N;
        for (int f = 0; f < FEAT_N; f++) {
            float z = (v[f] - nm->mean[f]) / nm->std[f];
            if (!(z > -FEAT_NORM_CLIP)) z = -FEAT_NORM_CLIP; /* also maps NaN to the floor */
            if (z > FEAT_NORM_CLIP) z = FEAT_NORM_CLIP;
            v[f] = z;
        }
    }
    return ENG_OK;
}

void feat_norm_to_array(const feat_norm *nm, float *buf) {
    buf[0] = (float)nm->n;
    buf[1] = (float)(uint32_t)(nm->layout_hash & 0xFFFFFFu);
    memcpy(buf + 2, nm->mean, sizeof nm->mean);
    memcpy(buf + 2 + FEAT_N, nm->std, sizeof nm->std);
}

int feat_norm_from_array(feat_norm *nm, const float *buf, size_t len) {
    if (!nm || !buf || len != FEAT_NORM_FLAT_LEN)
        return eng_err_set(ENG_EFORMAT, "feature normalisation array: %zu floats, expected %d", len,
                           FEAT_NORM_FLAT_LEN);
    const feat_layout *L = feat_layout_get();
    uint32_t h24 = (uint32_t)(L->hash & 0xFFFFFFu);
    if (buf[0] != (float)L->n || buf[1] != (float)h24)
        return eng_err_set(ENG_EFORMAT,
                           "feature normalisation array: layout mismatch (saved n %g hash24 %g, this build %d / %u)",
                           (double)buf[0], (double)buf[1], L->n, h24);
    for (int f = 0; f < 2 * FEAT_N; f++)
        if (!isfinite(buf[2 + f]) || (f >= FEAT_N && !(buf[2 + f] > 0.0f)))
            return eng_err_set(ENG_EFORMAT, "feature normalisation array: bad value %g at %d", (double)buf[2 + f],
                               2 + f);
    norm_identity(nm);
    memcpy(nm->mean, buf + 2, sizeof nm->mean);
    memcpy(nm->std, buf + 2 + FEAT_N, sizeof nm->std);
    return ENG_OK;
}

/* ---- HDF5 ---------------------------------------------------------------------------- */
static int write_attr(hid_t obj, const char *name, hid_t type, const void *val) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp < 0 ? -1 : H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, type, val) >= 0;
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return ok ? ENG_OK : eng_err_set(ENG_EIO, "feature normalisation: cannot write attribute %s", name);
}

static int read_attr(hid_t obj, const char *name, hid_t type, void *val) {
    if (H5Aexists(obj, name) <= 0) return eng_err_set(ENG_EFORMAT, "feature normalisation: attribute %s missing", name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    int ok = a >= 0 && H5Aread(a, type, val) >= 0;
    if (a >= 0) H5Aclose(a);
    return ok ? ENG_OK : eng_err_set(ENG_EIO, "feature normalisation: cannot read attribute %s", name);
}

/* One float [FEAT_N] dataset, one chunk with HDF5's Fletcher-32 checksum (a flipped byte is a
 * read error, not a silently different normalisation). */
static int write_floats(hid_t g, const char *name, const float *v) {
    hsize_t dim = FEAT_N;
    hid_t sp = H5Screate_simple(1, &dim, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int okp = dcpl >= 0 && H5Pset_chunk(dcpl, 1, &dim) >= 0 && H5Pset_fletcher32(dcpl) >= 0;
    hid_t d = sp < 0 || !okp ? -1 : H5Dcreate2(g, name, H5T_NATIVE_FLOAT, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (d >= 0) H5Dclose(d);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    return ok ? ENG_OK : eng_err_set(ENG_EIO, "feature normalisation: cannot write dataset %s", name);
}

static int read_floats(hid_t g, const char *name, float *v) {
    int rc = ENG_OK;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    hid_t sp = d < 0 ? -1 : H5Dget_space(d);
    hsize_t dim = 0;
    if (d < 0 || sp < 0 || H5Sget_simple_extent_ndims(sp) != 1) {
        rc = eng_err_set(ENG_EFORMAT, "feature normalisation: dataset %s missing or not 1-D", name);
        goto done;
    }
    H5Sget_simple_extent_dims(sp, &dim, NULL);
    if (dim != FEAT_N) {
        rc = eng_err_set(ENG_EFORMAT, "feature normalisation: dataset %s has %llu values, expected %d", name,
                         (unsigned long long)dim, FEAT_N);
        goto done;
    }
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
        rc = eng_err_set(ENG_EIO, "feature normalisation: cannot read dataset %s", name);
done:
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    return rc;
}

int feat_norm_save_h5(const feat_norm *nm, hid_t loc, const char *name) {
    if (!nm || !name) return eng_err_set(ENG_EINVAL, "feat_norm_save_h5: NULL argument");
    int rc = ENG_OK;
    hid_t g = -1, str = -1, sp = -1, d = -1;
    const feat_layout *L = feat_layout_get();
    if (H5Lexists(loc, name, H5P_DEFAULT) > 0)
        return eng_err_set(ENG_EIO, "feat_norm_save_h5: '%s' already exists", name);
    g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        rc = eng_err_set(ENG_EIO, "feat_norm_save_h5: cannot create group '%s'", name);
        goto done;
    }
    str = H5Tcopy(H5T_C_S1);
    if (str < 0 || H5Tset_size(str, H5T_VARIABLE) < 0) {
        rc = eng_err_set(ENG_EIO, "feat_norm_save_h5: string type");
        goto done;
    }
    const char *ver = L->version;
    int n = nm->n, tb = nm->t_begin, te = nm->t_end;
    long long nr = nm->n_rows;
    unsigned long long hash = nm->layout_hash;
    if ((rc = write_attr(g, "layout_version", str, &ver)) || (rc = write_attr(g, "layout_hash", H5T_NATIVE_ULLONG, &hash)) ||
        (rc = write_attr(g, "n_features", H5T_NATIVE_INT, &n)) || (rc = write_attr(g, "t_begin", H5T_NATIVE_INT, &tb)) ||
        (rc = write_attr(g, "t_end", H5T_NATIVE_INT, &te)) || (rc = write_attr(g, "n_rows", H5T_NATIVE_LLONG, &nr)) ||
        (rc = write_floats(g, "mean", nm->mean)) || (rc = write_floats(g, "std", nm->std)))
        goto done;
    hsize_t dim = FEAT_N;
    sp = H5Screate_simple(1, &dim, NULL);
    d = sp < 0 ? -1 : H5Dcreate2(g, "names", str, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, str, H5S_ALL, H5S_ALL, H5P_DEFAULT, L->names) < 0)
        rc = eng_err_set(ENG_EIO, "feat_norm_save_h5: cannot write feature names");
done:
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (str >= 0) H5Tclose(str);
    if (g >= 0) H5Gclose(g);
    return rc;
}

int feat_norm_load_h5(feat_norm *nm, hid_t loc, const char *name) {
    if (!nm || !name) return eng_err_set(ENG_EINVAL, "feat_norm_load_h5: NULL argument");
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return eng_err_set(ENG_ENOTFOUND, "feature normalisation '%s' not found", name);
    int rc = ENG_OK, n = 0, tb = -1, te = -1;
    long long nr = -1;
    unsigned long long hash = 0;
    feat_norm tmp;
    hid_t g = H5Gopen2(loc, name, H5P_DEFAULT);
    if (g < 0) {
        rc = eng_err_set(ENG_EIO, "feature normalisation '%s': cannot open group", name);
        goto done;
    }
    if ((rc = read_attr(g, "n_features", H5T_NATIVE_INT, &n)) ||
        (rc = read_attr(g, "layout_hash", H5T_NATIVE_ULLONG, &hash)) ||
        (rc = feat_layout_check(n, (uint64_t)hash, "feature normalisation")) ||
        (rc = read_attr(g, "t_begin", H5T_NATIVE_INT, &tb)) || (rc = read_attr(g, "t_end", H5T_NATIVE_INT, &te)) ||
        (rc = read_attr(g, "n_rows", H5T_NATIVE_LLONG, &nr)))
        goto done;
    norm_identity(&tmp);
    if ((rc = read_floats(g, "mean", tmp.mean)) || (rc = read_floats(g, "std", tmp.std))) goto done;
    for (int f = 0; f < FEAT_N; f++)
        if (!isfinite(tmp.mean[f]) || !(tmp.std[f] > 0.0f) || !isfinite(tmp.std[f])) {
            rc = eng_err_set(ENG_EFORMAT, "feature normalisation '%s': bad statistics for %s", name,
                             feat_layout_get()->names[f]);
            goto done;
        }
    tmp.t_begin = tb;
    tmp.t_end = te;
    tmp.n_rows = (long)nr;
    *nm = tmp;
done:
    if (g >= 0) H5Gclose(g);
    return rc;
}
