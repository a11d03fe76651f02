/* exp_report_curves.c - a small page of line charts (the closed-loop backtest's cumulative
 * curves), drawn with the report's own SVG code (exp_report.h). */
#include "exp_report_int.h"

#include "eng_file.h"
#include "exp_report.h"

#include <string.h>

static const char *const curve_colors[] = {"#1f5fa8", "#7a7a7a", "#2e7d32", "#c2410c", "#7b3fa0",
                                           "#b8860b", "#0f766e", "#b3261e", "#4b5563", "#db2777"};
#define N_CURVE_COLORS (int)(sizeof curve_colors / sizeof curve_colors[0])

static const char curves_css[] =
    "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:18px;color:#1d232b;max-width:1100px}"
    "h1{font-size:20px}p{font-size:14px;line-height:1.4}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(470px,1fr));gap:8px}"
    "figure.chart{margin:8px 0 14px}figure.chart svg{max-width:100%;height:auto;display:block}"
    "figcaption{font-size:14px;font-weight:600;color:#39424d;margin:0 0 4px}"
    ".grid{stroke:#e6e9ed;stroke-width:1}.tick{font-size:11px;fill:#5b6673}"
    ".axis-label{font-size:12px;fill:#39424d}";

typedef struct curves_ctx {
    const char *title;
    const char *const *paragraphs;
    int n_charts;
    const exp_report_chart *charts;
} curves_ctx;

/* The page body; 0 or ENG_EIO. */
static int write_curves(FILE *f, void *vctx) {
    const curves_ctx *c = vctx;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>", f);
    exp_rep_esc(f, c->title);
    fprintf(f, "</title><style>%s</style></head><body>\n<h1>", curves_css);
    exp_rep_esc(f, c->title);
    fputs("</h1>\n", f);
    for (int k = 0; c->paragraphs && c->paragraphs[k]; k++) {
        fputs("<p>", f);
        exp_rep_esc(f, c->paragraphs[k]);
        fputs("</p>\n", f);
    }
    fputs("<div class=\"cards\">\n", f);
    for (int k = 0; k < c->n_charts; k++) {
        const exp_report_chart *ch = &c->charts[k];
        const char *colors[N_CURVE_COLORS];
        int n = ch->n < N_CURVE_COLORS ? ch->n : N_CURVE_COLORS;
        for (int s = 0; s < n; s++) colors[s] = curve_colors[s];
        exp_rep_svg_lines(f, ch->title, n, ch->labels, colors, ch->ys, ch->n_points, ch->y_label);
    }
    fputs("</div>\n</body></html>\n", f);
    return ferror(f) ? ENG_EIO : ENG_OK;
}

int exp_report_curves_html(const char *path, const char *title, const char *const *paragraphs, int n_charts,
                           const exp_report_chart *charts) {
    if (!path || !title || n_charts < 0 || (n_charts && !charts))
        return eng_err_set(ENG_EINVAL, "exp_report_curves_html: NULL argument");
    curves_ctx c = {title, paragraphs, n_charts, charts};
    return eng_atomic_write(path, write_curves, &c);
}
