/* eng_ckpt.c - HDF5 checkpoints of model groups (see eng_model.h and docs/checkpoints.md).
 *
 * File layout (format version 1):
 *   root attributes
 *     format_version  int32                 ENG_CKPT_VERSION
 *     creator         string                "rlprice eng_ckpt"
 *     n_layers        int32
 *     layer_sizes     int32[n_layers + 1]   sizes[0] = inputs ... sizes[n_layers] = outputs
 *     activations     int32[n_layers]       0 identity, 1 relu, 2 tanh
 *     activation_names string               e.g. "relu,relu,identity" (for humans; not read)
 *     P               int64                 products in the group
 *     nparams         int64                 parameters of one network
 *     layer_offsets   int64[n_layers]       where W_l starts in a params row (b_l follows W_l)
 *     adam_step       int64                 Adam steps taken
 *     rng_state       uint64[4]             xoshiro256** state (only when saved with an RNG)
 *     config          string                caller's config text ("" when none)
 *   datasets (read by the loader; chunked, each chunk with HDF5's Fletcher-32 checksum)
 *     /params                   [P][nparams]  float32, or IEEE half (float16) in a warm save
 *     /adam_m /adam_v           [P][nparams]  float32; absent in a warm save (moments restart)
 *   convenience copies for h5py / h5dump readers (full save only; never read back)
 *     /layers/<l>/W  [P][out_l][in_l]     /layers/<l>/b  [P][out_l]
 *
 * Saving writes a temp file next to the target, closes it, then eng_atomic_commit (fsync,
 * rename, fsync dir).  Loading validates every attribute and dataset shape, the checksums and
 * every value (finite, |param| <= ENG_CKPT_MAX_ABS, adam_v >= 0) before use and translates
 * HDF5 errors into one line (its own error printing is silenced while we work).
 */
#include "eng_model.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENG_CKPT_VERSION 1
#define ENG_CKPT_CREATOR "rlprice eng_ckpt"
#define ENG_CKPT_MAX_WIDTH (1 << 24) /* sanity bound on a layer's width */
#define ENG_CKPT_CHUNK_BYTES (1 << 20) /* about this many bytes per checksummed chunk */
#define ENG_HALF_MAX 65504.0f          /* largest finite IEEE half */

/* ---- HDF5 error handling ------------------------------------------------------ */

typedef struct {
    H5E_auto2_t func;
    void *data;
} ckpt_quiet;

/* Silence HDF5's automatic error-stack printing; restored by quiet_end. */
static void quiet_begin(ckpt_quiet *q) {
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
static void quiet_end(const ckpt_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

typedef struct {
    char top[160];
    char deep[160];
} ckpt_detail;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *ctx) {
    ckpt_detail *d = ctx;
    const char *desc = e && e->desc ? e->desc : "";
    if (n == 0) snprintf(d->top, sizeof d->top, "%s", desc);
    snprintf(d->deep, sizeof d->deep, "%s", desc);
    return 0;
}

/* Record "checkpoint '<path>': <what>[: <hdf5 detail>]" and return status. */
static int ckpt_fail(int status, const char *path, const char *what) {
    ckpt_detail d = {{0}, {0}};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, &d);
    H5Eclear2(H5E_DEFAULT);
    if (d.top[0] && d.deep[0] && strcmp(d.top, d.deep) != 0)
        return eng_err_set(status, "checkpoint '%s': %s: %s (%s)", path, what, d.top, d.deep);
    if (d.top[0]) return eng_err_set(status, "checkpoint '%s': %s: %s", path, what, d.top);
    return eng_err_set(status, "checkpoint '%s': %s", path, what);
}

static const char *act_name(eng_act a) {
    switch (a) {
    case ENG_ACT_IDENTITY: return "identity";
    case ENG_ACT_RELU: return "relu";
    case ENG_ACT_TANH: return "tanh";
    }
    return "?";
}

/* ---- save ------------------------------------------------------------------------- */

static int put_attr(hid_t loc, const char *name, hid_t ftype, hid_t mtype, hsize_t count, int scalar,
                    const void *data) {
    hid_t sp = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &count, NULL);
    if (sp < 0) return -1;
    hid_t a = H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a < 0 ? -1 : H5Awrite(a, mtype, data);
    if (a >= 0 && H5Aclose(a) < 0) r = -1;
    H5Sclose(sp);
    return r < 0 ? -1 : 0;
}

static int put_str_attr(hid_t loc, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    int r = -1;
    if (H5Tset_size(t, strlen(s) + 1) >= 0 && H5Tset_strpad(t, H5T_STR_NULLTERM) >= 0)
        r = put_attr(loc, name, t, t, 1, 1, s);
    H5Tclose(t);
    return r;
}

/* ---- IEEE half (float16) storage of a warm save ------------------------------------ */

/* float -> half, round to nearest even; overflow gives +-inf, NaN stays NaN. */
static uint16_t f2h(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xffu, m = x & 0x7fffffu;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0));
    const int32_t ne = (int32_t)e - 127 + 15;
    if (ne >= 0x1f) return (uint16_t)(sign | 0x7c00u);
    if (ne <= 0) { /* half subnormal or zero */
        if (ne < -10) return (uint16_t)sign;
        const uint32_t mm = m | 0x800000u, shift = (uint32_t)(14 - ne);
        uint32_t hm = mm >> shift;
        const uint32_t rem = mm & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (hm & 1u))) hm++;
        return (uint16_t)(sign | hm);
    }
    uint32_t h = sign | ((uint32_t)ne << 10) | (m >> 13);
    const uint32_t rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; /* a carry into the exponent is right */
    return (uint16_t)h;
}

/* half -> float (exact). */
static float h2f(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        float f = (float)m * 0x1p-24f;
        return sign ? -f : f;
    }
    uint32_t x = e == 0x1f ? sign | 0x7f800000u | (m << 13) : sign | ((e - 15 + 127) << 23) | (m << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* A new HDF5 type for little-endian IEEE half (what h5py and numpy call float16); caller
 * closes it.  Negative on failure. */
static hid_t half_type(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0) return -1;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* 1 when t is that half type (2 bytes, little-endian, the IEEE half fields). */
static int is_half_type(hid_t t) {
    size_t spos, epos, esize, mpos, msize;
    if (H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != 2 || H5Tget_order(t) != H5T_ORDER_LE) return 0;
    if (H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) < 0) return 0;
    return spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 && H5Tget_ebias(t) == 15;
}

/* Dataset creation properties: chunks of whole rows (about ENG_CKPT_CHUNK_BYTES each) with
 * the Fletcher-32 checksum filter, so that a flipped byte is an error on read.  Caller closes. */
static hid_t chunked_dcpl(int rank, const hsize_t *dims, size_t elem) {
    hsize_t chunk[3], row = 1;
    for (int k = 1; k < rank; k++) row *= dims[k] ? dims[k] : 1;
    hsize_t rows = (hsize_t)ENG_CKPT_CHUNK_BYTES / (row * elem);
    if (rows < 1) rows = 1;
    if (rows > dims[0]) rows = dims[0] ? dims[0] : 1;
    /* equal chunks that cover the rows without a partial last one (HDF5 stores every chunk
     * whole, so 244 rows in chunks of 70 would take 280 rows of space) */
    hsize_t nchunks = dims[0] ? (dims[0] + rows - 1) / rows : 1;
    rows = dims[0] ? (dims[0] + nchunks - 1) / nchunks : 1;
    chunk[0] = rows;
    for (int k = 1; k < rank; k++) chunk[k] = dims[k] ? dims[k] : 1;
    hid_t p = H5Pcreate(H5P_DATASET_CREATE);
    if (p < 0) return -1;
    if (H5Pset_chunk(p, rank, chunk) < 0 || H5Pset_fletcher32(p) < 0) {
        H5Pclose(p);
        return -1;
    }
    return p;
}

/* Write buf [P][nparams] (a hyperslab of columns [off, off + cols) of it when rank > 0)
 * as float32 dataset `name` with file shape dims[rank]; checksummed chunks. */
static int put_dset(hid_t loc, const char *name, const float *buf, hsize_t P, hsize_t nparams, hsize_t off,
                    hsize_t cols, int rank, const hsize_t *dims) {
    hid_t fs = H5Screate_simple(rank, dims, NULL);
    hsize_t mdims[2] = {P, nparams};
    hid_t ms = H5Screate_simple(2, mdims, NULL);
    hid_t d = -1, dcpl = chunked_dcpl(rank, dims, sizeof(float));
    int r = -1;
    if (fs < 0 || ms < 0 || dcpl < 0) goto cleanup;
    hsize_t start[2] = {0, off}, count[2] = {P, cols};
    if (H5Sselect_hyperslab(ms, H5S_SELECT_SET, start, NULL, count, NULL) < 0) goto cleanup;
    d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) goto cleanup;
    if (H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, buf) < 0) goto cleanup;
    r = 0;
cleanup:
    if (d >= 0 && H5Dclose(d) < 0) r = -1;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return r;
}

/* Write buf [P][np] as dataset `name`: IEEE half when half is set and every value is finite
 * and fits (|v| <= 65504), else float32 (so a bad value is kept as it is and found on load).
 * -1 on an HDF5 failure, ENG_ENOMEM (message set) when the conversion buffer is refused. */
static int put_params(hid_t loc, const char *name, const float *buf, hsize_t P, hsize_t np, int half) {
    const size_t n = (size_t)P * (size_t)np;
    for (size_t i = 0; half && i < n; i++)
        if (!(fabsf(buf[i]) <= ENG_HALF_MAX)) half = 0; /* also NaN */
    const hsize_t dims[2] = {P, np};
    if (!half) return put_dset(loc, name, buf, P, np, 0, np, 2, dims);
    uint16_t *h = eng_malloc(n * sizeof *h);
    if (!h) return ENG_ENOMEM;
    for (size_t i = 0; i < n; i++) h[i] = f2h(buf[i]);
    hid_t t = half_type(), fs = H5Screate_simple(2, dims, NULL), dcpl = chunked_dcpl(2, dims, 2), d = -1;
    int r = -1;
    if (t >= 0 && fs >= 0 && dcpl >= 0 && (d = H5Dcreate2(loc, name, t, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT)) >= 0 &&
        H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, h) >= 0)
        r = 0;
    if (d >= 0 && H5Dclose(d) < 0) r = -1;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (fs >= 0) H5Sclose(fs);
    if (t >= 0) H5Tclose(t);
    free(h);
    return r;
}

/* Everything but the file handling of eng_ckpt_save. Returns 0 or a status (message set). */
static int save_contents(hid_t f, const eng_model *m, const char *path, const eng_rng *rng, const char *config,
                         const eng_ckpt_opts *o, float *buf) {
    const eng_arch *a = eng_model_arch(m);
    const int L = a->n_layers;
    const int64_t P = eng_model_P(m), np = (int64_t)eng_model_nparams(m);
    const int64_t step = o->adam ? eng_model_step(m) : 0; /* without moments Adam restarts */
    const int32_t version = ENG_CKPT_VERSION, nl = L;
    int32_t sizes[ENG_MAX_LAYERS + 1], acts[ENG_MAX_LAYERS];
    int64_t offs[ENG_MAX_LAYERS];
    char names[ENG_MAX_LAYERS * 10 + 1] = "";
    int64_t off = 0;
    for (int l = 0; l <= L; l++) sizes[l] = a->sizes[l];
    for (int l = 0; l < L; l++) {
        acts[l] = (int32_t)a->acts[l];
        offs[l] = off;
        off += (int64_t)a->sizes[l] * a->sizes[l + 1] + a->sizes[l + 1];
        if (l) strcat(names, ",");
        strcat(names, act_name(a->acts[l]));
    }
    if (put_attr(f, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 1, &version) < 0 ||
        put_str_attr(f, "creator", ENG_CKPT_CREATOR) < 0 ||
        put_attr(f, "n_layers", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 1, &nl) < 0 ||
        put_attr(f, "layer_sizes", H5T_STD_I32LE, H5T_NATIVE_INT32, (hsize_t)L + 1, 0, sizes) < 0 ||
        put_attr(f, "activations", H5T_STD_I32LE, H5T_NATIVE_INT32, (hsize_t)L, 0, acts) < 0 ||
        put_str_attr(f, "activation_names", names) < 0 ||
        put_attr(f, "P", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, 1, &P) < 0 ||
        put_attr(f, "nparams", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, 1, &np) < 0 ||
        put_attr(f, "layer_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, (hsize_t)L, 0, offs) < 0 ||
        put_attr(f, "adam_step", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, 1, &step) < 0 ||
        (rng && put_attr(f, "rng_state", H5T_STD_U64LE, H5T_NATIVE_UINT64, 4, 0, rng->s) < 0) ||
        put_str_attr(f, "config", config ? config : "") < 0)
        return ckpt_fail(ENG_EIO, path, "writing attributes");

    static const char *const dnames[3] = {"params", "adam_m", "adam_v"};
    static const eng_view views[3] = {ENG_VIEW_PARAMS, ENG_VIEW_ADAM_M, ENG_VIEW_ADAM_V};
    /* params last so that buf holds them for the per-layer copies */
    for (int k = o->adam ? 2 : 0; k >= 0; k--) {
        int st = eng_model_get(m, views[k], buf);
        if (st != ENG_OK) return st;
        int r = put_params(f, dnames[k], buf, (hsize_t)P, (hsize_t)np, k == 0 && o->half);
        if (r > 0) return r;
        if (r < 0) return ckpt_fail(ENG_EIO, path, "writing dataset");
    }
    if (!o->layers) return ENG_OK;
    hid_t g = H5Gcreate2(f, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return ckpt_fail(ENG_EIO, path, "creating group /layers");
    int st = ENG_OK;
    for (int l = 0; l < L && st == ENG_OK; l++) {
        char name[32];
        hsize_t in = (hsize_t)a->sizes[l], out = (hsize_t)a->sizes[l + 1];
        hsize_t wd[3] = {(hsize_t)P, out, in}, bd[2] = {(hsize_t)P, out};
        snprintf(name, sizeof name, "%d", l);
        hid_t gl = H5Gcreate2(g, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (gl < 0 || put_dset(gl, "W", buf, (hsize_t)P, (hsize_t)np, (hsize_t)offs[l], out * in, 3, wd) < 0 ||
            put_dset(gl, "b", buf, (hsize_t)P, (hsize_t)np, (hsize_t)offs[l] + out * in, out, 2, bd) < 0)
            st = ckpt_fail(ENG_EIO, path, "writing /layers");
        if (gl >= 0) H5Gclose(gl);
    }
    H5Gclose(g);
    return st;
}

int eng_ckpt_save(const eng_model *m, const char *path, const eng_rng *rng, const char *config) {
    const eng_ckpt_opts full = {1, 1, 0};
    return eng_ckpt_save_opts(m, path, rng, config, &full);
}

int eng_ckpt_save_opts(const eng_model *m, const char *path, const eng_rng *rng, const char *config,
                       const eng_ckpt_opts *opts) {
    static atomic_uint counter;
    if (!m || !path || !*path || !opts)
        return eng_err_set(ENG_EINVAL, "eng_ckpt_save: NULL model or options, or empty path");
    int st = ENG_OK;
    ckpt_quiet q;
    hid_t fapl = -1, f = -1;
    float *buf = NULL;
    size_t plen = strlen(path) + 48;
    char *tmp = eng_malloc(plen);
    if (!tmp) return ENG_ENOMEM;
    snprintf(tmp, plen, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1u));
    quiet_begin(&q);

    size_t P = (size_t)eng_model_P(m), np = eng_model_nparams(m);
    if (np && P > SIZE_MAX / sizeof(float) / np) {
        st = eng_err_set(ENG_ENOMEM, "checkpoint '%s': %zu x %zu parameters overflow", path, P, np);
        goto cleanup;
    }
    buf = eng_malloc(P * np * sizeof(float));
    if (!buf) {
        st = ENG_ENOMEM;
        goto cleanup;
    }
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* strong close: H5Fclose closes every object still open (error paths included);
     * 1.8+ format so that a long config string may exceed 64 KiB */
    if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0) {
        st = ckpt_fail(ENG_EIO, path, "setting up HDF5 file access");
        goto cleanup;
    }
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f < 0) {
        st = ckpt_fail(ENG_EIO, path, "cannot create the temp file next to it");
        goto cleanup;
    }
    st = save_contents(f, m, path, rng, config, opts, buf);
    if (st == ENG_OK && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) st = ckpt_fail(ENG_EIO, path, "flushing");
    if (H5Fclose(f) < 0 && st == ENG_OK) st = ckpt_fail(ENG_EIO, path, "closing");
    f = -1;
    if (st == ENG_OK) {
        st = eng_atomic_commit(tmp, path); /* removes tmp on failure */
    } else {
        unlink(tmp);
    }
cleanup:
    if (f >= 0) {
        H5Fclose(f);
        unlink(tmp);
    }
    if (fapl >= 0) H5Pclose(fapl);
    H5Eclear2(H5E_DEFAULT);
    quiet_end(&q);
    free(buf);
    free(tmp);
    return st;
}

/* ---- load ------------------------------------------------------------------------- */

/* Read attribute `name` of class `cls` holding exactly `count` elements (scalar or 1-D)
 * into out as mtype.  Returns 0 or ENG_EFORMAT (message set). */
static int get_attr(hid_t loc, const char *path, const char *name, H5T_class_t cls, hid_t mtype, hsize_t count,
                    void *out) {
    char what[160];
    int st = ENG_OK;
    hid_t a = -1, t = -1, sp = -1;
    htri_t ex = H5Aexists(loc, name);
    if (ex <= 0) {
        snprintf(what, sizeof what, "attribute '%s' is missing", name);
        st = ckpt_fail(ENG_EFORMAT, path, what);
        goto cleanup;
    }
    a = H5Aopen(loc, name, H5P_DEFAULT);
    t = a >= 0 ? H5Aget_type(a) : -1;
    sp = a >= 0 ? H5Aget_space(a) : -1;
    if (a < 0 || t < 0 || sp < 0) {
        snprintf(what, sizeof what, "cannot open attribute '%s'", name);
        st = ckpt_fail(ENG_EFORMAT, path, what);
        goto cleanup;
    }
    int rank = H5Sget_simple_extent_ndims(sp);
    hssize_t npts = H5Sget_simple_extent_npoints(sp);
    if (H5Tget_class(t) != cls || rank < 0 || rank > 1 || npts != (hssize_t)count) {
        snprintf(what, sizeof what, "attribute '%s' has the wrong type or shape (%lld elements, expected %llu)",
                 name, (long long)npts, (unsigned long long)count);
        st = ckpt_fail(ENG_EFORMAT, path, what);
        goto cleanup;
    }
    if (H5Aread(a, mtype, out) < 0) {
        snprintf(what, sizeof what, "cannot read attribute '%s'", name);
        st = ckpt_fail(ENG_EFORMAT, path, what);
    }
cleanup:
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return st;
}

/* Read scalar string attribute `name` (fixed or variable length) into a malloc'd string. */
static int get_str_attr(hid_t loc, const char *path, const char *name, char **out) {
    char what[160];
    int st = ENG_OK;
    hid_t a = -1, t = -1, sp = -1, mt = -1;
    char *s = NULL;
    *out = NULL;
    if (H5Aexists(loc, name) <= 0) {
        snprintf(what, sizeof what, "attribute '%s' is missing", name);
        st = ckpt_fail(ENG_EFORMAT, path, what);
        goto cleanup;
    }
    a = H5Aopen(loc, name, H5P_DEFAULT);
    t = a >= 0 ? H5Aget_type(a) : -1;
    sp = a >= 0 ? H5Aget_space(a) : -1;
    if (a < 0 || t < 0 || sp < 0 || H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1) {
        snprintf(what, sizeof what, "attribute '%s' is not a single string", name);
        st = ckpt_fail(ENG_EFORMAT, path, what);
        goto cleanup;
    }
    mt = H5Tcopy(H5T_C_S1);
    if (mt < 0) {
        st = ckpt_fail(ENG_EFORMAT, path, "HDF5 string type");
        goto cleanup;
    }
    if (H5Tis_variable_str(t) > 0) {
        char *vs = NULL;
        if (H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Aread(a, mt, &vs) < 0) {
            snprintf(what, sizeof what, "cannot read attribute '%s'", name);
            st = ckpt_fail(ENG_EFORMAT, path, what);
            goto cleanup;
        }
        s = strdup(vs ? vs : "");
        H5free_memory(vs);
        if (!s) st = eng_err_set(ENG_ENOMEM, "checkpoint '%s': out of memory reading '%s'", path, name);
    } else {
        size_t n = H5Tget_size(t);
        s = n ? eng_calloc(n + 1, 1) : NULL;
        if (!s) {
            st = n ? ENG_ENOMEM : ckpt_fail(ENG_EFORMAT, path, "zero-size string attribute");
            goto cleanup;
        }
        if (H5Tset_size(mt, n + 1) < 0 || H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0 || H5Aread(a, mt, s) < 0) {
            snprintf(what, sizeof what, "cannot read attribute '%s'", name);
            st = ckpt_fail(ENG_EFORMAT, path, what);
        }
    }
cleanup:
    if (st != ENG_OK) free(s);
    else *out = s;
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return st;
}

/* Read float dataset `name` of shape exactly [P][np] into buf. */
static int get_dset(hid_t f, const char *path, const char *name, hsize_t P, hsize_t np, float *buf) {
    char what[200];
    int st = ENG_OK;
    hid_t d = -1, t = -1, sp = -1;
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) {
        snprintf(what, sizeof what, "dataset '/%s' is missing", name);
        st = ckpt_fail(ENG_EFORMAT, path, what);
        goto cleanup;
    }
    d = H5Dopen2(f, name, H5P_DEFAULT);
    t = d >= 0 ? H5Dget_type(d) : -1;
    sp = d >= 0 ? H5Dget_space(d) : -1;
    if (d < 0 || t < 0 || sp < 0) {
        snprintf(what, sizeof what, "cannot open dataset '/%s'", name);
        st = ckpt_fail(ENG_EFORMAT, path, what);
        goto cleanup;
    }
    hsize_t dims[2] = {0, 0};
    int rank = H5Sget_simple_extent_ndims(sp);
    if (rank == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (H5Tget_class(t) != H5T_FLOAT || rank != 2 || dims[0] != P || dims[1] != np) {
        snprintf(what, sizeof what, "dataset '/%s' must be float [%llu][%llu] (found rank %d, [%llu][%llu])", name,
                 (unsigned long long)P, (unsigned long long)np, rank, (unsigned long long)dims[0],
                 (unsigned long long)dims[1]);
        st = ckpt_fail(ENG_EFORMAT, path, what);
        goto cleanup;
    }
    herr_t rd;
    if (is_half_type(t)) { /* a warm save: read the halves as stored and widen them here */
        const size_t n = (size_t)P * (size_t)np;
        uint16_t *h = eng_malloc(n * sizeof *h);
        if (!h) {
            st = ENG_ENOMEM;
            goto cleanup;
        }
        rd = H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, h);
        for (size_t i = 0; rd >= 0 && i < n; i++) buf[i] = h2f(h[i]);
        free(h);
    } else {
        rd = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    }
    if (rd < 0) {
        snprintf(what, sizeof what, "cannot read dataset '/%s' (truncated or corrupt file, or a checksum mismatch)",
                 name);
        st = ckpt_fail(ENG_EFORMAT, path, what);
    }
cleanup:
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    return st;
}

/* Every value of dataset `name` (buf [P][np]) usable: finite, |v| <= ENG_CKPT_MAX_ABS for the
 * parameters (k 0), >= 0 for Adam's second moment (k 2).  ENG_EFORMAT naming the first bad
 * value otherwise. */
static int check_values(const char *path, const char *name, const float *buf, int64_t P, int64_t np, int k) {
    const int nonneg = k == 2;
    const float bound = k == 0 ? ENG_CKPT_MAX_ABS : INFINITY;
    for (int64_t p = 0; p < P; p++)
        for (int64_t j = 0; j < np; j++) {
            const float v = buf[p * np + j];
            if (isfinite(v) && fabsf(v) <= bound && !(nonneg && v < 0)) continue;
            return eng_err_set(ENG_EFORMAT,
                               "checkpoint '%s': dataset '/%s' holds %s %g (network %" PRId64 ", parameter %" PRId64
                               ")",
                               path, name, !isfinite(v) ? "a non-finite value" : nonneg && v < 0 ? "a negative value"
                                                                                                   : "an implausible value",
                               (double)v, p, j);
        }
    return ENG_OK;
}

/* Read and validate the architecture attributes. */
static int get_arch(hid_t f, const char *path, eng_arch *arch, int64_t *P, int64_t *np, int64_t *step) {
    int32_t version = 0, nl = 0, sizes[ENG_MAX_LAYERS + 1], acts[ENG_MAX_LAYERS];
    int64_t offs[ENG_MAX_LAYERS];
    int st = get_attr(f, path, "format_version", H5T_INTEGER, H5T_NATIVE_INT32, 1, &version);
    if (st != ENG_OK) return st;
    if (version != ENG_CKPT_VERSION)
        return eng_err_set(ENG_EFORMAT, "checkpoint '%s': unsupported format_version %d (this build reads %d)", path,
                           (int)version, ENG_CKPT_VERSION);
    if ((st = get_attr(f, path, "n_layers", H5T_INTEGER, H5T_NATIVE_INT32, 1, &nl)) != ENG_OK) return st;
    if (nl < 1 || nl > ENG_MAX_LAYERS)
        return eng_err_set(ENG_EFORMAT, "checkpoint '%s': n_layers = %d, must be 1..%d", path, (int)nl,
                           ENG_MAX_LAYERS);
    if ((st = get_attr(f, path, "layer_sizes", H5T_INTEGER, H5T_NATIVE_INT32, (hsize_t)nl + 1, sizes)) != ENG_OK ||
        (st = get_attr(f, path, "activations", H5T_INTEGER, H5T_NATIVE_INT32, (hsize_t)nl, acts)) != ENG_OK ||
        (st = get_attr(f, path, "P", H5T_INTEGER, H5T_NATIVE_INT64, 1, P)) != ENG_OK ||
        (st = get_attr(f, path, "nparams", H5T_INTEGER, H5T_NATIVE_INT64, 1, np)) != ENG_OK ||
        (st = get_attr(f, path, "layer_offsets", H5T_INTEGER, H5T_NATIVE_INT64, (hsize_t)nl, offs)) != ENG_OK ||
        (st = get_attr(f, path, "adam_step", H5T_INTEGER, H5T_NATIVE_INT64, 1, step)) != ENG_OK)
        return st;
    memset(arch, 0, sizeof *arch);
    arch->n_layers = nl;
    int64_t off = 0, want[ENG_MAX_LAYERS];
    for (int l = 0; l <= nl; l++) {
        if (sizes[l] < 1 || sizes[l] > ENG_CKPT_MAX_WIDTH)
            return eng_err_set(ENG_EFORMAT, "checkpoint '%s': layer_sizes[%d] = %d is out of range 1..%d", path, l,
                               (int)sizes[l], ENG_CKPT_MAX_WIDTH);
        arch->sizes[l] = sizes[l];
    }
    for (int l = 0; l < nl; l++) {
        if (acts[l] < ENG_ACT_IDENTITY || acts[l] > ENG_ACT_TANH)
            return eng_err_set(ENG_EFORMAT, "checkpoint '%s': activations[%d] = %d is not 0, 1 or 2", path, l,
                               (int)acts[l]);
        arch->acts[l] = (eng_act)acts[l];
        want[l] = off;
        off += (int64_t)sizes[l] * sizes[l + 1] + sizes[l + 1];
    }
    if (*np != off || (size_t)off != eng_arch_nparams(arch))
        return eng_err_set(ENG_EFORMAT, "checkpoint '%s': nparams = %" PRId64 " but the layer sizes give %" PRId64,
                           path, *np, off);
    for (int l = 0; l < nl; l++)
        if (offs[l] != want[l])
            return eng_err_set(ENG_EFORMAT, "checkpoint '%s': layer_offsets[%d] = %" PRId64 ", expected %" PRId64,
                               path, l, offs[l], want[l]);
    if (*P < 1 || *P > INT32_MAX)
        return eng_err_set(ENG_EFORMAT, "checkpoint '%s': P = %" PRId64 " is out of range", path, *P);
    if (*step < 0)
        return eng_err_set(ENG_EFORMAT, "checkpoint '%s': adam_step = %" PRId64 " is negative", path, *step);
    if ((uint64_t)*P > SIZE_MAX / sizeof(float) / (uint64_t)*np)
        return eng_err_set(ENG_EFORMAT, "checkpoint '%s': %" PRId64 " x %" PRId64 " parameters overflow", path, *P,
                           *np);
    return ENG_OK;
}

int eng_ckpt_load(eng_model **out, const eng_backend *be, const char *path, eng_rng *rng, char **config) {
    if (!out || !be || !path || !*path) return eng_err_set(ENG_EINVAL, "eng_ckpt_load: NULL argument or empty path");
    *out = NULL;
    if (config) *config = NULL;
    int st = ENG_OK;
    ckpt_quiet q;
    hid_t f = -1, fapl = -1;
    eng_model *m = NULL;
    float *buf = NULL;
    char *cfg = NULL, *creator = NULL;
    eng_arch arch;
    int64_t P = 0, np = 0, step = 0;
    eng_rng saved_rng;

    if (access(path, F_OK) != 0)
        return eng_err_set(errno == ENOENT ? ENG_ENOTFOUND : ENG_EIO, "checkpoint '%s': %s", path, strerror(errno));
    if (access(path, R_OK) != 0) return eng_err_set(ENG_EIO, "checkpoint '%s': %s", path, strerror(errno));
    quiet_begin(&q);
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        st = is == 0 ? eng_err_set(ENG_EFORMAT, "checkpoint '%s': not an HDF5 file", path)
                     : ckpt_fail(ENG_EFORMAT, path, "not a readable HDF5 file");
        goto cleanup;
    }
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        st = ckpt_fail(ENG_EIO, path, "setting up HDF5 file access");
        goto cleanup;
    }
    f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (f < 0) {
        st = ckpt_fail(ENG_EFORMAT, path, "cannot open (truncated or corrupt?)");
        goto cleanup;
    }
    if ((st = get_str_attr(f, path, "creator", &creator)) != ENG_OK) goto cleanup;
    if (strcmp(creator, ENG_CKPT_CREATOR) != 0) {
        st = eng_err_set(ENG_EFORMAT, "checkpoint '%s': creator is '%.80s', not an rlprice checkpoint", path, creator);
        goto cleanup;
    }
    if ((st = get_arch(f, path, &arch, &P, &np, &step)) != ENG_OK) goto cleanup;
    if (rng) {
        if (H5Aexists(f, "rng_state") <= 0) {
            st = eng_err_set(ENG_ENOTFOUND, "checkpoint '%s' was saved without an RNG state", path);
            goto cleanup;
        }
        if ((st = get_attr(f, path, "rng_state", H5T_INTEGER, H5T_NATIVE_UINT64, 4, saved_rng.s)) != ENG_OK)
            goto cleanup;
    }
    if ((st = get_str_attr(f, path, "config", &cfg)) != ENG_OK) goto cleanup;

    buf = eng_malloc((size_t)P * (size_t)np * sizeof(float));
    if (!buf) {
        st = ENG_ENOMEM;
        goto cleanup;
    }
    if ((st = eng_model_create(&m, be, &arch, (int)P, 0)) != ENG_OK) goto cleanup;
    static const char *const dnames[3] = {"params", "adam_m", "adam_v"};
    static const eng_view views[3] = {ENG_VIEW_PARAMS, ENG_VIEW_ADAM_M, ENG_VIEW_ADAM_V};
    /* a warm save has no Adam moments: both absent (they restart at 0, step 0) or both there */
    const int has_m = H5Lexists(f, "adam_m", H5P_DEFAULT) > 0, has_v = H5Lexists(f, "adam_v", H5P_DEFAULT) > 0;
    if (has_m != has_v || (!has_m && step != 0)) {
        st = eng_err_set(ENG_EFORMAT, "checkpoint '%s': dataset '/%s' is missing", path, has_m ? "adam_v" : "adam_m");
        goto cleanup;
    }
    for (int k = 0; k < (has_m ? 3 : 1); k++) {
        if ((st = get_dset(f, path, dnames[k], (hsize_t)P, (hsize_t)np, buf)) != ENG_OK) goto cleanup;
        if ((st = check_values(path, dnames[k], buf, P, np, k)) != ENG_OK) goto cleanup;
        if ((st = eng_model_set(m, views[k], buf)) != ENG_OK) goto cleanup;
    }
    if (!has_m) { /* Adam restarts */
        memset(buf, 0, (size_t)P * (size_t)np * sizeof(float));
        if ((st = eng_model_set(m, ENG_VIEW_ADAM_M, buf)) != ENG_OK || (st = eng_model_set(m, ENG_VIEW_ADAM_V, buf)) != ENG_OK)
            goto cleanup;
    }
    if ((st = eng_model_zero_grad(m)) != ENG_OK) goto cleanup;
    eng_model_set_step(m, (long)step);
    if (rng) *rng = saved_rng;
    if (config) {
        *config = cfg;
        cfg = NULL;
    }
    *out = m;
    m = NULL;
cleanup:
    if (f >= 0) H5Fclose(f);
    if (fapl >= 0) H5Pclose(fapl);
    H5Eclear2(H5E_DEFAULT);
    quiet_end(&q);
    if (m) eng_model_free(m);
    free(buf);
    free(cfg);
    free(creator);
    return st;
}
