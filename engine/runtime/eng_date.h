/* eng_date.h - the one calendar conversion of rlprice: proleptic Gregorian dates <-> days since
 * 1970-01-01 (H. Hinnant's algorithms), and "YYYY-MM-DD" text (part of the shared runtime, see
 * eng_util.h).  Every layer converts dates through these. */
#ifndef ENG_DATE_H
#define ENG_DATE_H

#include <stdint.h>

/* Days since 1970-01-01 of y-m-d (m 1..12, d 1..31; d past the month's end runs on into the
 * next month). */
int32_t eng_days_from_civil(int y, int m, int d);

/* The date of a day count: *y, *m (1..12), *d (1..31). */
void eng_civil_from_days(int32_t day, int *y, int *m, int *d);

/* "YYYY-MM-DD" of a day count into buf[16]. */
void eng_date_format(int32_t day, char buf[16]);

/* Strict "YYYY-MM-DD" of an existing date.  Returns 0 or ENG_EINVAL (message set). */
int eng_date_parse(const char *s, int32_t *day);

#endif
