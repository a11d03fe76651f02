/* db_copy.h - COPY data helpers shared by the loader, the push and the importer:
 * text-format escaping/splitting, binary-format decoding, dates. */
#ifndef DB_COPY_H
#define DB_COPY_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* COPY text-format helpers shared with the push: append `s` escaped for COPY text format
 * (backslash, tab, newline, CR) to buf/len/cap (grows with realloc).  Returns 0 or ENG_ENOMEM. */
int db_copy_escape(char **buf, size_t *len, size_t *cap, const char *s);
/* Send buf[0..len) as COPY data and finish the COPY; returns 0 or ENG_EDB. */
int db_copy_send(PGconn *conn, const char *buf, size_t len, const char *what);

/* days since 1970-01-01 <-> "YYYY-MM-DD" (out needs 11 bytes). */
void db_day_format(int32_t day, char out[16]);
int db_day_parse(const char *s, int32_t *day); /* 0 or ENG_EFORMAT */

/* Split a COPY text row in place into at most max fields (trailing newline removed).
 * Returns the field count; NULL fields (\N) become NULL pointers. */
int db_copy_split(char *row, int len, char **f, int max);
/* Undo COPY text escapes in place. */
void db_copy_unescape(char *s);
/* Numeric text -> double; NaN for NULL or unparsable. */
double db_copy_num(const char *s);
/* Decimal digits after the point of a numeric's text ("1.10" -> 2, "3" -> 0); -1 for NULL. */
int db_copy_num_scale(const char *s);

/* Binary COPY: decode one CopyData message.  *header_done = 0 before the first message (the
 * 19-byte header plus extension is skipped).  Fills f[i]/flen[i] (flen -1 = NULL) for at most
 * max fields.  Returns the field count, -1 for the trailer, or ENG_EFORMAT. */
int db_bin_fields(const char *msg, int len, int *header_done, const char **f, int32_t *flen, int max);
/* Big-endian int32 / numeric (binary send format) -> values; numeric NULL/NaN/bad -> NaN. */
int32_t db_bin_int32(const char *p);
double db_bin_numeric(const char *p, int32_t len);
/* The display scale (digits after the point) a binary numeric carries; -1 for NULL or bad. */
int db_bin_numeric_scale(const char *p, int32_t len);
/* Binary date (days since 2000-01-01) -> days since 1970-01-01. */
#define DB_BIN_DATE_EPOCH 10957

#endif
