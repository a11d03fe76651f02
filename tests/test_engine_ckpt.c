/* tests/test_engine_ckpt.c - HDF5 checkpoints: exact round trip, bit-identical resume of
 * training, rejection of truncated / random / wrong-version / wrong-shape files without a
 * crash, atomic saves (no temp file left, old file kept on failure), the documented
 * per-layer views, and h5dump readability. */
#include "test_common.h"
#include "eng_model.h"

#include <dirent.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#define P_ 3
#define B_ 16

static const eng_backend *cpu(void) { return eng_backend_cpu(); }

static void tpath(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/ckpt_%d_%s", test_tmpdir(), (int)getpid(), name);
}

/* 5 -> 12 (relu) -> 8 (tanh) -> 3 (identity) */
static eng_arch test_arch(void) {
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){5, 12, 8, 3}, 4, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
    a.acts[1] = ENG_ACT_TANH;
    return a;
}

/* One training step whose data depends only on `t` (not on any saved state). */
static void train_step(eng_model *m, int t) {
    eng_rng r;
    eng_rng_seed(&r, 1000 + (uint64_t)t);
    float X[P_ * B_ * 5], T[P_ * B_ * 3], W[P_ * B_ * 3];
    for (size_t k = 0; k < sizeof X / sizeof X[0]; k++) X[k] = (float)(2 * eng_rng_uniform(&r) - 1);
    for (size_t k = 0; k < sizeof T / sizeof T[0]; k++) T[k] = (float)(2 * eng_rng_uniform(&r) - 1);
    for (size_t k = 0; k < sizeof W / sizeof W[0]; k++) W[k] = (float)eng_rng_below(&r, 2);
    eng_adam_cfg cfg = eng_adam_default();
    cfg.lr = 0.01f;
    cfg.clip_norm = 1.0f;
    const unsigned char mask[P_] = {1, (unsigned char)(t % 3 != 1), 1};
    assert_int_equal(eng_model_zero_grad(m), ENG_OK);
    assert_int_equal(eng_model_forward(m, X, B_, NULL), ENG_OK);
    assert_int_equal(eng_model_loss_backward(m, t % 2 ? ENG_LOSS_HUBER : ENG_LOSS_MSE, 1.0f, T, W, NULL), ENG_OK);
    assert_int_equal(eng_model_adam_step(m, &cfg, mask, NULL), ENG_OK);
}

static eng_model *trained_model(int steps) {
    eng_arch a = test_arch();
    eng_model *m = NULL;
    assert_int_equal(eng_model_create(&m, cpu(), &a, P_, 42), ENG_OK);
    for (int t = 0; t < steps; t++) train_step(m, t);
    return m;
}

static void expect_same_view(const eng_model *a, const eng_model *b, eng_view v) {
    size_t n = (size_t)eng_model_P(a) * eng_model_nparams(a);
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    assert_int_equal(eng_model_get(a, v, x), ENG_OK);
    assert_int_equal(eng_model_get(b, v, y), ENG_OK);
    assert_memory_equal(x, y, n * sizeof(float));
    free(x);
    free(y);
}

/* No file named "<base>.tmp.*" in the test folder. */
static void expect_no_temp(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    DIR *d = opendir(test_tmpdir());
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) fail_msg("temp file left behind: %s", e->d_name);
    closedir(d);
}

static void test_roundtrip(void **s) {
    (void)s;
    char path[512];
    tpath(path, sizeof path, "rt.h5");
    eng_model *m = trained_model(4);
    eng_rng rng, rng2;
    eng_rng_seed(&rng, 7);
    eng_rng_u64(&rng);
    const char *config = "agent = dqn\nlr = 0.01\nproducts = 3\n";
    assert_int_equal(eng_ckpt_save(m, path, &rng, config), ENG_OK);
    expect_no_temp(path);
    eng_model *l = NULL;
    char *cfg = NULL;
    assert_int_equal(eng_ckpt_load(&l, cpu(), path, &rng2, &cfg), ENG_OK);
    assert_non_null(l);
    assert_int_equal(eng_model_P(l), P_);
    assert_int_equal(eng_model_nparams(l), eng_model_nparams(m));
    assert_int_equal(eng_model_step(l), 4);
    const eng_arch *a = eng_model_arch(m), *b = eng_model_arch(l);
    assert_int_equal(a->n_layers, b->n_layers);
    for (int k = 0; k <= a->n_layers; k++) assert_int_equal(a->sizes[k], b->sizes[k]);
    for (int k = 0; k < a->n_layers; k++) assert_int_equal(a->acts[k], b->acts[k]);
    assert_memory_equal(rng.s, rng2.s, sizeof rng.s);
    assert_string_equal(cfg, config);
    expect_same_view(m, l, ENG_VIEW_PARAMS);
    expect_same_view(m, l, ENG_VIEW_ADAM_M);
    expect_same_view(m, l, ENG_VIEW_ADAM_V);
    free(cfg);
    eng_model_free(l);

    /* saved without RNG or config: config loads as "", asking for the RNG is an error */
    assert_int_equal(eng_ckpt_save(m, path, NULL, NULL), ENG_OK);
    assert_int_equal(eng_ckpt_load(&l, cpu(), path, NULL, &cfg), ENG_OK);
    assert_string_equal(cfg, "");
    free(cfg);
    eng_model_free(l);
    l = (eng_model *)&l;
    assert_int_equal(eng_ckpt_load(&l, cpu(), path, &rng2, NULL), ENG_ENOTFOUND);
    assert_null(l);
    assert_non_null(strstr(eng_err_msg(), "RNG"));

    /* a config string beyond HDF5's 64 KiB compact attribute limit */
    size_t big = 100000;
    char *long_cfg = malloc(big + 1);
    for (size_t k = 0; k < big; k++) long_cfg[k] = (char)('a' + k % 26);
    long_cfg[big] = '\0';
    assert_int_equal(eng_ckpt_save(m, path, &rng, long_cfg), ENG_OK);
    assert_int_equal(eng_ckpt_load(&l, cpu(), path, NULL, &cfg), ENG_OK);
    assert_string_equal(cfg, long_cfg);
    free(cfg);
    free(long_cfg);
    eng_model_free(l);
    eng_model_free(m);
    unlink(path);
}

/* Training 9 steps straight == 4 steps, save, load, 5 more steps: bit for bit. */
static void test_resume_bit_identical(void **s) {
    (void)s;
    char path[512];
    tpath(path, sizeof path, "resume.h5");
    eng_model *straight = trained_model(9);
    eng_model *first = trained_model(4);
    assert_int_equal(eng_ckpt_save(first, path, NULL, "x"), ENG_OK);
    eng_model_free(first);
    eng_model *resumed = NULL;
    assert_int_equal(eng_ckpt_load(&resumed, cpu(), path, NULL, NULL), ENG_OK);
    for (int t = 4; t < 9; t++) train_step(resumed, t);
    assert_int_equal(eng_model_step(resumed), 9);
    expect_same_view(straight, resumed, ENG_VIEW_PARAMS);
    expect_same_view(straight, resumed, ENG_VIEW_ADAM_M);
    expect_same_view(straight, resumed, ENG_VIEW_ADAM_V);
    eng_model_free(straight);
    eng_model_free(resumed);
    unlink(path);
}

/* ---- corrupt and inconsistent files --------------------------------------------------- */

static void expect_load_fails(const char *path, int status, const char *needle) {
    eng_model *l = (eng_model *)&l;
    char *cfg = (char *)&cfg;
    eng_err_clear();
    int st = eng_ckpt_load(&l, cpu(), path, NULL, &cfg);
    if (st != status) fail_msg("load of '%s': status %d (%s), expected %d", path, st, eng_err_msg(), status);
    assert_null(l);
    assert_null(cfg);
    assert_non_null(strstr(eng_err_msg(), path)); /* the message names the file */
    if (needle && !strstr(eng_err_msg(), needle)) fail_msg("message '%s' lacks '%s'", eng_err_msg(), needle);
}

static long file_size(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

static void copy_prefix(const char *src, const char *dst, long n) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    assert_non_null(in);
    assert_non_null(out);
    for (long k = 0; k < n; k++) {
        int c = fgetc(in);
        assert_true(c != EOF);
        fputc(c, out);
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* Open a saved checkpoint read-write with the HDF5 API for tampering. */
static hid_t open_rw(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

static void set_int_attr(const char *path, const char *name, int32_t value) {
    hid_t f = open_rw(path);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, H5T_NATIVE_INT32, &value) >= 0);
    H5Aclose(a);
    H5Fclose(f);
}

static void test_corrupt_files(void **s) {
    (void)s;
    char good[512], bad[512];
    tpath(good, sizeof good, "good.h5");
    tpath(bad, sizeof bad, "bad.h5");
    eng_model *m = trained_model(2);
    assert_int_equal(eng_ckpt_save(m, good, NULL, "cfg"), ENG_OK);
    long size = file_size(good);
    assert_true(size > 2048);

    /* missing file */
    expect_load_fails(bad, ENG_ENOTFOUND, NULL);
    /* truncated at several points */
    const long cuts[] = {0, 7, 100, 600, size / 3, size / 2, size - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        copy_prefix(good, bad, cuts[k]);
        expect_load_fails(bad, ENG_EFORMAT, NULL);
    }
    /* random bytes, with and without the HDF5 signature in front */
    eng_rng r;
    eng_rng_seed(&r, 3);
    for (int sig = 0; sig < 2; sig++) {
        FILE *f = fopen(bad, "wb");
        assert_non_null(f);
        if (sig) fwrite("\211HDF\r\n\032\n", 1, 8, f);
        for (int k = 0; k < 4096; k++) fputc((int)eng_rng_below(&r, 256), f);
        fclose(f);
        expect_load_fails(bad, ENG_EFORMAT, NULL);
    }
    /* wrong format version */
    copy_prefix(good, bad, size);
    set_int_attr(bad, "format_version", 99);
    expect_load_fails(bad, ENG_EFORMAT, "format_version 99");
    /* layer sizes that do not match nparams */
    copy_prefix(good, bad, size);
    {
        hid_t f = open_rw(bad);
        hid_t a = H5Aopen(f, "layer_sizes", H5P_DEFAULT);
        int32_t sz[4] = {5, 13, 8, 3};
        assert_true(H5Awrite(a, H5T_NATIVE_INT32, sz) >= 0);
        H5Aclose(a);
        H5Fclose(f);
    }
    expect_load_fails(bad, ENG_EFORMAT, "nparams");
    /* bad activation code, bad n_layers */
    copy_prefix(good, bad, size);
    {
        hid_t f = open_rw(bad);
        hid_t a = H5Aopen(f, "activations", H5P_DEFAULT);
        int32_t acts[3] = {1, 7, 0};
        assert_true(H5Awrite(a, H5T_NATIVE_INT32, acts) >= 0);
        H5Aclose(a);
        H5Fclose(f);
    }
    expect_load_fails(bad, ENG_EFORMAT, "activations");
    copy_prefix(good, bad, size);
    set_int_attr(bad, "n_layers", 2); /* layer_sizes then has the wrong length */
    expect_load_fails(bad, ENG_EFORMAT, "layer_sizes");
    /* dataset of the wrong shape, and a missing dataset */
    copy_prefix(good, bad, size);
    {
        hid_t f = open_rw(bad);
        assert_true(H5Ldelete(f, "adam_v", H5P_DEFAULT) >= 0);
        hsize_t dims[2] = {P_, eng_model_nparams(m) - 1};
        hid_t sp = H5Screate_simple(2, dims, NULL);
        hid_t d = H5Dcreate2(f, "adam_v", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(d >= 0);
        H5Dclose(d);
        H5Sclose(sp);
        H5Fclose(f);
    }
    expect_load_fails(bad, ENG_EFORMAT, "/adam_v");
    copy_prefix(good, bad, size);
    {
        hid_t f = open_rw(bad);
        assert_true(H5Ldelete(f, "adam_m", H5P_DEFAULT) >= 0);
        H5Fclose(f);
    }
    expect_load_fails(bad, ENG_EFORMAT, "/adam_m");
    /* an attribute of the wrong type (string P) */
    copy_prefix(good, bad, size);
    {
        hid_t f = open_rw(bad);
        assert_true(H5Adelete(f, "P") >= 0);
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 2);
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, "P", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(H5Awrite(a, t, "3") >= 0);
        H5Aclose(a);
        H5Sclose(sp);
        H5Tclose(t);
        H5Fclose(f);
    }
    expect_load_fails(bad, ENG_EFORMAT, "'P'");
    /* an HDF5 file that is not a checkpoint */
    {
        hid_t f = H5Fcreate(bad, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(f >= 0);
        H5Fclose(f);
    }
    expect_load_fails(bad, ENG_EFORMAT, "creator");
    /* the good file still loads after all that */
    eng_model *l = NULL;
    assert_int_equal(eng_ckpt_load(&l, cpu(), good, NULL, NULL), ENG_OK);
    eng_model_free(l);
    eng_model_free(m);
    unlink(good);
    unlink(bad);
}

/* Failed saves leave no temp file and keep the previous checkpoint. */
static void test_atomic_save(void **s) {
    (void)s;
    char path[512], dir[512], nodir[600];
    tpath(path, sizeof path, "atomic.h5");
    tpath(dir, sizeof dir, "atomic_dir.h5");
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.h5", test_tmpdir());
    eng_model *m1 = trained_model(1), *m2 = trained_model(3);
    assert_int_equal(eng_ckpt_save(m1, path, NULL, "first"), ENG_OK);
    /* overwrite in place: the new content replaces the old */
    assert_int_equal(eng_ckpt_save(m2, path, NULL, "second"), ENG_OK);
    eng_model *l = NULL;
    char *cfg = NULL;
    assert_int_equal(eng_ckpt_load(&l, cpu(), path, NULL, &cfg), ENG_OK);
    assert_string_equal(cfg, "second");
    expect_same_view(m2, l, ENG_VIEW_PARAMS);
    free(cfg);
    eng_model_free(l);
    /* target is a non-empty directory: the rename fails, nothing is left behind */
    assert_int_equal(mkdir(dir, 0700), 0);
    char inner[600];
    snprintf(inner, sizeof inner, "%s/keep", dir);
    FILE *f = fopen(inner, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_not_equal(eng_ckpt_save(m1, dir, NULL, NULL), ENG_OK);
    assert_true(strlen(eng_err_msg()) > 0);
    expect_no_temp(dir);
    /* folder does not exist */
    assert_int_equal(eng_ckpt_save(m1, nodir, NULL, NULL), ENG_EIO);
    assert_non_null(strstr(eng_err_msg(), "x.h5"));
    expect_no_temp(path);
    unlink(inner);
    rmdir(dir);
    unlink(path);
    eng_model_free(m1);
    eng_model_free(m2);
}

/* /layers/<l>/W and /b equal the slices of /params documented in docs/checkpoints.md, and
 * h5dump -H can read the file. */
static void test_layout_and_h5dump(void **s) {
    (void)s;
    char path[512];
    tpath(path, sizeof path, "layout.h5");
    eng_model *m = trained_model(2);
    assert_int_equal(eng_ckpt_save(m, path, NULL, "layout"), ENG_OK);
    const eng_arch *a = eng_model_arch(m);
    const size_t np = eng_model_nparams(m);
    float *params = malloc(P_ * np * sizeof(float));
    assert_int_equal(eng_model_get(m, ENG_VIEW_PARAMS, params), ENG_OK);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    size_t off = 0;
    for (int l = 0; l < a->n_layers; l++) {
        int in = a->sizes[l], out = a->sizes[l + 1];
        char name[64];
        float *W = malloc((size_t)P_ * out * in * sizeof(float)), *b = malloc((size_t)P_ * out * sizeof(float));
        snprintf(name, sizeof name, "/layers/%d/W", l);
        hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
        assert_true(d >= 0);
        hid_t sp = H5Dget_space(d);
        hsize_t dims[3];
        assert_int_equal(H5Sget_simple_extent_ndims(sp), 3);
        H5Sget_simple_extent_dims(sp, dims, NULL);
        assert_true(dims[0] == P_ && dims[1] == (hsize_t)out && dims[2] == (hsize_t)in);
        assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, W) >= 0);
        H5Sclose(sp);
        H5Dclose(d);
        snprintf(name, sizeof name, "/layers/%d/b", l);
        d = H5Dopen2(f, name, H5P_DEFAULT);
        assert_true(d >= 0);
        assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) >= 0);
        H5Dclose(d);
        for (int p = 0; p < P_; p++) {
            assert_memory_equal(W + (size_t)p * out * in, params + p * np + off, (size_t)out * in * sizeof(float));
            assert_memory_equal(b + (size_t)p * out, params + p * np + off + (size_t)out * in,
                                (size_t)out * sizeof(float));
        }
        off += (size_t)out * in + out;
        free(W);
        free(b);
    }
    assert_int_equal(off, np);
    H5Fclose(f);
    free(params);

    if (system("command -v h5dump >/dev/null 2>&1") != 0) {
        printf("NOTE: h5dump not installed; skipping the h5dump -H check\n");
    } else {
        char cmd[1200], out[600];
        tpath(out, sizeof out, "layout.txt");
        snprintf(cmd, sizeof cmd, "h5dump -H '%s' > '%s' 2>&1", path, out);
        assert_int_equal(system(cmd), 0);
        FILE *t = fopen(out, "r");
        assert_non_null(t);
        char *text = calloc(1, 1 << 16);
        size_t n = fread(text, 1, (1 << 16) - 1, t);
        fclose(t);
        assert_true(n > 0);
        assert_non_null(strstr(text, "DATASET \"params\""));
        assert_non_null(strstr(text, "DATASET \"adam_v\""));
        assert_non_null(strstr(text, "ATTRIBUTE \"format_version\""));
        assert_non_null(strstr(text, "GROUP \"layers\""));
        free(text);
        unlink(out);
    }
    eng_model_free(m);
    unlink(path);
}

/* Write float32 `v` (rows x cols) over dataset `name`, replacing it (no checksum filter). */
static void replace_dset(const char *path, const char *name, const float *v, hsize_t rows, hsize_t cols) {
    hid_t f = open_rw(path);
    assert_true(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
    hsize_t dims[2] = {rows, cols};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
}

/* A warm save keeps only the parameters, as IEEE half (h5py's float16), checksummed; loading
 * restarts Adam.  Every load refuses non-finite, implausible or negative-moment values. */
static void test_warm_save_and_values(void **s) {
    (void)s;
    char path[512], full[512];
    tpath(path, sizeof path, "warm.h5");
    tpath(full, sizeof full, "full.h5");
    eng_model *m = trained_model(4);
    const size_t np = eng_model_nparams(m), n = (size_t)P_ * np;
    const eng_ckpt_opts warm = {0, 0, 1};
    assert_int_equal(eng_ckpt_save_opts(m, path, NULL, "cfg", &warm), ENG_OK);
    assert_int_equal(eng_ckpt_save(m, full, NULL, "cfg"), ENG_OK);
    assert_true(file_size(path) * 4 < file_size(full)); /* 2 of 16 bytes per parameter, plus headers */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_true(H5Lexists(f, "adam_m", H5P_DEFAULT) <= 0);
    assert_true(H5Lexists(f, "layers", H5P_DEFAULT) <= 0);
    hid_t d = H5Dopen2(f, "params", H5P_DEFAULT), t = H5Dget_type(d), pl = H5Dget_create_plist(d);
    assert_int_equal((int)H5Tget_size(t), 2);
    assert_int_equal(H5Tget_class(t), H5T_FLOAT);
    unsigned flags = 0, cd[4];
    size_t ncd = 4;
    assert_int_equal(H5Pget_filter2(pl, 0, &flags, &ncd, cd, 0, NULL, NULL), H5Z_FILTER_FLETCHER32);
    H5Pclose(pl);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
    eng_model *l = NULL;
    assert_int_equal(eng_ckpt_load(&l, cpu(), path, NULL, NULL), ENG_OK);
    assert_int_equal(eng_model_step(l), 0);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(eng_model_get(m, ENG_VIEW_PARAMS, a), ENG_OK);
    assert_int_equal(eng_model_get(l, ENG_VIEW_PARAMS, b), ENG_OK);
    for (size_t k = 0; k < n; k++) assert_close(b[k], a[k], 1e-7, 1.0 / 2048); /* half: 11 significant bits */
    assert_int_equal(eng_model_get(l, ENG_VIEW_ADAM_V, b), ENG_OK);
    for (size_t k = 0; k < n; k++) assert_true(b[k] == 0.0f);
    eng_model_free(l);
    l = NULL;

    /* bad values: one line naming the dataset, the network and the parameter */
    assert_int_equal(eng_model_get(m, ENG_VIEW_PARAMS, a), ENG_OK);
    a[np + 2] = NAN;
    replace_dset(path, "params", a, P_, np);
    expect_load_fails(path, ENG_EFORMAT, "'/params' holds a non-finite value nan (network 1, parameter 2)");
    a[np + 2] = 2e5f;
    replace_dset(path, "params", a, P_, np);
    expect_load_fails(path, ENG_EFORMAT, "implausible value 200000 (network 1, parameter 2)");
    assert_int_equal(eng_model_get(m, ENG_VIEW_ADAM_V, a), ENG_OK);
    a[5] = -1.0f;
    replace_dset(full, "adam_v", a, P_, np);
    expect_load_fails(full, ENG_EFORMAT, "'/adam_v' holds a negative value");
    assert_int_equal(eng_model_get(m, ENG_VIEW_ADAM_M, a), ENG_OK);
    a[7] = INFINITY;
    assert_int_equal(eng_ckpt_save(m, full, NULL, "cfg"), ENG_OK);
    replace_dset(full, "adam_m", a, P_, np);
    expect_load_fails(full, ENG_EFORMAT, "'/adam_m' holds a non-finite value");
    /* a warm save of non-finite parameters keeps them as float32, and the load refuses them */
    assert_int_equal(eng_model_get(m, ENG_VIEW_PARAMS, a), ENG_OK);
    a[0] = INFINITY;
    assert_int_equal(eng_model_set(m, ENG_VIEW_PARAMS, a), ENG_OK);
    assert_int_equal(eng_ckpt_save_opts(m, path, NULL, NULL, &warm), ENG_OK);
    expect_load_fails(path, ENG_EFORMAT, "non-finite value inf (network 0, parameter 0)");
    free(a);
    free(b);
    eng_model_free(m);
    unlink(path);
    unlink(full);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_resume_bit_identical),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_atomic_save),
        cmocka_unit_test(test_layout_and_h5dump),
        cmocka_unit_test(test_warm_save_and_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
