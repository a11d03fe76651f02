/* exp_report_svg.c - inline SVG charts for the HTML report (no scripts, no external files):
 * interval (dot + CI bar) charts, box + strip plots and line charts.  See exp_report_int.h. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_hash.h"
#include "exp_report_int.h"

#define CHART_W 720.0
#define LEFT 150.0
#define RIGHT 24.0
#define LABEL_CHAR_W 7.2 /* average advance of a 13px label character */

/* Left edge of the plot area: wide enough for the longest row label (at least LEFT, at most
 * half the chart, where longer labels are clipped). */
static double label_left(int n, const char *const *labels) {
    size_t longest = 0;
    for (int i = 0; i < n; i++)
        if (labels[i] && strlen(labels[i]) > longest) longest = strlen(labels[i]);
    return fmin(CHART_W / 2, fmax(LEFT, 16.0 + LABEL_CHAR_W * (double)longest));
}

typedef struct axis {
    double lo, hi, step; /* tick range and spacing */
} axis;

/* "Nice" ticks (1, 2, 5 x 10^k) covering [lo, hi]. */
static axis nice_axis(double lo, double hi) {
    axis ax;
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    if (hi < lo) {
        double t = lo;
        lo = hi, hi = t;
    }
    if (hi - lo < 1e-12 * (fabs(lo) + fabs(hi)) || hi == lo) {
        double d = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1.0;
        lo -= d, hi += d;
    }
    double raw = (hi - lo) / 5.0, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    double step = (f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0) * mag;
    ax.lo = floor(lo / step) * step;
    ax.hi = ceil(hi / step) * step;
    ax.step = step;
    return ax;
}

static double xmap(const axis *ax, double v, double x0, double x1) {
    return x0 + (v - ax->lo) / (ax->hi - ax->lo) * (x1 - x0);
}

/* The title goes first, as the figure's caption, so that it reads as the chart's heading. */
static void open_svg(FILE *f, const char *title, double w, double h) {
    fputs("<figure class=\"chart\"><figcaption>", f);
    exp_rep_esc(f, title);
    fprintf(f, "</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" "
               "width=\"%.0f\" height=\"%.0f\" role=\"img\" aria-label=\"",
            w, h, w, h);
    exp_rep_esc(f, title);
    fputs("\"><title>", f);
    exp_rep_esc(f, title);
    fputs("</title>\n", f);
}

static void close_svg(FILE *f) { fputs("</svg></figure>\n", f); }

/* A tick label: the report's number format without trailing zeros ("0.05" for 0.05000). */
static void tick_fmt(double v, char *buf, size_t n) {
    exp_rep_fmt(v, buf, n);
    if (!strchr(buf, '.') || strchr(buf, 'e')) return;
    char *e = buf + strlen(buf);
    while (e > buf && e[-1] == '0') *--e = 0;
    if (e > buf && e[-1] == '.') e[-1] = 0;
}

/* Vertical grid lines with tick labels along the bottom (y0..y1 is the plot height). */
static void x_axis(FILE *f, const axis *ax, double x0, double x1, double y0, double y1, const char *label) {
    for (double t = ax->lo; t <= ax->hi + ax->step * 1e-6; t += ax->step) {
        double tv = fabs(t) < ax->step * 1e-9 ? 0.0 : t;
        double x = xmap(ax, tv, x0, x1);
        char s[32];
        tick_fmt(tv, s, sizeof s);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%s</text>\n",
                x, y0, x, y1, x, y1 + 14, s);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"axis-label\" text-anchor=\"middle\">", (x0 + x1) / 2, y1 + 32);
    exp_rep_esc(f, label);
    fputs("</text>\n", f);
}

void exp_rep_svg_intervals(FILE *f, const char *title, int n, const char *const *labels,
                           const char *const *colors, const double *est, const double *lo,
                           const double *hi, double ref, const char *ref_label, const char *x_label) {
    double mn = INFINITY, mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        const double vals[3] = {est[i], lo[i], hi[i]};
        for (int k = 0; k < 3; k++)
            if (isfinite(vals[k])) mn = fmin(mn, vals[k]), mx = fmax(mx, vals[k]);
    }
    if (isfinite(ref)) mn = fmin(mn, ref), mx = fmax(mx, ref);
    axis ax = nice_axis(mn, mx);
    const double row = 30.0, top = 16.0, x0 = label_left(n, labels), x1 = CHART_W - RIGHT;
    double y1 = top + row * n, h = y1 + 44;
    open_svg(f, title, CHART_W, h);
    x_axis(f, &ax, x0, x1, top - 6, y1, x_label);
    if (isfinite(ref)) {
        double x = xmap(&ax, ref, x0, x1);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"ref\"/>", x, top - 10, x, y1);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"start\">", x + 3, top - 1);
        exp_rep_esc(f, ref_label);
        fputs("</text>\n", f);
    }
    for (int i = 0; i < n; i++) {
        double y = top + row * i + row / 2;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"label\" text-anchor=\"end\">", x0 - 8, y + 4);
        exp_rep_esc(f, labels[i]);
        fputs("</text>", f);
        if (!isfinite(est[i])) {
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">no estimate</text>\n", x0 + 4, y + 4);
            continue;
        }
        if (isfinite(lo[i]) && isfinite(hi[i])) {
            double a = xmap(&ax, lo[i], x0, x1), b = xmap(&ax, hi[i], x0, x1);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>"
                       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>"
                       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>",
                    a, y, b, y, colors[i], a, y - 6, a, y + 6, colors[i], b, y - 6, b, y + 6, colors[i]);
        }
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5.5\" fill=\"%s\" stroke=\"#fff\" stroke-width=\"1.5\"/>\n",
                xmap(&ax, est[i], x0, x1), y, colors[i]);
    }
    close_svg(f);
}

/* Quantile q of sorted v[n] (linear interpolation). */
static double quantile(const double *v, int n, double q) {
    if (n <= 0) return NAN;
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) return v[n - 1];
    return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

void exp_rep_svg_strips(FILE *f, const char *title, int n, const char *const *labels,
                        const char *const *colors, const double *const *vals, const int *counts,
                        const char *x_label) {
    double mn = 0.0, mx = 0.0; /* zero (no uplift) always on the axis */
    for (int g = 0; g < n; g++)
        for (int i = 0; i < counts[g]; i++)
            if (isfinite(vals[g][i])) mn = fmin(mn, vals[g][i]), mx = fmax(mx, vals[g][i]);
    axis ax = nice_axis(mn, mx);
    const double row = 46.0, top = 14.0, x0 = label_left(n, labels), x1 = CHART_W - RIGHT;
    double y1 = top + row * n, h = y1 + 44;
    open_svg(f, title, CHART_W, h);
    x_axis(f, &ax, x0, x1, top - 6, y1, x_label);
    double zx = xmap(&ax, 0.0, x0, x1);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"ref\"/>\n", zx, top - 6, zx, y1);
    for (int g = 0; g < n; g++) {
        double y = top + row * g + row / 2;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"label\" text-anchor=\"end\">", x0 - 8, y + 4);
        exp_rep_esc(f, labels[g]);
        fprintf(f, "</text><text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">n = %d</text>", x0 - 8,
                y + 17, counts[g]);
        if (counts[g] <= 0) {
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">no products</text>\n", x0 + 4, y + 4);
            continue;
        }
        double *s = malloc(sizeof(double) * (size_t)counts[g]);
        if (!s) continue; /* out of memory: the row stays empty rather than failing the report */
        memcpy(s, vals[g], sizeof(double) * (size_t)counts[g]);
        qsort(s, (size_t)counts[g], sizeof(double), eng_cmp_double);
        double q1 = quantile(s, counts[g], 0.25), md = quantile(s, counts[g], 0.5), q3 = quantile(s, counts[g], 0.75);
        double lw = s[0], hw = s[counts[g] - 1];
        double a = xmap(&ax, q1, x0, x1), b = xmap(&ax, q3, x0, x1), m = xmap(&ax, md, x0, x1);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>",
                xmap(&ax, lw, x0, x1), y, xmap(&ax, hw, x0, x1), y, colors[g]);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"18\" fill=\"%s\" fill-opacity=\"0.18\" "
                   "stroke=\"%s\"/><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"2.5\"/>",
                a, y - 9, fmax(b - a, 1.0), colors[g], colors[g], m, y - 11, m, y + 11, colors[g]);
        /* strip: at most 400 dots (evenly spaced through the sorted values), deterministic jitter */
        int step = counts[g] > 400 ? (counts[g] + 399) / 400 : 1;
        for (int i = 0; i < counts[g]; i += step) {
            uint32_t hsh = (uint32_t)i * 2654435761u; /* Knuth's multiplicative hash: no visible pattern */
            double jitter = ((double)(hsh >> 16) / 65535.0 - 0.5) * 18.0;
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" fill=\"%s\" fill-opacity=\"0.7\"/>",
                    xmap(&ax, s[i], x0, x1), y + jitter, colors[g]);
        }
        fputc('\n', f);
        free(s);
    }
    close_svg(f);
}

void exp_rep_svg_lines(FILE *f, const char *title, int n, const char *const *labels,
                       const char *const *colors, const float *const *ys, int n_points,
                       const char *y_label) {
    double mn = INFINITY, mx = -INFINITY;
    for (int s = 0; s < n; s++)
        for (int t = 0; ys[s] && t < n_points; t++)
            if (isfinite(ys[s][t])) mn = fmin(mn, ys[s][t]), mx = fmax(mx, ys[s][t]);
    axis ay = nice_axis(mn, mx);
    const double w = 520.0, x0 = 60.0, x1 = w - 14.0, top = 12.0, y1 = 190.0, h = y1 + 42 + 16.0 * ((n + 2) / 3);
    open_svg(f, title, w, h);
    /* y grid and labels */
    for (double t = ay.lo; t <= ay.hi + ay.step * 1e-6; t += ay.step) {
        double y = y1 - (t - ay.lo) / (ay.hi - ay.lo) * (y1 - top);
        char s[32];
        exp_rep_fmt_price(t, s, sizeof s);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>\n",
                x0, y, x1, y, x0 - 5, y + 4, s);
    }
    fprintf(f, "<text x=\"14\" y=\"%.1f\" class=\"axis-label\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">",
            (top + y1) / 2, (top + y1) / 2);
    exp_rep_esc(f, y_label);
    fputs("</text>\n", f);
    double dx = n_points > 1 ? (x1 - x0) / (n_points - 1) : 0.0;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"start\">period 1</text>"
               "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">period %d</text>\n",
            x0, y1 + 14, x1, y1 + 14, n_points);
    for (int s = 0; s < n; s++) {
        if (!ys[s]) continue;
        fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s d=\"", colors[s], s == 0 ? "2.4" : "1.6",
                s == 0 ? "" : " stroke-opacity=\"0.9\"");
        int pen = 0, drawn = 0;
        for (int t = 0; t < n_points; t++) {
            if (!isfinite(ys[s][t])) {
                pen = 0;
                continue;
            }
            double x = x0 + dx * t, y = y1 - (ys[s][t] - ay.lo) / (ay.hi - ay.lo) * (y1 - top);
            fprintf(f, "%s%.1f %.1f ", pen ? "L" : "M", x, y);
            pen = 1, drawn++;
        }
        fputs("\"/>\n", f);
        if (drawn == 1) /* a single point: a dot so that it is visible */
            for (int t = 0; t < n_points; t++)
                if (isfinite(ys[s][t]))
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", x0 + dx * t,
                            y1 - (ys[s][t] - ay.lo) / (ay.hi - ay.lo) * (y1 - top), colors[s]);
    }
    /* legend, three per line */
    for (int s = 0; s < n; s++) {
        double lx = x0 + (s % 3) * 150.0, ly = y1 + 34 + 16.0 * (s / 3);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">",
                lx, ly - 4, lx + 18, ly - 4, colors[s], lx + 23, ly);
        exp_rep_esc(f, labels[s]);
        fputs(ys[s] ? "</text>" : " (none)</text>", f);
    }
    fputc('\n', f);
    close_svg(f);
}
