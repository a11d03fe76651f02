/* eng_stage.c - per-stage wall and CPU seconds of this thread's run (see eng_stage.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "eng_stage.h"
#include "eng_time.h"

typedef struct stage_row {
    const char *name;
    double wall, cpu;
} stage_row;

static _Thread_local stage_row rows[ENG_STAGE_MAX];
static _Thread_local int n_rows;

double eng_cpu_now(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)) return 0.0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

eng_stage_mark eng_stage_begin(void) {
    eng_stage_mark m = {eng_now(), eng_cpu_now()};
    return m;
}

void eng_stage_end(const char *name, eng_stage_mark m) {
    if (!name) return;
    int i = 0;
    while (i < n_rows && strcmp(rows[i].name, name)) i++;
    if (i == n_rows) {
        if (n_rows == ENG_STAGE_MAX) return;
        rows[n_rows++] = (stage_row){name, 0.0, 0.0};
    }
    rows[i].wall += eng_now() - m.wall;
    rows[i].cpu += eng_cpu_now() - m.cpu;
}

void eng_stage_reset(void) { n_rows = 0; }

size_t eng_stage_format(char *buf, size_t n) {
    size_t k = 0;
    if (!buf || !n) return 0;
    buf[0] = 0;
    for (int i = 0; i < n_rows && k + 1 < n; i++) {
        int w = snprintf(buf + k, n - k, "%s%s %.2f/%.2f", i ? " " : "", rows[i].name, rows[i].wall, rows[i].cpu);
        if (w < 0) break;
        k += (size_t)w;
        if (k >= n) k = n - 1;
    }
    return k;
}
