/* feat_demand.c - the per-product demand model (feat_demand.h). */
#include "feat_demand.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"

/* LAPACK's Cholesky solve (OpenBLAS; no LAPACKE header here).  The trailing length is gfortran's
 * hidden length of the character argument. */
extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b,
                   const int *ldb, int *info, size_t uplo_len);

#define K FEAT_DEMAND_K
#define PRIOR_MEAN (-1.0) /* the price slope's prior: N(-1, 1) */
#define PRIOR_PREC 1.0
#define RIDGE 1e-4        /* on the state columns */
#define MAX_IT 30
/* The log-price form replaces the linear one only when its log-likelihood is higher by this much
 * (a likelihood ratio of e^2 ~ 7.4).  Over a logged range of +-15% the two forms are almost
 * collinear and their likelihoods differ by noise, yet their decisions do not: with a small
 * conversion the log form's revenue per visitor is ~ p^(1 + b1), monotone, so a noise-level pick
 * of it sends the price to an edge of the guard.  A plain pick by likelihood (margin 0) cost the
 * backtest's `logit` family 10-12 points of the model's pooled captured uplift and gained nothing
 * on `ce` (whose truth IS log-price) or `ref` (docs/compare.md, "One demand model"). */
#define FORM_MARGIN 2.0

static int g_asym; /* feat_demand_set_asym: the fits that do not say try the loss column */

void feat_demand_set_asym(int on) { g_asym = on < 0 ? 0 : on > 2 ? 2 : on; }

int feat_demand_asym(void) { return g_asym; }

/* The loss column: how far the price lies above the lagged price (lag = log(lagged / ref)), 0
 * below it; NaN without a lag. */
static double loss_of(double price, double ref, double lag) {
    return isfinite(lag) && price > 0 ? fmax(log(price / ref) - lag, 0.0) : NAN;
}

/* The price term: log(price / ref) (form 0) or price / ref (form 1). */
static double g_of(int form, double price, double ref) { return form ? price / ref : log(price / ref); }

/* 1 when row r enters the fit: a positive price, known units, and traffic for the logit. */
static int row_usable(const feat_demand_row *r, int logit) {
    return r->price > 0 && isfinite(r->price) && isfinite(r->units) && r->units >= 0 &&
           (!logit || (isfinite(r->traffic) && r->traffic > 0));
}

/* Raw value of column j of row r (NaN: unknown) before centring. */
static double col_raw(const feat_demand_row *r, int j, int form, double ref) {
    switch (j) {
    case FEAT_DEMAND_C1: return 1.0;
    case FEAT_DEMAND_PRICE: return g_of(form, r->price, ref);
    case FEAT_DEMAND_COMP: return r->comp;
    case FEAT_DEMAND_LAG: return r->lag;
    case FEAT_DEMAND_LOSS: return loss_of(r->price, ref, r->lag);
    default: return r->promo;
    }
}

/* Centred design row of r into x[K] (unused columns 0, missing values 0 = the mean). */
static void design_row(const feat_demand *m, const feat_demand_row *r, double *x) {
    x[0] = 1.0;
    for (int j = 1; j < K; j++) {
        const double v = m->used >> j & 1u ? col_raw(r, j, m->form, m->ref) : NAN; /* an unused column: 0 */
        x[j] = isfinite(v) ? v - m->mean[j] : 0.0;
    }
}

/* Mean, weight and (ll not NULL) log-likelihood term of one row at linear predictor eta. */
static void row_moments(int logit, double v, double k, double eta, double *mu, double *w, double *ll) {
    if (logit) {
        double q = 1.0 / (1.0 + exp(-eta));
        q = fmin(fmax(q, 1e-12), 1 - 1e-12);
        *mu = v * q, *w = v * q * (1 - q);
        if (ll) *ll = k * log(q) + fmax(v - k, 0) * log1p(-q);
    } else {
        double e = eta < 30 ? eta : 30;
        *mu = v * exp(e), *w = *mu;
        if (ll) *ll = k * (e + log(v)) - *mu;
    }
}

/* Which columns vary and their means over the usable rows; the loss column only when asym, the
 * lag column is in and loss is positive on FEAT_DEMAND_ASYM_MIN rows and zero on as many. */
static void columns(feat_demand *m, const feat_demand_row *rows, size_t n, int asym) {
    m->used = 1u | 2u;
    for (int j = 1; j < K; j++) {
        double s = 0, lo = INFINITY, hi = -INFINITY;
        int c = 0, pos = 0;
        for (size_t i = 0; i < n; i++) {
            if (!row_usable(&rows[i], m->logit)) continue;
            double v = col_raw(&rows[i], j, m->form, m->ref);
            if (isfinite(v)) s += v, c++, lo = fmin(lo, v), hi = fmax(hi, v), pos += v > 1e-6;
        }
        m->mean[j] = c ? s / c : 0.0;
        int vary = j >= FEAT_DEMAND_COMP && c >= m->n / 2 && hi - lo > 1e-6;
        if (j == FEAT_DEMAND_LOSS)
            vary = vary && asym && (m->used >> FEAT_DEMAND_LAG & 1u) && pos >= FEAT_DEMAND_ASYM_MIN &&
                   c - pos >= FEAT_DEMAND_ASYM_MIN;
        if (vary) m->used |= 1u << j;
    }
}

/* Inverse of the used block of A (kk x kk, row-major, overwritten) into inv (kk x kk); 0 or -1. */
static int spd_inv(double *A, int kk, double *inv) {
    for (int i = 0; i < kk * kk; i++) inv[i] = 0;
    for (int i = 0; i < kk; i++) inv[i * kk + i] = 1;
    int info = 0;
    dposv_("L", &kk, &kk, A, &kk, inv, &kk, &info, 1);
    return info ? -1 : 0;
}

/* Hessian (with the prior) kk x kk over the used columns idx and gradient g; when B is not NULL
 * (the final pass) also the log-likelihood (returned; NaN otherwise: the Newton steps do not read
 * it, and its logs were a tenth of a warm night's CPU), the meat sum r^2 x x' and *phi the
 * Pearson sum. */
static double accumulate(const feat_demand *m, const feat_demand_row *rows, size_t n, const int *idx, int kk,
                         double *A, double *g, double *B, double *phi) {
    double ll = 0, x[K];
    memset(A, 0, sizeof(double) * kk * kk);
    memset(g, 0, sizeof(double) * kk);
    if (B) memset(B, 0, sizeof(double) * kk * kk), *phi = 0;
    for (size_t i = 0; i < n; i++) {
        const feat_demand_row *r = &rows[i];
        if (!row_usable(r, m->logit)) continue;
        design_row(m, r, x);
        double eta = 0, mu, w, l = 0, v = m->logit ? r->traffic : 1.0;
        for (int a = 0; a < kk; a++) eta += m->beta[idx[a]] * x[idx[a]];
        row_moments(m->logit, v, r->units, eta, &mu, &w, B ? &l : NULL);
        ll += l;
        double res = r->units - mu;
        for (int a = 0; a < kk; a++) {
            g[a] += res * x[idx[a]];
            for (int b = 0; b < kk; b++) A[a * kk + b] += w * x[idx[a]] * x[idx[b]];
            if (B)
                for (int b = 0; b < kk; b++) B[a * kk + b] += res * res * x[idx[a]] * x[idx[b]];
        }
        if (B && w > 0) *phi += res * res / w;
    }
    for (int a = 0; a < kk; a++) { /* priors */
        int j = idx[a];
        double prec = j == FEAT_DEMAND_PRICE ? m->prior_prec : j == FEAT_DEMAND_C1 ? 1e-8 : RIDGE;
        double mean = j == FEAT_DEMAND_PRICE ? m->prior_mean : 0.0;
        const int rj = j == FEAT_DEMAND_LAG ? 0 : j == FEAT_DEMAND_LOSS ? 1 : -1;
        if (rj >= 0 && m->ref_prior_prec[rj] > 0) prec = m->ref_prior_prec[rj], mean = m->ref_prior_mean[rj];
        A[a * kk + a] += prec;
        g[a] -= prec * (m->beta[j] - mean);
        ll -= 0.5 * prec * (m->beta[j] - mean) * (m->beta[j] - mean);
    }
    return B ? ll : NAN;
}

/* The price slope's prior of m's form in b1 units from pr (NULL / n == 0: N(-1, 1)): e = b1 xc
 * for the identity form (xc > 0), e = b1 for the log form. */
static void set_prior(feat_demand *m, const feat_demand_prior *pr) {
    m->prior_mean = PRIOR_MEAN, m->prior_prec = PRIOR_PREC;
    for (int r = 0; r < 2; r++) {
        const int on = pr && pr->ref_n > 0 && isfinite(pr->ref_mean[r]) && pr->ref_sd[r] > 0;
        m->ref_prior_mean[r] = on ? pr->ref_mean[r] : 0.0;
        m->ref_prior_prec[r] = on ? 1.0 / (pr->ref_sd[r] * pr->ref_sd[r]) : 0.0;
    }
    if (!pr || pr->n <= 0 || !isfinite(pr->mean) || !(pr->sd > 0)) return;
    const double s = m->form && m->xc > 0 ? m->xc : 1.0;
    m->prior_mean = pr->mean / s;
    m->prior_prec = (s / pr->sd) * (s / pr->sd);
}

/* Newton fit of one form into m (columns, beta, covariances, ll) under the slope prior pr;
 * 0 or -1 (no sales, singular, not converged). */
static int fit_form(feat_demand *m, const feat_demand_row *rows, size_t n, const feat_demand_prior *pr, int asym) {
    double su = 0, sv = 0, A[K * K], Ai[K * K], B[K * K], g[K], phi = 0;
    m->n = 0;
    for (size_t i = 0; i < n; i++)
        if (row_usable(&rows[i], m->logit)) m->n++, su += rows[i].units, sv += m->logit ? rows[i].traffic : 1.0;
    if (m->n < FEAT_DEMAND_MIN_ROWS || !(su > 0)) return -1;
    columns(m, rows, n, asym);
    m->xc = m->mean[FEAT_DEMAND_PRICE];
    set_prior(m, pr);
    int idx[K], kk = 0;
    for (int j = 0; j < K; j++)
        if (m->used >> j & 1u) idx[kk++] = j;
    memset(m->beta, 0, sizeof m->beta);
    /* the reference columns start at their prior means, when they entered ("a column not used has beta 0") */
    if (m->used >> FEAT_DEMAND_LAG & 1u) m->beta[FEAT_DEMAND_LAG] = m->ref_prior_mean[0];
    if (m->used >> FEAT_DEMAND_LOSS & 1u) m->beta[FEAT_DEMAND_LOSS] = m->ref_prior_mean[1];
    double mm = (su + 0.5) / (sv + 1.0);
    m->beta[0] = m->logit ? log(mm / (1 - fmin(mm, 0.999))) : log(mm);
    m->beta[FEAT_DEMAND_PRICE] = m->prior_mean;
    int conv = 0, one = 1, info = 0;
    for (int it = 0; it < MAX_IT && !conv; it++) {
        accumulate(m, rows, n, idx, kk, A, g, NULL, NULL);
        dposv_("L", &kk, &one, A, &kk, g, &kk, &info, 1);
        if (info) return -1;
        double step = 0;
        for (int a = 0; a < kk; a++) {
            double s = fmax(-3, fmin(3, g[a])); /* damped: the first steps from a flat start */
            m->beta[idx[a]] += s;
            step = fmax(step, fabs(s));
        }
        if (!isfinite(step)) return -1;
        conv = step < 1e-7;
    }
    if (!conv) return -1;
    m->ll = accumulate(m, rows, n, idx, kk, A, g, B, &phi);
    if (spd_inv(A, kk, Ai)) return -1;
    /* sandwich Ai B Ai x n / (n - k); dispersion-scaled posterior Ai max(phi, 1) */
    const int dfree = m->n - kk > 0 ? m->n - kk : 1;
    phi /= dfree;
    memset(m->cov, 0, sizeof m->cov);
    memset(m->rcov, 0, sizeof m->rcov);
    for (int a = 0; a < kk; a++)
        for (int b = 0; b < kk; b++) {
            double s = 0;
            for (int u = 0; u < kk; u++)
                for (int v = 0; v < kk; v++) s += Ai[a * kk + u] * B[u * kk + v] * Ai[v * kk + b];
            double sand = s * m->n / dfree, quasi = Ai[a * kk + b] * fmax(phi, 1.0);
            m->cov[idx[a] * K + idx[b]] = Ai[a * kk + b];
            m->rcov[idx[a] * K + idx[b]] = a == b ? fmax(sand, quasi) : sand;
        }
    return isfinite(m->ll) ? 0 : -1;
}

/* fit_form under pr; with pr's nonparametric form, a fit under the weak slope prior (the
 * reference columns' prior kept) first, whose slope (feat_demand_slope_e) sets the product's
 * matched Gaussian prior (feat_demand_np_match), then the fit under that.  0 or -1 as fit_form. */
static int fit_form_pr(feat_demand *m, const feat_demand_row *rows, size_t n, const feat_demand_prior *pr,
                       int asym) {
    if (!pr || pr->np <= 0 || pr->n <= 0) return fit_form(m, rows, n, pr, asym);
    feat_demand w = *m;
    feat_demand_prior weak = *pr, g;
    weak.n = 0, weak.np = 0;
    double e = NAN, se = NAN;
    if (fit_form(&w, rows, n, &weak, asym) == 0) {
        w.ok = 1;
        if (feat_demand_slope_e(&w, &e, &se)) e = se = NAN;
    }
    feat_demand_np_match(pr, e, se, &g);
    return fit_form(m, rows, n, &g, asym);
}

int feat_demand_fit(feat_demand *m, const feat_demand_row *rows, size_t n, double ref, int logit) {
    return feat_demand_fit_prior(m, rows, n, ref, logit, NULL);
}

int feat_demand_fit_prior(feat_demand *m, const feat_demand_row *rows, size_t n, double ref, int logit,
                          const feat_demand_prior *pr) {
    return feat_demand_fit_asym(m, rows, n, ref, logit, pr, g_asym);
}

int feat_demand_fit_asym(feat_demand *m, const feat_demand_row *rows, size_t n, double ref, int logit,
                         const feat_demand_prior *pr, int asym) {
    if (!m || (n && !rows) || !(ref > 0) || logit < -1 || logit > 1)
        return eng_err_set(ENG_EINVAL, "feat_demand_fit: bad argument");
    memset(m, 0, sizeof *m);
    m->ref = ref;
    if (logit < 0) {
        size_t nr = 0, nt = 0;
        for (size_t i = 0; i < n; i++)
            if (row_usable(&rows[i], 0)) nr++, nt += isfinite(rows[i].traffic) && rows[i].traffic > 0;
        logit = nr > 0 && nt >= 0.9 * (double)nr;
    }
    feat_demand f[2];
    int ok[2];
    for (int form = 0; form < 2; form++) {
        memset(&f[form], 0, sizeof f[form]);
        f[form].ref = ref, f[form].logit = logit, f[form].form = form;
        ok[form] = fit_form_pr(&f[form], rows, n, pr, 0) == 0;
    }
    int pick = ok[1] && (!ok[0] || f[1].ll + FORM_MARGIN >= f[0].ll);
    if (!ok[pick]) return ENG_OK;
    *m = f[pick];
    m->ll_sym = m->ll;
    if (asym && (m->used >> FEAT_DEMAND_LAG & 1u)) { /* the loss column, when the likelihood supports it */
        feat_demand a;
        memset(&a, 0, sizeof a);
        a.ref = ref, a.logit = logit, a.form = pick;
        if (fit_form_pr(&a, rows, n, pr, 1) == 0 && (a.used >> FEAT_DEMAND_LOSS & 1u) &&
            (asym == 2 || a.ll >= m->ll + FEAT_DEMAND_ASYM_MARGIN))
            a.ll_sym = m->ll, *m = a;
    }
    double st = 0;
    int c = 0;
    for (size_t i = 0; i < n; i++)
        if (row_usable(&rows[i], logit)) st += logit ? rows[i].traffic : 1.0, c++;
    m->traffic_mean = c ? st / c : 1.0;
    m->ok = 1;
    return ENG_OK;
}

double feat_demand_rate(const feat_demand *m, double price, const feat_demand_ctx *ctx, double dslope, double *se) {
    if (se) *se = NAN;
    if (!m || !m->ok || !(price > 0) || !isfinite(price)) return NAN;
    const double x = g_of(m->form, price, m->ref) - m->xc;
    double eta = m->beta[0] + (m->beta[FEAT_DEMAND_PRICE] + dslope) * x;
    const double lg = ctx ? ctx->lag : NAN;
    const double cv[K] = {0, 0, ctx ? ctx->comp : NAN, lg, 0.0, loss_of(price, m->ref, lg)};
    for (int j = FEAT_DEMAND_COMP; j < K; j++)
        if ((m->used >> j & 1u) && isfinite(cv[j])) eta += m->beta[j] * (cv[j] - m->mean[j]);
    double rate, d; /* d = d rate / d eta */
    if (m->logit) {
        const double q = 1.0 / (1.0 + exp(-eta));
        rate = price * q, d = rate * (1 - q);
    } else {
        rate = price * exp(eta < 30 ? eta : 30), d = rate;
    }
    if (se) *se = d * fabs(x) * sqrt(fmax(m->cov[FEAT_DEMAND_PRICE * K + FEAT_DEMAND_PRICE], 0));
    return rate;
}

double feat_demand_slope_se(const feat_demand *m, int robust) {
    if (!m || !m->ok) return NAN;
    const double v = (robust ? m->rcov : m->cov)[FEAT_DEMAND_PRICE * K + FEAT_DEMAND_PRICE];
    return v > 0 ? sqrt(v) : NAN;
}

int feat_demand_slope_e(const feat_demand *m, double *e, double *se) {
    if (!m || !m->ok) return -1;
    const double v = m->cov[FEAT_DEMAND_PRICE * K + FEAT_DEMAND_PRICE];
    if (!(v > 0)) return -1;
    const double s_lik = 1.0 / v - m->prior_prec; /* the data's own precision on b1 */
    if (!(s_lik > 1e-9 * m->prior_prec) || !isfinite(s_lik)) return -1;
    const double b = (m->beta[FEAT_DEMAND_PRICE] / v - m->prior_prec * m->prior_mean) / s_lik;
    const double sc = m->form ? m->xc : 1.0;
    *e = b * sc;
    *se = fabs(sc) / sqrt(s_lik);
    return isfinite(*e) && *se > 0 && isfinite(*se) ? 0 : -1;
}

void feat_demand_pool_zero(feat_demand_pool *p) { eng_xsum_zero(p->s, FEAT_DEMAND_POOL_NS); }

void feat_demand_pool_add(feat_demand_pool *p, double e, double se, double tau2) {
    if (!isfinite(e) || !(se > 0) || !isfinite(se) || !(tau2 >= 0)) return;
    const double w = 1.0 / (se * se + tau2);
    eng_xsum_add(&p->s[0], 1.0);
    eng_xsum_add(&p->s[1], w);
    eng_xsum_add(&p->s[2], w * e);
    eng_xsum_add(&p->s[3], w * e * e);
    eng_xsum_add(&p->s[4], w * w);
}

double feat_demand_pool_tau2(const feat_demand_pool *p) {
    const double k = eng_xsum_round(&p->s[0]), W = eng_xsum_round(&p->s[1]), We = eng_xsum_round(&p->s[2]);
    const double Wee = eng_xsum_round(&p->s[3]), WW = eng_xsum_round(&p->s[4]);
    if (!(k >= 1) || !(W > 0)) return NAN;
    const double q = Wee - We * We / W, c = W - WW / W;
    const double t = c > 0 ? (q - (k - 1)) / c : 0.0;
    const double fl = FEAT_DEMAND_POOL_TAU_FLOOR * FEAT_DEMAND_POOL_TAU_FLOOR;
    return t > fl ? t : fl;
}

void feat_demand_pool_prior(const feat_demand_pool *p, double tau2, feat_demand_prior *out) {
    memset(out, 0, sizeof *out);
    const double k = eng_xsum_round(&p->s[0]), W = eng_xsum_round(&p->s[1]), We = eng_xsum_round(&p->s[2]);
    if (!(k >= FEAT_DEMAND_POOL_MIN) || !(W > 0) || !(tau2 > 0) || !isfinite(tau2)) return;
    out->mean = We / W;
    out->sd = sqrt(tau2);
    out->n = (int)k;
}

int feat_demand_pool_run(const double *e, const double *se, size_t n, int (*reduce)(eng_xsum *s, size_t ns),
                         feat_demand_prior *out) {
    feat_demand_pool p;
    int st;
    memset(out, 0, sizeof *out);
    feat_demand_pool_zero(&p);
    for (size_t i = 0; i < n; i++) feat_demand_pool_add(&p, e[i], se[i], 0.0);
    if (reduce && (st = reduce(p.s, FEAT_DEMAND_POOL_NS))) return st;
    const double t2 = feat_demand_pool_tau2(&p);
    feat_demand_pool_zero(&p);
    for (size_t i = 0; i < n; i++) feat_demand_pool_add(&p, e[i], se[i], t2);
    if (reduce && (st = reduce(p.s, FEAT_DEMAND_POOL_NS))) return st;
    feat_demand_pool_prior(&p, t2, out);
    return 0;
}

void feat_demand_prior_centre(const feat_demand_prior *pr, double sd, feat_demand_prior *out) {
    if (!pr) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = *pr;
    out->np = 0;
    if (out->n > 0 && isfinite(sd) && !(out->sd >= sd)) out->sd = sd;
}

void feat_demand_rows_history(const db_history *h, int p, double ref, double inc, feat_demand_row *rows, size_t *n,
                              feat_demand_ctx *now) {
    const int T = h->n_periods;
    size_t k = 0;
    double last_comp = NAN;
    for (int t = 0; t < T; t++) {
        const size_t c = (size_t)p * T + t;
        const double cm = db_history_comp_mean(h, c);
        if (cm > 0) last_comp = log(cm / ref);
        if (!h->present[c] || !(h->price[c] > 0) || !isfinite(h->units[c]) || h->units[c] < 0) continue;
        feat_demand_row *r = &rows[k++];
        r->price = h->price[c], r->units = h->units[c], r->traffic = h->traffic[c];
        r->comp = cm > 0 ? log(cm / ref) : NAN;
        r->lag = t > 0 && h->present[c - 1] && h->price[c - 1] > 0 ? log(h->price[c - 1] / ref) : NAN;
        r->promo = h->promo ? h->promo[c] != 0 : 0;
    }
    *n = k;
    if (now) now->comp = last_comp, now->lag = inc > 0 ? log(inc / ref) : NAN;
}

int feat_demand_lag_carries(const feat_demand *m, double z) {
    const int lag = FEAT_DEMAND_LAG;
    if (m->used >> FEAT_DEMAND_LOSS & 1u) return 1; /* the asymmetric form passed its likelihood-ratio test */
    return (m->used >> lag & 1u) && fabs(m->beta[lag]) >= z * sqrt(m->rcov[lag * K + lag]);
}

int feat_demand_gain_loss(const feat_demand *m, double *gain, double *loss) {
    *gain = *loss = NAN;
    if (!m || !m->ok || !(m->used >> FEAT_DEMAND_LAG & 1u)) return -1;
    const int asym = m->used >> FEAT_DEMAND_LOSS & 1u;
    *gain = m->beta[FEAT_DEMAND_LAG];
    *loss = *gain - (asym ? m->beta[FEAT_DEMAND_LOSS] : 0.0);
    return asym;
}

int feat_demand_ref_pool(const feat_demand *ms, size_t n, int (*reduce)(eng_xsum *s, size_t ns), feat_demand_prior *pr) {
    pr->ref_n = 0;
    for (int r = 0; r < 2; r++) pr->ref_mean[r] = NAN, pr->ref_sd[r] = 0;
    double *e = eng_malloc((n ? n : 1) * 2 * sizeof *e), *se = e ? e + (n ? n : 1) : NULL;
    int st = 0;
    for (int r = 0; r < 2 && !st; r++) { /* out of memory: no products, the exchanges still taken */
        const int j = r ? FEAT_DEMAND_LOSS : FEAT_DEMAND_LAG;
        size_t k = 0;
        for (size_t i = 0; e && i < n; i++) /* the robust standard error */
            if (ms[i].ok && (ms[i].used >> j & 1u) && ms[i].rcov[j * K + j] > 0)
                e[k] = ms[i].beta[j], se[k++] = sqrt(ms[i].rcov[j * K + j]);
        feat_demand_prior one;
        if ((st = feat_demand_pool_run(e, se, k, reduce, &one))) break;
        if (one.n <= 0) continue;
        pr->ref_mean[r] = one.mean, pr->ref_sd[r] = one.sd;
        if (!r) pr->ref_n = one.n;
    }
    if (!st && !e) st = eng_err_set(ENG_ENOMEM, "feat_demand_ref_pool: out of memory");
    free(e);
    if (st) pr->ref_n = 0, pr->ref_mean[0] = pr->ref_mean[1] = NAN;
    return st;
}
