/* db_csvread.h - CSV reading for the importers: libcsv in strict mode over a memory-mapped
 * file, with physical line numbers and recovery from malformed records.
 *
 * Every malformed record (broken quoting, an unterminated quoted field, a field count that
 * differs from the first record's, or a value the row callback rejects) is logged with the
 * line it starts on and a reason, counted and skipped; the reader then carries on with the
 * next line, so one bad quote never swallows the rest of the file.  Blank lines are ignored.
 * A UTF-8 byte-order mark at the start is skipped. */
#ifndef DB_CSVREAD_H
#define DB_CSVREAD_H

#include <stddef.h>

#define DB_CSV_KEEP_ISSUES 1000 /* issues kept in memory (all are counted) */
#define DB_CSV_PRINT_ISSUES 20  /* issues also logged as warnings as they happen */

typedef struct db_csv_issue {
    long line;      /* 1-based physical line where the record starts */
    char *reason;   /* owned */
} db_csv_issue;

typedef struct db_csv_log {
    char path[1024];     /* the file read (copied), for messages */
    long records;        /* data records seen (header excluded), good or bad */
    long bad;            /* records skipped */
    long n_issues;       /* issues kept (<= DB_CSV_KEEP_ISSUES) */
    db_csv_issue *issues; /* owned */
    int quiet;           /* 1: do not log issues as warnings */
} db_csv_log;

/* Record an issue at `line` (counts it as a bad record).  Never fails: out of memory only
 * stops keeping the text.  The first DB_CSV_PRINT_ISSUES are logged with ENG_WARN. */
void db_csv_log_bad(db_csv_log *log, long line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Free the kept issues (the struct itself is the caller's). */
void db_csv_log_free(db_csv_log *log);
/* One line "FILE: N records, N loaded, N skipped (first: line L: reason)" into out. */
void db_csv_log_summary(const db_csv_log *log, char *out, size_t n);

/* First record: nfields strings.  has_header says whether it is a header (1) or data (0;
 * the row callback then also receives it).  Return 0 or a negative status to stop. */
typedef int (*db_csv_first_fn)(void *ctx, int nfields, char **fields, int has_header);
/* A data record with the expected field count.  Return 0 to accept, 1 after calling
 * db_csv_log_bad to reject it, or a negative status to stop reading (fatal). */
typedef int (*db_csv_row_fn)(void *ctx, long line, int nfields, char **fields);

typedef struct db_csv_opts {
    char delim;     /* field separator, default ',' */
    int no_header;  /* 1: the first record is data */
} db_csv_opts;

/* Read `path` (log->path is set to it).  Returns 0 when the whole file was read (bad
 * records are in `log`), ENG_ENOTFOUND/ENG_EIO when the file cannot be read, ENG_EFORMAT
 * for an empty file, or the first negative status a callback returned. */
int db_csv_read(const char *path, const db_csv_opts *opts, db_csv_first_fn first, db_csv_row_fn row,
                void *ctx, db_csv_log *log);

/* ---- shared by every libcsv reader (import, OPE logs, the Dominick's fit) ---- */
struct csv_parser;
/* Field buffer growth step of a parser set up by db_csv_parser_setup: libcsv grows a field's
 * buffer linearly by its block size (128 bytes by default, so a 10 MB field cost ~80,000
 * reallocations and copies); 1 MiB steps keep a 10 MB field to ten. */
#define DB_CSV_BLK_SIZE ((size_t)1 << 20)
/* Give a freshly csv_init'ed parser the block size above and a counting realloc (see
 * db_csv_buffer_grows).  Never fails. */
void db_csv_parser_setup(struct csv_parser *p);
/* Field-buffer reallocations made by parsers of this thread since it started (tests). */
long db_csv_buffer_grows(void);
/* Length of a UTF-8 byte-order mark at the start of buf[0..n) (3 or 0): every reader skips it,
 * so a BOM never becomes part of the first column's name. */
size_t db_csv_bom_len(const char *buf, size_t n);

#endif
