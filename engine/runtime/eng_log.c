/* eng_log.c - see eng_log.h. */
#include "eng_log.h"

#include <stdarg.h>
#include <stdio.h>

static eng_log_level g_level = ENG_LOG_INFO;

void eng_log_set_level(eng_log_level lvl) { g_level = lvl; }
eng_log_level eng_log_get_level(void) { return g_level; }

void eng_log(eng_log_level lvl, const char *fmt, ...) {
    static const char *names[] = {"error", "warning", "info", "debug"};
    if (lvl > g_level) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "rlprice: %s: %s\n", names[lvl], buf);
}

