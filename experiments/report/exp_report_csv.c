/* exp_report_csv.c - products.csv.gz: the full per-product table beside the bounded report
 * (one row per product, every agent's guarded next price, its estimates and the decision),
 * gzip-compressed with zlib, written to a temp file, fsynced and renamed.  Columns:
 * docs/report.md, "products.csv.gz". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "eng_util.h"
#include "env_action.h"
#include "exp_report.h"
#include "exp_report_int.h"

/* The agents with a price column, in column order. */
static const int csv_agents[] = {EXP_AGENT_FIXED, EXP_AGENT_LINUCB, EXP_AGENT_DQN, EXP_AGENT_DDPG};
#define N_CSV_AGENTS ((int)(sizeof csv_agents / sizeof csv_agents[0]))

/* A growing line buffer; on allocation failure `bad` is set and further appends are dropped. */
typedef struct line_buf {
    char *s;
    size_t n, cap;
    int bad;
} line_buf;

static void lb_put(line_buf *b, const char *s, size_t len) {
    if (b->bad) return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (b->n + len + 1 > cap) cap *= 2;
        char *q = realloc(b->s, cap);
        if (!q) {
            b->bad = 1;
            return;
        }
        b->s = q, b->cap = cap;
    }
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = 0;
}

/* A text field, quoted (RFC 4180) when it holds a comma, quote, CR/LF or edge spaces. */
static void lb_str(line_buf *b, const char *s, int first) {
    if (!first) lb_put(b, ",", 1);
    if (!s) return;
    size_t len = strlen(s);
    if (!strpbrk(s, ",\"\r\n") && !(len && (s[0] == ' ' || s[len - 1] == ' '))) {
        lb_put(b, s, len);
        return;
    }
    lb_put(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        lb_put(b, p, 1);
        if (*p == '"') lb_put(b, "\"", 1);
    }
    lb_put(b, "\"", 1);
}

/* A number: empty when not finite; money (exact = 1) in the shortest form that reads back as
 * the same double (0.9574, not 0.95740000000000003), estimates with 7 significant digits. */
static void lb_num(line_buf *b, double v, int exact) {
    char t[40] = "";
    if (isfinite(v)) {
        snprintf(t, sizeof t, "%.*g", exact ? 15 : 7, v);
        if (exact && strtod(t, NULL) != v) snprintf(t, sizeof t, "%.17g", v);
    }
    lb_put(b, ",", 1);
    lb_put(b, t, strlen(t));
}

static void lb_int(line_buf *b, long v) {
    char t[24];
    snprintf(t, sizeof t, ",%ld", v);
    lb_put(b, t, strlen(t));
}

static void header(line_buf *b) {
    lb_str(b, "product_id", 1);
    lb_str(b, "status", 0);
    lb_str(b, "incumbent_price", 0);
    lb_str(b, "history_value", 0);
    lb_str(b, "history_longterm", 0);
    static const char *const cols[] = {"price",        "guard",      "value",        "longterm",      "uplift",
                                       "uplift_low",   "uplift_high", "uplift_raw",  "poor_overlap",  "failed"};
    for (int k = 0; k < N_CSV_AGENTS; k++)
        for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
            char name[48];
            snprintf(name, sizeof name, "%s_%s", exp_agent_name((exp_agent)csv_agents[k]), cols[c]);
            lb_str(b, name, 0);
        }
    static const char *const tail[] = {"decision_agent",   "decision_price",   "decision_reason", "decision_uplift",
                                       "decision_ci_low",  "decision_ci_high", "note"};
    for (size_t c = 0; c < sizeof tail / sizeof tail[0]; c++) lb_str(b, tail[c], 0);
    lb_put(b, "\n", 1);
}

static void row(line_buf *b, const exp_product_result *p, const exp_report_decision *d) {
    const int ev = exp_rep_evaluated(p);
    lb_str(b, p->product_id, 1);
    lb_str(b, exp_status_name(p->status), 0);
    lb_num(b, p->incumbent_price, 1);
    lb_num(b, ev ? exp_rep_pick(&p->immediate[EXP_AGENT_HISTORY]).value : NAN, 0);
    lb_num(b, ev ? exp_rep_pick(&p->longterm[EXP_AGENT_HISTORY]).value : NAN, 0);
    for (int k = 0; k < N_CSV_AGENTS; k++) {
        const int a = csv_agents[k], failed = (p->agent_failed & (1u << a)) != 0;
        char why[256] = "";
        env_guard_reason_str((uint32_t)p->guard_reasons[a], why, sizeof why);
        const ope_value *s = &p->uplift_shrunk[a], *u = &p->uplift[a];
        lb_num(b, p->price[a], 1);
        lb_str(b, why, 0);
        lb_num(b, ev ? exp_rep_pick(&p->immediate[a]).value : NAN, 0);
        lb_num(b, ev ? exp_rep_pick(&p->longterm[a]).value : NAN, 0);
        lb_num(b, s->available ? s->estimate : NAN, 0);
        lb_num(b, s->available ? s->ci_low : NAN, 0);
        lb_num(b, s->available ? s->ci_high : NAN, 0);
        lb_num(b, u->available ? u->estimate : NAN, 0);
        lb_int(b, ev && p->immediate[a].overlap.poor != 0);
        lb_int(b, failed);
    }
    lb_str(b, d && d->agent ? d->agent : NULL, 0);
    lb_num(b, d && d->agent ? d->price : NAN, 1);
    lb_str(b, d && d->agent ? (d->reason ? d->reason : "") : NULL, 0);
    lb_num(b, d && d->agent ? d->uplift : NAN, 0);
    lb_num(b, d && d->agent ? d->ci_low : NAN, 0);
    lb_num(b, d && d->agent ? d->ci_high : NAN, 0);
    lb_str(b, p->note, 0);
    lb_put(b, "\n", 1);
}

typedef struct csv_ctx {
    const exp_results *r;
    const exp_report_decision *dec;
} csv_ctx;

/* Deflate the table onto f's descriptor (a dup of it, closed by gzclose; nothing goes through
 * f's stdio buffer).  0, ENG_EIO or ENG_ENOMEM. */
static int write_gz(FILE *f, void *vctx) {
    const csv_ctx *c = vctx;
    int st = ENG_OK, fd = dup(fileno(f));
    if (fd < 0) return eng_err_set(ENG_EIO, "products.csv.gz: dup failed");
    gzFile gz = gzdopen(fd, "wb6");
    if (!gz) {
        close(fd);
        return eng_err_set(ENG_EIO, "products.csv.gz: cannot start the gzip stream");
    }
    line_buf b = {0};
    header(&b);
    for (int i = 0; i <= c->r->n_products && !b.bad; i++) {
        if (i < c->r->n_products) row(&b, &c->r->products[i], c->dec ? &c->dec[i] : NULL);
        if (b.n >= (1u << 16) || (i == c->r->n_products && b.n)) { /* flush in 64 KiB pieces */
            if (gzwrite(gz, b.s, (unsigned)b.n) != (int)b.n) {
                st = eng_err_set(ENG_EIO, "products.csv.gz: write failed");
                break;
            }
            b.n = 0;
        }
    }
    if (b.bad && !st) st = eng_err_set(ENG_ENOMEM, "products.csv.gz: out of memory");
    if (gzclose(gz) != Z_OK && !st) st = eng_err_set(ENG_EIO, "products.csv.gz: closing the gzip stream failed");
    free(b.s);
    return st;
}

int exp_report_products_csv(const exp_results *r, const exp_report_decision *dec, const char *path) {
    if (!r || !path) return eng_err_set(ENG_EINVAL, "exp_report_products_csv: NULL argument");
    if (r->n_products < 0 || (r->n_products > 0 && !r->products))
        return eng_err_set(ENG_EINVAL, "exp_report_products_csv: %d products but no product array", r->n_products);
    csv_ctx c = {r, dec};
    return eng_atomic_write(path, write_gz, &c);
}
