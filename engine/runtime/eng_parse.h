/* eng_parse.h - trimming and strict number parsing of settings and command-line values (part
 * of the shared runtime, see eng_util.h).  No message is recorded: callers name the value. */
#ifndef ENG_PARSE_H
#define ENG_PARSE_H

#include <stdint.h>

/* Strips leading and trailing white space in place; returns the first non-space character of
 * s (inside s). */
char *eng_trim(char *s);

/* The whole of s as a base-10 long in [lo, hi].  Returns 0 or ENG_EINVAL (empty, trailing
 * characters, overflow, out of range); *out is untouched on failure. */
int eng_parse_long(const char *s, long lo, long hi, long *out);

/* The whole of s as a base-10 unsigned 64-bit integer: digits only (no sign, no blanks), no
 * overflow (a seed: "--seed").  Returns 0 or ENG_EINVAL; *out is untouched on failure. */
int eng_parse_u64(const char *s, uint64_t *out);
/* The same with C's prefixes (0x.. hexadecimal, 0.. octal), as the configs' 64-bit keys take
 * them: a leading digit still, so no sign and no blanks. */
int eng_parse_u64_c(const char *s, uint64_t *out);

/* The whole of s as a double (overflow rejected; NaN and infinities as strtod reads them).
 * Returns 0 or ENG_EINVAL; *out is untouched on failure. */
int eng_parse_double(const char *s, double *out);

/* Parse a plain decimal number: [+-]digits[.digits][(e|E)[+-]digits] (or .digits), the whole
 * string, no blanks.  Unlike strtod it refuses hexadecimal ("0x1"), "inf", "nan" and leading
 * spaces, and a value that overflows.  Returns 0 (*out set) or ENG_EFORMAT (*out untouched;
 * no message recorded: the caller names the field). */
int eng_parse_decimal(const char *s, double *out);

/* A setting as typed: the shortest decimal that reads back as the same double / float
 * (0.8, not 0.80000000000000004; 0.001f, not 0.00100000005); NaN as "none" (unset).
 * Writes into out[32]; returns out. */
char *eng_fmt_double(char out[32], double v);
char *eng_fmt_float(char out[32], float v);

#endif
