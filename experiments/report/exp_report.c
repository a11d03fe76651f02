/* exp_report.c - the HTML page of a comparison run and exp_report_write (HTML + JSON, each
 * written atomically).  Charts: exp_report_svg.c; shared choices: exp_report_data.c; JSON:
 * exp_report_json.c.  Every string that comes from the data is HTML-escaped. */
#include "exp_report.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "eng_hash.h"
#include "eng_util.h"
#include "env_action.h"
#include "exp_report_int.h"

static const char *const CSS =
    "*{box-sizing:border-box}"
    "body{font-family:-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:#1d232b;"
    "background:#f5f6f8;margin:0;line-height:1.45;font-size:15px}"
    "main{max-width:1120px;margin:0 auto;padding:0 20px 40px}"
    "header.top{background:#1d2b3a;color:#fff;padding:22px 0 18px;margin-bottom:18px}"
    "header.top div{max-width:1120px;margin:0 auto;padding:0 20px}"
    "header.top h1{margin:0 0 4px;font-size:24px;font-weight:600}"
    "header.top p{margin:0;color:#c9d3de;font-size:14px}"
    "nav{margin:0 0 16px;font-size:14px}nav a{margin-right:14px;color:#1f6fb4;text-decoration:none}"
    "section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:16px 20px;margin:0 0 18px}"
    "h2{font-size:19px;margin:0 0 10px;font-weight:600}h3{font-size:16px;margin:16px 0 6px;font-weight:600}"
    "dl.facts{display:grid;grid-template-columns:170px 1fr;gap:4px 14px;margin:0 0 12px}"
    "dl.facts dt{color:#5b6673}dl.facts dd{margin:0}"
    ".verdict{background:#eef5fc;border-left:4px solid #1f6fb4;padding:10px 14px;margin:12px 0}"
    ".winner{font-weight:600}"
    ".note{color:#5b6673;font-size:13px}"
    ".scroll{overflow-x:auto}"
    "table{border-collapse:collapse;font-size:13px;margin:6px 0 10px}"
    "th,td{border-bottom:1px solid #e3e6ea;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f0f2f5;font-weight:600;white-space:nowrap}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "td.rec{font-weight:600;background:#f3f8fd}td.agent{white-space:nowrap}"
    ".pid{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}"
    ".flag{display:inline-block;background:#fff1d6;color:#8a5300;border:1px solid #f0c36d;border-radius:3px;"
    "padding:0 4px;font-size:12px;white-space:nowrap}"
    ".bad{color:#b3261e;font-weight:600}"
    ".reasons{color:#5b6673;font-size:12px}"
    ".st-ok{color:#2e7d32}.st-skip_short{color:#8a5300}.st-diverged,.st-failed{color:#b3261e}"
    "figure.chart{margin:8px 0 14px}figure.chart svg{max-width:100%;height:auto;display:block}"
    "figcaption{font-size:14px;font-weight:600;color:#39424d;margin:0 0 4px}"
    ".grid{stroke:#e6e9ed;stroke-width:1}.ref{stroke:#777;stroke-width:1;stroke-dasharray:4 3}"
    ".tick{font-size:11px;fill:#5b6673}.label{font-size:13px;fill:#1d232b}.axis-label{font-size:12px;fill:#39424d}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(470px,1fr));gap:8px}"
    "pre{background:#f5f6f8;padding:8px;font-size:12px;overflow-x:auto}"
    "footer{color:#5b6673;font-size:12px;text-align:center}";

static const int shown_agents[] = {EXP_AGENT_HISTORY, EXP_AGENT_FIXED, EXP_AGENT_LINUCB, EXP_AGENT_DQN,
                                   EXP_AGENT_DDPG};

/* "value [lo, hi]" of one shown estimate (no markup). */
static void fmt_ci(double v, double lo, double hi, char *buf, size_t n) {
    char a[32], b[32], c[32];
    exp_rep_fmt(v, a, sizeof a);
    if (!isfinite(lo) || !isfinite(hi)) {
        snprintf(buf, n, "%s", a);
        return;
    }
    exp_rep_fmt(lo, b, sizeof b);
    exp_rep_fmt(hi, c, sizeof c);
    snprintf(buf, n, "%s [%s, %s]", a, b, c);
}

/* A shown estimate of agent a with its estimator and, where it applies, the fallback flag. */
static void put_shown(FILE *f, const ope_result *r, int a, int lt) {
    exp_shown s = exp_rep_pick(r);
    if (s.kind == EXP_SHOW_NONE) {
        fputs("<span class=\"note\">n/a</span>", f);
        return;
    }
    char buf[128];
    fmt_ci(s.value, s.lo, s.hi, buf, sizeof buf);
    fprintf(f, "%s <span class=\"note\">%s</span>", buf, exp_rep_est_label(a, s.est, lt));
    if (s.kind != EXP_SHOW_NORMAL) {
        fputs(" <span class=\"flag\" title=\"", f);
        exp_rep_esc(f, r->overlap.reason);
        fprintf(f, "\">%s</span>", exp_rep_pick_label(&s));
    }
}

/* Products whose shrunk uplift of agent a has a lower bound above 0. */
static int shrunk_positive(const exp_results *r, int a, int *n_avail) {
    int pos = 0, n = 0;
    for (int i = 0; i < r->n_products; i++) {
        const ope_value *v = &r->products[i].uplift_shrunk[a];
        if (!exp_rep_evaluated(&r->products[i]) || !v->available || !isfinite(v->estimate)) continue;
        n++;
        pos += isfinite(v->ci_low) && v->ci_low > 0;
    }
    if (n_avail) *n_avail = n;
    return pos;
}

/* Summary facts: the pooled one-step evidence (pooled rows, pooled ESS, pooled uplift over the
 * historical prices, shrunk per-product uplifts) and where the long-term FQE comes from. */
static void pooled_evidence(FILE *f, const exp_results *r) {
    int any = 0;
    for (int a = 0; a < EXP_N_AGENTS; a++) any |= r->total_immediate[a].overlap.n > 0 || r->total_uplift[a].available;
    if (any) {
        fputs("<dt>Pooled evidence</dt><dd><table id=\"pooled-evidence\"><tr><th>Agent</th><th>Rows</th>"
              "<th>Pooled ESS</th><th>Pooled uplift over historical [95%]</th>"
              "<th>Products with shrunk uplift &gt; 0 (lower bound)</th></tr>",
              f);
        for (int a = 0; a < EXP_N_AGENTS; a++) {
            const ope_overlap *o = &r->total_immediate[a].overlap;
            const ope_value *u = &r->total_uplift[a];
            char e[32], b[128];
            exp_rep_fmt(o->ess, e, sizeof e);
            if (a == EXP_AGENT_HISTORY) snprintf(b, sizeof b, "reference (on-policy mean)");
            else if (u->available) fmt_ci(u->estimate, u->ci_low, u->ci_high, b, sizeof b);
            else snprintf(b, sizeof b, "n/a");
            int n = 0, pos = a == EXP_AGENT_HISTORY ? 0 : shrunk_positive(r, a, &n);
            fprintf(f, "<tr><td>%s</td><td class=\"num\">%d</td><td class=\"num%s\">%s</td><td class=\"num\">%s</td>",
                    exp_rep_agent_label(a), o->n, o->poor ? " bad" : "", e, b);
            if (a == EXP_AGENT_HISTORY || n == 0) fputs("<td class=\"num\">&mdash;</td></tr>", f);
            else fprintf(f, "<td class=\"num\">%d of %d</td></tr>", pos, n);
        }
        fputs("</table><span class=\"note\">All products' evaluation rows pooled; intervals resample products. "
              "Uplift = the agent's doubly robust value minus the historical prices' on-policy mean on the same "
              "rows; shrunk = empirical-Bayes per product.</span></dd>",
              f);
    }
    fputs("<dt>Long-term FQE</dt><dd id=\"fqe-sample\">", f);
    if (r->fqe_products <= 0) fputs("not computed in this run", f);
    else if (r->fqe_products < r->fqe_eligible)
        fprintf(f, "over a seeded random sample of %d of the %d evaluated products (compare.fqe_products); the FQE "
                   "totals are means over that sample",
                r->fqe_products, r->fqe_eligible);
    else fprintf(f, "all %d evaluated products", r->fqe_products);
    if (r->seconds_fqe > 0) fprintf(f, " (%.1f s)", r->seconds_fqe);
    fputs("</dd>", f);
    if (r->refit_products > 0)
        fprintf(f, "<dt>Refit</dt><dd id=\"refit\">the DQN's and DDPG's next prices of %d products come from the agents "
                   "refitted on every day, the OPE holdout included (compare.refit); the values above are the "
                   "training window's agents'</dd>",
                r->refit_products);
    long nl = 0, ne = 0;
    for (int i = 0; i < r->n_products; i++) nl += r->products[i].n_eval_logged, ne += r->products[i].n_eval_estimated;
    fprintf(f, "<dt>Propensities</dt><dd id=\"propensities\">%ld evaluation rows with the propensity rlprice logged "
               "when it set the price (exact IPS), %ld with the estimated behaviour policy</dd>", nl, ne);
    if (r->explore_on)
        fprintf(f, "<dt>Exploration</dt><dd id=\"exploration\">%d of %d eligible products explored (probability %.4g); "
                   "expected revenue given up %.4g per period, %.3f%% of the night's (engine's estimate)</dd>",
                r->n_explored, r->n_explore_eligible, r->explore_prob, r->explore_cost, 100.0 * r->explore_cost_share);
}

static void summary(FILE *f, const exp_results *r, const exp_rep_counts *c) {
    fputs("<section id=\"summary\"><h2>Summary</h2><dl class=\"facts\">", f);
    fputs("<dt>Run</dt><dd>", f);
    exp_rep_esc(f, r->run_id);
    fputs("</dd><dt>Date</dt><dd>", f);
    exp_rep_esc(f, r->run_date);
    fputs("</dd><dt>Data source</dt><dd>", f);
    exp_rep_esc(f, r->data_source);
    fprintf(f, "</dd><dt>Products</dt><dd id=\"product-counts\">%d in all: %d evaluated (%d with a diverged agent), "
               "%d skipped (short history), %d failed</dd>",
            c->total, c->evaluated, c->diverged, c->skipped, c->failed);
    fprintf(f, "<dt>Poor overlap</dt><dd>%d products on immediate reward, %d on long-term value "
               "(model-based estimates shown for those; see <a href=\"#overlap\">overlap</a>)</dd>",
            c->poor_immediate, c->poor_longterm);
    pooled_evidence(f, r);
    fputs("<dt>Reward</dt><dd id=\"reward\">", f);
    exp_rep_esc(f, r->reward_text && *r->reward_text ? r->reward_text : "(not stated by the run)");
    fputs("</dd></dl>", f);
    char verdict[2048];
    exp_rep_verdict(r, verdict, sizeof verdict);
    fprintf(f, "<p>Best on immediate reward: <span class=\"winner\" id=\"winner-immediate\">%s</span>; "
               "best on long-term value: <span class=\"winner\" id=\"winner-longterm\">%s</span>.</p>",
            exp_rep_agent_label((int)r->winner_immediate), exp_rep_agent_label((int)r->winner_longterm));
    fputs("<p class=\"verdict\" id=\"verdict\">", f);
    exp_rep_esc(f, verdict);
    fputs("</p>", f);
    /* stage times that were measured (a stage that did not run, e.g. push, is left out) */
    const double secs[6] = {r->seconds_load, r->seconds_features, r->seconds_train,
                            r->seconds_ope,  r->seconds_report,   r->seconds_push};
    static const char *const stage[6] = {"load", "features", "training", "evaluation", "report", "push"};
    int any = 0;
    for (int k = 0; k < 6; k++)
        if (secs[k] > 0) fprintf(f, "%s%s %.1f s", any++ ? ", " : "<p class=\"note\">Time: ", stage[k], secs[k]);
    fputs(any ? ".</p></section>\n" : "</section>\n", f);
}

/* Table agent x estimator over the cross-product totals; the recommended cell is highlighted. */
static void value_table(FILE *f, const ope_result *tot, int lt, const char *id, const char *caption) {
    int has[OPE_N_EST] = {0}, any = 0;
    for (int a = 0; a < EXP_N_AGENTS; a++)
        for (int e = 0; e < OPE_N_EST; e++)
            if (tot[a].v[e].available) has[e] = 1, any = 1;
    fprintf(f, "<h3>%s</h3>", caption);
    if (!any) {
        fprintf(f, "<p class=\"note\" id=\"%s\">No estimator was available.</p>", id);
        return;
    }
    fprintf(f, "<div class=\"scroll\"><table id=\"%s\"><tr><th>Agent</th><th>Shown</th>", id);
    for (int e = 0; e < OPE_N_EST; e++)
        if (has[e]) fprintf(f, "<th>%s</th>", ope_est_name((ope_est)e));
    fputs("</tr>\n", f);
    for (size_t k = 0; k < sizeof shown_agents / sizeof shown_agents[0]; k++) {
        int a = shown_agents[k];
        exp_shown s = exp_rep_pick(&tot[a]);
        fprintf(f, "<tr><td class=\"agent\">%s</td><td class=\"agent\">", exp_rep_agent_label(a));
        put_shown(f, &tot[a], a, lt);
        fputs("</td>", f);
        for (int e = 0; e < OPE_N_EST; e++) {
            if (!has[e]) continue;
            const ope_value *v = &tot[a].v[e];
            if (!v->available) {
                fputs("<td class=\"num note\" title=\"", f);
                exp_rep_esc(f, v->note);
                fputs("\">&mdash;</td>", f);
                continue;
            }
            char buf[128];
            fmt_ci(v->estimate, v->ci_low, v->ci_high, buf, sizeof buf);
            fprintf(f, "<td class=\"num%s\">%s</td>", s.est == e ? " rec" : "", buf);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table></div>", f);
}

static void value_chart(FILE *f, const ope_result *tot, int lt, const char *title, const char *xl) {
    const char *labels[EXP_N_AGENTS], *colors[EXP_N_AGENTS];
    double est[EXP_N_AGENTS], lo[EXP_N_AGENTS], hi[EXP_N_AGENTS];
    char lab[EXP_N_AGENTS][64];
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        exp_shown s = exp_rep_pick(&tot[a]);
        snprintf(lab[a], sizeof lab[a], "%s%s%s%s", exp_rep_agent_label(a), s.kind != EXP_SHOW_NONE ? " (" : "",
                 s.kind != EXP_SHOW_NONE ? exp_rep_est_label(a, s.est, lt) : "", s.kind != EXP_SHOW_NONE ? ")" : "");
        labels[a] = lab[a];
        colors[a] = exp_rep_agent_color(a);
        est[a] = s.value, lo[a] = s.lo, hi[a] = s.hi;
    }
    exp_rep_svg_intervals(f, title, EXP_N_AGENTS, labels, colors, est, lo, hi, est[EXP_AGENT_HISTORY],
                          "historical", xl);
}

static void policy_value(FILE *f, const exp_results *r) {
    fputs("<section id=\"policy-value\"><h2>Policy value per agent</h2>"
          "<p class=\"note\">Mean per-product value over the evaluated products, with a bootstrap interval over "
          "products. Each agent is shown with its recommended estimator (doubly robust normally; the "
          "model-based one where overlap is poor). The historical prices are valued by their on-policy mean "
          "reward (they generated the logged rows, so their importance weights are exactly 1); their DM and DR "
          "columns are model-based and shown for reference only. The dashed line is the historical prices.</p>",
          f);
    value_chart(f, r->total_immediate, 0, "Immediate reward per period (recommended one-step estimator)",
                "mean reward per period");
    value_chart(f, r->total_longterm, 1, "Long-term value (recommended trajectory estimator)",
                "discounted return per trajectory");
    value_table(f, r->total_immediate, 0, "value-table-immediate", "Immediate reward: every estimator, value [95% interval]");
    value_table(f, r->total_longterm, 1, "value-table-longterm", "Long-term value: every estimator, value [95% interval]");
    if (r->fqe_products > 0 && r->fqe_products < r->fqe_eligible)
        fprintf(f, "<p class=\"note\" id=\"fqe-note\">fqe: mean over a seeded random sample of %d of %d products "
                   "(compare.fqe_products); the other estimators use every product.</p>",
                r->fqe_products, r->fqe_eligible);
    fputs("</section>\n", f);
}

static double median_of(double *v, int n) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof(double), eng_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int uplift_shrunk_table(FILE *f, const exp_results *r, double **vals, const int *counts);

static int uplift_block(FILE *f, const exp_results *r, int longterm) {
    /* one-step: the empirical-Bayes shrunk uplift where the comparison computed one */
    int shrunk = 0;
    for (int i = 0; i < r->n_products && !longterm && !shrunk; i++)
        for (int a = 1; a < EXP_N_AGENTS; a++) shrunk |= r->products[i].uplift_shrunk[a].available;
    double *vals[EXP_N_AGENTS - 1] = {0};
    int counts[EXP_N_AGENTS - 1] = {0}, st = ENG_OK;
    const char *labels[EXP_N_AGENTS - 1], *colors[EXP_N_AGENTS - 1];
    for (int g = 0; g < EXP_N_AGENTS - 1; g++) {
        int a = g + 1;
        labels[g] = exp_rep_agent_label(a);
        colors[g] = exp_rep_agent_color(a);
        vals[g] = malloc(sizeof(double) * (size_t)(r->n_products > 0 ? r->n_products : 1));
        if (!vals[g]) {
            st = eng_err_set(ENG_ENOMEM, "report: out of memory (uplift)");
            goto done;
        }
        for (int i = 0; i < r->n_products; i++) {
            const exp_product_result *p = &r->products[i];
            const ope_value *sv = &p->uplift_shrunk[a];
            double u = shrunk ? (exp_rep_evaluated(p) && !(p->agent_failed & (1u << a)) && sv->available
                                     ? sv->estimate
                                     : NAN)
                              : exp_rep_uplift(p, a, longterm);
            if (isfinite(u)) vals[g][counts[g]++] = u;
        }
    }
    exp_rep_svg_strips(f, longterm ? "Per-product uplift over the historical prices: long-term value"
                       : shrunk   ? "Per-product shrunk uplift over the historical prices: immediate reward"
                                  : "Per-product uplift over the historical prices: immediate reward",
                       EXP_N_AGENTS - 1, labels, colors, (const double *const *)vals, counts,
                       longterm ? "agent value minus historical value (discounted return)"
                       : shrunk ? "empirical-Bayes uplift (reward per period)"
                                : "agent value minus historical value (reward per period)");
    if (shrunk) return uplift_shrunk_table(f, r, vals, counts);
    fprintf(f, "<table id=\"uplift-table-%s\"><tr><th>Agent</th><th>Products</th><th>Median uplift</th>"
               "<th>Products with uplift &gt; 0</th></tr>",
            longterm ? "longterm" : "immediate");
    for (int g = 0; g < EXP_N_AGENTS - 1; g++) {
        int pos = 0, n = counts[g];
        for (int i = 0; i < n; i++) pos += vals[g][i] > 0;
        double med = median_of(vals[g], n); /* sorts in place; the values are not used afterwards */
        char m[32], p[32];
        exp_rep_fmt(med, m, sizeof m);
        exp_rep_fmt_pct(n > 0 ? (double)pos / n : NAN, p, sizeof p);
        fprintf(f, "<tr><td>%s</td><td class=\"num\">%d</td><td class=\"num\">%s</td><td class=\"num\">%s</td></tr>",
                labels[g], n, m, p);
    }
    fputs("</table>\n", f);
done:
    for (int g = 0; g < EXP_N_AGENTS - 1; g++) free(vals[g]);
    return st;
}

/* One-step uplift table and interval chart from the comparison's per-product uplifts: shrunk
 * median and products whose shrunk lower bound is above 0, raw paired median, the pooled uplift;
 * then the products with the highest shrunk lower bounds with their shrunk and raw intervals.
 * Frees vals. */
static int uplift_shrunk_table(FILE *f, const exp_results *r, double **vals, const int *counts) {
    enum { TOP = 12 };
    int st = ENG_OK;
    double *raw = malloc(sizeof(double) * (size_t)(r->n_products > 0 ? r->n_products : 1));
    if (!raw) st = eng_err_set(ENG_ENOMEM, "report: out of memory (uplift)");
    if (!st)
        fputs("<table id=\"uplift-table-immediate\"><tr><th>Agent</th><th>Products</th><th>Median shrunk uplift</th>"
              "<th>Shrunk lower bound &gt; 0</th><th>Median raw uplift</th><th>Pooled uplift [95%]</th></tr>",
              f);
    for (int g = 0; g < EXP_N_AGENTS - 1 && !st; g++) {
        int a = g + 1, nr = 0, n_avail = 0, pos = shrunk_positive(r, a, &n_avail);
        for (int i = 0; i < r->n_products; i++) {
            const exp_product_result *p = &r->products[i];
            if (exp_rep_evaluated(p) && !(p->agent_failed & (1u << a)) && p->uplift[a].available &&
                isfinite(p->uplift[a].estimate))
                raw[nr++] = p->uplift[a].estimate;
        }
        char m[32], mr[32], pl[128];
        exp_rep_fmt(median_of(vals[g], counts[g]), m, sizeof m);
        exp_rep_fmt(median_of(raw, nr), mr, sizeof mr);
        const ope_value *u = &r->total_uplift[a];
        if (u->available) fmt_ci(u->estimate, u->ci_low, u->ci_high, pl, sizeof pl);
        else snprintf(pl, sizeof pl, "n/a");
        fprintf(f, "<tr><td>%s</td><td class=\"num\">%d</td><td class=\"num\">%s</td><td class=\"num\">%d of %d</td>"
                   "<td class=\"num\">%s</td><td class=\"num\">%s</td></tr>",
                exp_rep_agent_label(a), counts[g], m, pos, n_avail, mr, pl);
    }
    if (!st) fputs("</table>\n", f);
    /* intervals: the TOP (product, agent) pairs by shrunk lower bound, shrunk and raw */
    const char *labels[2 * TOP], *colors[2 * TOP];
    char lab[2 * TOP][96];
    double est[2 * TOP], lo[2 * TOP], hi[2 * TOP];
    int used[TOP][2], k = 0;
    for (; k < TOP && !st; k++) {
        int bi = -1, ba = -1;
        double best = -INFINITY;
        for (int i = 0; i < r->n_products; i++) {
            const exp_product_result *p = &r->products[i];
            if (!exp_rep_evaluated(p)) continue;
            for (int a = 1; a < EXP_N_AGENTS; a++) {
                const ope_value *v = &p->uplift_shrunk[a];
                if ((p->agent_failed & (1u << a)) || !v->available || !isfinite(v->ci_low) || !(v->ci_low > best))
                    continue;
                int dup = 0;
                for (int j = 0; j < k; j++) dup |= used[j][0] == i && used[j][1] == a;
                if (!dup) best = v->ci_low, bi = i, ba = a;
            }
        }
        if (bi < 0) break;
        used[k][0] = bi, used[k][1] = ba;
        const exp_product_result *p = &r->products[bi];
        for (int s = 0; s < 2; s++) {
            const ope_value *v = s ? &p->uplift[ba] : &p->uplift_shrunk[ba];
            snprintf(lab[2 * k + s], sizeof lab[0], "%.40s %s %s", p->product_id, exp_agent_name((exp_agent)ba),
                     s ? "raw" : "shrunk");
            labels[2 * k + s] = lab[2 * k + s];
            colors[2 * k + s] = s ? "#9aa3ad" : exp_rep_agent_color(ba);
            est[2 * k + s] = v->available ? v->estimate : NAN;
            lo[2 * k + s] = v->available ? v->ci_low : NAN;
            hi[2 * k + s] = v->available ? v->ci_high : NAN;
        }
    }
    if (!st && k > 0)
        exp_rep_svg_intervals(f, "Products with the highest shrunk lower bounds: shrunk and raw uplift, 95% intervals",
                              2 * k, labels, colors, est, lo, hi, 0.0, "no change", "uplift (reward per period)");
    free(raw);
    for (int g = 0; g < EXP_N_AGENTS - 1; g++) free(vals[g]);
    return st;
}

static int uplift(FILE *f, const exp_results *r) {
    fputs("<section id=\"uplift\"><h2>Uplift per product</h2><p class=\"note\">For each evaluated product, the "
          "agent's estimated value minus that of the historical prices. Immediate reward: the agent's doubly "
          "robust value minus the historical prices' on-policy mean on the same rows (raw), and its "
          "empirical-Bayes shrinkage across products (shrunk, what the nightly deployment rule uses); "
          "long-term: the difference under the same estimator. Box: "
          "quartiles and median; dots: products; dashed line: no change. Agents that failed on a product "
          "are left out for it.</p>",
          f);
    int st = uplift_block(f, r, 0);
    if (!st) st = uplift_block(f, r, 1);
    fputs("</section>\n", f);
    return st;
}

static void trajectories(FILE *f, const exp_results *r) {
    fputs("<section id=\"trajectories\"><h2>Example price trajectories</h2><p class=\"note\">The historical "
          "price of each period against the guarded price each agent would have set given the state then "
          "(gaps: no state).</p><div class=\"cards\">",
          f);
    int shown = 0;
    for (int i = 0; i < r->n_products && shown < EXP_REP_MAX_TRAJ; i++) {
        const exp_product_result *p = &r->products[i];
        if (!exp_rep_evaluated(p) || p->n_periods < 2 || !p->hist_price) continue;
        const char *labels[EXP_N_AGENTS], *colors[EXP_N_AGENTS];
        const float *ys[EXP_N_AGENTS];
        for (int a = 0; a < EXP_N_AGENTS; a++) {
            labels[a] = exp_rep_agent_label(a);
            colors[a] = exp_rep_agent_color(a);
            ys[a] = a == EXP_AGENT_HISTORY ? p->hist_price : p->agent_price[a];
        }
        char title[300];
        snprintf(title, sizeof title, "Product %s: prices over %d periods", p->product_id ? p->product_id : "?",
                 p->n_periods);
        exp_rep_svg_lines(f, title, EXP_N_AGENTS, labels, colors, ys, p->n_periods, "price");
        shown++;
    }
    fputs("</div>", f);
    if (!shown) fputs("<p class=\"note\">No evaluated product has a price trajectory.</p>", f);
    fputs("</section>\n", f);
}

static int overlap(FILE *f, const exp_results *r) {
    int st = ENG_OK, np = r->n_products > 0 ? r->n_products : 1;
    double *ess = malloc(sizeof(double) * (size_t)np), *share = malloc(sizeof(double) * (size_t)np);
    if (!ess || !share) {
        st = eng_err_set(ENG_ENOMEM, "report: out of memory (overlap)");
        goto done;
    }
    fputs("<section id=\"overlap\"><h2>Overlap diagnostics</h2><p class=\"note\">Importance weights of each agent "
          "against the logged (historical) policy, immediate-reward estimators. Effective sample size (ESS) as a "
          "share of the periods, the largest weight's share of all weight, and the agent's probability mass on "
          "prices the logged policy never used. Where the overlap rule fails the importance-sampling estimates "
          "are not trusted and the model-based estimate is shown instead, flagged.</p>"
          "<table id=\"overlap-agents\"><tr><th>Agent</th><th>Products</th><th>Median ESS share</th>"
          "<th>Median max-weight share</th><th>Mean unsupported mass</th><th>Poor (immediate)</th>"
          "<th>Poor (long-term)</th></tr>",
          f);
    for (int a = EXP_AGENT_FIXED; a < EXP_N_AGENTS; a++) {
        int n = 0, poor_i = 0, poor_l = 0;
        double uns = 0;
        for (int i = 0; i < r->n_products; i++) {
            const exp_product_result *p = &r->products[i];
            if (!exp_rep_evaluated(p) || (p->agent_failed & (1u << a))) continue;
            const ope_overlap *o = &p->immediate[a].overlap;
            poor_i += o->poor != 0;
            poor_l += p->longterm[a].overlap.poor != 0;
            if (o->n <= 0) continue;
            ess[n] = o->ess_frac, share[n] = o->max_w_share, uns += o->unsupported_mass, n++;
        }
        char e[32], s[32], u[32];
        exp_rep_fmt_pct(median_of(ess, n), e, sizeof e);
        exp_rep_fmt_pct(median_of(share, n), s, sizeof s);
        exp_rep_fmt_pct(n ? uns / n : NAN, u, sizeof u);
        fprintf(f, "<tr><td>%s</td><td class=\"num\">%d</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                   "<td class=\"num\">%s</td><td class=\"num%s\">%d</td><td class=\"num%s\">%d</td></tr>",
                exp_rep_agent_label(a), n, e, s, u, poor_i ? " bad" : "", poor_i, poor_l ? " bad" : "", poor_l);
    }
    fputs("</table><h3>Products with poor overlap</h3>", f);
    int rows = 0, more = 0;
    for (int i = 0; i < r->n_products; i++) {
        const exp_product_result *p = &r->products[i];
        if (!exp_rep_evaluated(p)) continue;
        for (int a = EXP_AGENT_FIXED; a < EXP_N_AGENTS; a++)
            for (int lt = 0; lt < 2; lt++) {
                const ope_result *res = lt ? &p->longterm[a] : &p->immediate[a];
                if (!res->overlap.poor) continue;
                if (rows >= EXP_REP_MAX_ROWS) {
                    more++;
                    continue;
                }
                if (!rows++)
                    fputs("<div class=\"scroll\"><table id=\"overlap-flagged\"><tr><th>Product</th><th>Agent</th>"
                          "<th>Horizon</th><th>ESS share</th><th>Max-weight share</th><th>Unsupported mass</th>"
                          "<th>Why</th><th>Shown estimate</th></tr>\n",
                          f);
                char e[32], s[32], u[32];
                exp_rep_fmt_pct(res->overlap.ess_frac, e, sizeof e);
                exp_rep_fmt_pct(res->overlap.max_w_share, s, sizeof s);
                exp_rep_fmt_pct(res->overlap.unsupported_mass, u, sizeof u);
                fputs("<tr><td class=\"pid\">", f);
                exp_rep_esc(f, p->product_id);
                fprintf(f, "</td><td>%s</td><td>%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                           "<td class=\"num\">%s</td><td>",
                        exp_rep_agent_label(a), lt ? "long-term" : "immediate", e, s, u);
                exp_rep_esc(f, res->overlap.reason);
                fputs("</td><td>", f);
                put_shown(f, res, a, lt);
                fputs("</td></tr>\n", f);
            }
    }
    if (rows) fputs("</table></div>", f);
    else fputs("<p class=\"note\" id=\"overlap-flagged\">No product has poor overlap.</p>", f);
    if (more)
        fprintf(f, "<p class=\"note\">%d more flagged rows are not shown; every product's poor-overlap flags are in "
                   "products.csv.gz (columns &lt;agent&gt;_poor_overlap).</p>",
                more);
    fputs("</section>\n", f);
done:
    free(ess);
    free(share);
    return st;
}

static void product_row(FILE *f, const exp_product_result *p, const char *role) {
    char buf[64];
    fputs("<tr><td class=\"pid\">", f);
    exp_rep_esc(f, p->product_id);
    if (role) fprintf(f, " <span class=\"note\">%s</span>", role);
    fprintf(f, "</td><td class=\"st-%s\">%s</td>", exp_status_name(p->status), exp_status_name(p->status));
    exp_rep_fmt_price(p->incumbent_price, buf, sizeof buf);
    fprintf(f, "<td class=\"num\">%s</td>", buf);
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        fputs("<td>", f);
        if (p->agent_failed & (1u << a)) fputs("<span class=\"bad\">failed: held at the incumbent</span><br>", f);
        if (a != EXP_AGENT_HISTORY) {
            exp_rep_fmt_price(p->price[a], buf, sizeof buf);
            fprintf(f, "<b>%s</b>", buf);
            char why[256];
            env_guard_reason_str((uint32_t)p->guard_reasons[a], why, sizeof why);
            if (*why) {
                fputs(" <span class=\"reasons\">", f);
                exp_rep_esc(f, why);
                fputs("</span>", f);
            }
            fputs("<br>", f);
        }
        fputs("now: ", f);
        put_shown(f, &p->immediate[a], a, 0);
        if (a != EXP_AGENT_HISTORY && (p->uplift_shrunk[a].available || p->uplift[a].available)) {
            char b1[128], b2[128];
            const ope_value *s = &p->uplift_shrunk[a], *u = &p->uplift[a];
            if (s->available) fmt_ci(s->estimate, s->ci_low, s->ci_high, b1, sizeof b1);
            else snprintf(b1, sizeof b1, "n/a");
            if (u->available) fmt_ci(u->estimate, u->ci_low, u->ci_high, b2, sizeof b2);
            else snprintf(b2, sizeof b2, "n/a");
            fprintf(f, "<br>uplift: <span%s>%s</span> <span class=\"note\">shrunk; raw %s</span>",
                    s->available && isfinite(s->ci_low) && s->ci_low > 0 ? " class=\"winner\"" : "", b1, b2);
        }
        fputs("<br>long: ", f);
        put_shown(f, &p->longterm[a], a, 1);
        fputs("</td>", f);
    }
    fputs("</tr>\n", f);
}

/* The listed products (exp_rep_select): all up to EXP_REP_LIST_ALL, else the top and bottom by
 * deployment score and an even sample; every product is in products.csv.gz.  0 or ENG_ENOMEM. */
static int products(FILE *f, const exp_results *r) {
    int *idx = NULL, n = 0;
    unsigned char *role = NULL;
    int st = exp_rep_select(r, &idx, &role, &n);
    if (st) return st;
    const int some = n < r->n_products;
    fputs("<section id=\"products\"><h2>Products</h2><p class=\"note\">Per product: the guarded price each agent "
          "would set next with the guardrails that shaped it, and its shown estimates (now: immediate reward per "
          "period; uplift: over the historical prices' on-policy mean, empirical-Bayes shrunk and raw paired, "
          "95% intervals; long: discounted return).</p>",
          f);
    if (some)
        fprintf(f, "<p class=\"note\" id=\"product-selection\">%d of %d products are listed: the %d with the highest "
                   "and the %d with the lowest deployment score (the best lower bound of the shrunk uplift among the "
                   "agents) and %d evenly spaced among the others (marked top, bottom, sample). Every product, with "
                   "each agent's price and estimates and the decision, is in <a href=\"products.csv.gz\">"
                   "products.csv.gz</a> beside this page.</p>",
                n, r->n_products, EXP_REP_TOP, EXP_REP_TOP, EXP_REP_SAMPLE);
    fputs("<div class=\"scroll\"><table id=\"product-table\"><tr><th>Product</th><th>Status</th><th>Incumbent</th>", f);
    for (int a = 0; a < EXP_N_AGENTS; a++) fprintf(f, "<th>%s</th>", exp_rep_agent_label(a));
    fputs("</tr>\n", f);
    for (int k = 0; k < n; k++) product_row(f, &r->products[idx[k]], some ? exp_rep_role_name(role[k]) : NULL);
    fputs("</table></div></section>\n", f);
    free(idx);
    free(role);
    return ENG_OK;
}

static void skipped(FILE *f, const exp_results *r) {
    fputs("<section id=\"skipped\"><h2>Skipped and failed products</h2>", f);
    int rows = 0, more = 0;
    for (int i = 0; i < r->n_products; i++) {
        const exp_product_result *p = &r->products[i];
        if (p->status == EXP_OK && !p->agent_failed) continue;
        if (rows >= EXP_REP_MAX_ROWS) {
            more++;
            continue;
        }
        if (!rows++)
            fputs("<div class=\"scroll\"><table id=\"skipped-table\"><tr><th>Product</th><th>Status</th>"
                  "<th>Agents failed</th><th>Why</th></tr>\n",
                  f);
        fputs("<tr><td class=\"pid\">", f);
        exp_rep_esc(f, p->product_id);
        fprintf(f, "</td><td class=\"st-%s\">%s</td><td>", exp_status_name(p->status), exp_status_name(p->status));
        int first = 1;
        for (int a = 0; a < EXP_N_AGENTS; a++)
            if (p->agent_failed & (1u << a)) fprintf(f, "%s%s", first ? "" : ", ", exp_rep_agent_label(a)), first = 0;
        if (first) fputs("&mdash;", f);
        fputs("</td><td>", f);
        exp_rep_esc(f, *p->note ? p->note : "(no reason recorded)");
        fputs("</td></tr>\n", f);
    }
    if (rows) fputs("</table></div>", f);
    else fputs("<p class=\"note\" id=\"skipped-table\">Every product was trained and evaluated.</p>", f);
    if (more)
        fprintf(f, "<p class=\"note\">%d more are not shown; products.csv.gz has every product's status and note.</p>",
                more);
    fputs("</section>\n", f);
}

/* One configuration line, its value replaced by *** when it is secret. */
static int config_line(void *ctx, char *line, int eq, int secret) {
    FILE *f = ctx;
    if (eq >= 0 && secret) snprintf(line + eq + 1, 1024 - (size_t)(eq + 1), "***");
    exp_rep_esc(f, line);
    fputc('\n', f);
    return 0;
}

/* The configuration, with the value of any key naming a password or secret replaced. */
static void config(FILE *f, const exp_results *r) {
    fputs("<section id=\"config\"><h2>Configuration</h2><details><summary>key = value lines of this run</summary><pre>", f);
    exp_rep_config_lines(r->config_text, config_line, f);
    fputs("</pre></details></section>\n", f);
}

int exp_report_html(const exp_results *r, FILE *f) {
    if (!r || !f) return eng_err_set(ENG_EINVAL, "exp_report_html: NULL argument");
    exp_rep_counts c = exp_rep_count(r);
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>rlprice report: ",
          f);
    exp_rep_esc(f, r->run_id);
    fprintf(f, "</title><style>%s</style></head><body>\n", CSS);
    fputs("<header class=\"top\"><div><h1>Pricing agents: offline comparison</h1><p>Run ", f);
    exp_rep_esc(f, r->run_id);
    fputs(" &middot; ", f);
    exp_rep_esc(f, r->run_date);
    fputs(" &middot; ", f);
    exp_rep_esc(f, r->data_source);
    fputs("</p></div></header><main>\n<nav><a href=\"#summary\">Summary</a><a href=\"#policy-value\">Policy value</a>"
          "<a href=\"#uplift\">Uplift</a><a href=\"#trajectories\">Trajectories</a><a href=\"#overlap\">Overlap</a>"
          "<a href=\"#products\">Products</a><a href=\"#skipped\">Skipped</a><a href=\"#config\">Configuration</a></nav>\n",
          f);
    summary(f, r, &c);
    policy_value(f, r);
    int st = uplift(f, r);
    if (st) return st;
    trajectories(f, r);
    st = overlap(f, r);
    if (st) return st;
    if ((st = products(f, r))) return st;
    skipped(f, r);
    config(f, r);
    fputs("<footer>Generated by rlprice. Offline estimates from logged data; see docs/ope.md and docs/report.md "
          "for the estimators and the overlap rule.</footer></main></body></html>\n",
          f);
    return ferror(f) ? eng_err_set(ENG_EIO, "report: write error") : ENG_OK;
}

static int html_cb(FILE *f, void *ctx) { return exp_report_html((const exp_results *)ctx, f); }

typedef struct json_ctx {
    const char *text;
} json_ctx;

static int json_cb(FILE *f, void *ctx) {
    const json_ctx *j = ctx;
    if (fputs(j->text, f) < 0 || fputc('\n', f) == EOF) return eng_err_set(ENG_EIO, "report: write error (JSON)");
    return ENG_OK;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = eng_malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int exp_report_write(const exp_results *r, const char *dir, char **html_path, char **json_path) {
    return exp_report_write_ex(r, NULL, dir, html_path, json_path);
}

int exp_report_write_ex(const exp_results *r, const exp_report_decision *dec, const char *dir, char **html_path,
                        char **json_path) {
    if (html_path) *html_path = NULL;
    if (json_path) *json_path = NULL;
    if (!r || !dir || !*dir) return eng_err_set(ENG_EINVAL, "exp_report_write: NULL results or directory");
    if (r->n_products < 0 || (r->n_products > 0 && !r->products))
        return eng_err_set(ENG_EINVAL, "exp_report_write: %d products but no product array", r->n_products);
    int st = ENG_OK;
    json_object *doc = NULL;
    char *hp = join(dir, "report.html"), *jp = join(dir, "report.json"), *cp = join(dir, "products.csv.gz");
    if (!hp || !jp || !cp) {
        st = ENG_ENOMEM;
        goto done;
    }
    if ((st = eng_atomic_write(hp, html_cb, (void *)r)) != ENG_OK) goto done;
    if ((st = exp_report_products_csv(r, dec, cp)) != ENG_OK) goto done;
    if (!(doc = exp_report_json(r))) {
        st = ENG_ENOMEM;
        goto done;
    }
    json_ctx j = {json_object_to_json_string_ext(doc, (r->n_products > EXP_REP_MAX_ROWS ? JSON_C_TO_STRING_PLAIN
                                                                                         : JSON_C_TO_STRING_PRETTY) |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE)};
    if (!j.text) {
        st = eng_err_set(ENG_ENOMEM, "report: out of memory (JSON text)");
        goto done;
    }
    if ((st = eng_atomic_write(jp, json_cb, &j)) != ENG_OK) goto done;
    if (html_path) *html_path = hp, hp = NULL;
    if (json_path) *json_path = jp, jp = NULL;
done:
    json_object_put(doc);
    free(cp);
    free(hp);
    free(jp);
    return st;
}
