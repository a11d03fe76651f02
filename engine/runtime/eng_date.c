/* eng_date.c - see eng_date.h. */
#include "eng_date.h"

#include <stdio.h>
#include <string.h>

#include "eng_status.h"

int32_t eng_days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const int yoe = y - era * 400;
    const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + doe - 719468);
}

void eng_civil_from_days(int32_t day, int *y, int *m, int *d) {
    const int64_t z = (int64_t)day + 719468; /* shift the epoch to 0000-03-01 */
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* days since March 1st */
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

void eng_date_format(int32_t day, char buf[16]) {
    int y, m, d;
    eng_civil_from_days(day, &y, &m, &d);
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02d", y, m, d);
    snprintf(buf, 16, "%.15s", tmp);
}

int eng_date_parse(const char *s, int32_t *day) {
    int y, m, d, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || s[n] != '\0' || m < 1 || m > 12 || d < 1 || d > 31)
        return eng_err_set(ENG_EINVAL, "date '%s': expected YYYY-MM-DD", s ? s : "(null)");
    int32_t v = eng_days_from_civil(y, m, d);
    char back[16];
    eng_date_format(v, back);
    if (strcmp(back, s) != 0) return eng_err_set(ENG_EINVAL, "date '%s' does not exist", s);
    *day = v;
    return ENG_OK;
}
