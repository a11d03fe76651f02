/* db_csvread.c - see db_csvread.h. */
#include "db_csvread.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eng_util.h"

void db_csv_log_bad(db_csv_log *log, long line, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log->bad++;
    if (!log->quiet && log->bad <= DB_CSV_PRINT_ISSUES)
        ENG_WARN("%s:%ld: %s (record skipped)", log->path[0] ? log->path : "csv", line, msg);
    if (log->n_issues >= DB_CSV_KEEP_ISSUES) return;
    if (!log->issues) {
        log->issues = calloc(DB_CSV_KEEP_ISSUES, sizeof *log->issues);
        if (!log->issues) return;
    }
    log->issues[log->n_issues].line = line;
    log->issues[log->n_issues].reason = strdup(msg);
    log->n_issues++;
}

void db_csv_log_free(db_csv_log *log) {
    if (!log) return;
    for (long i = 0; i < log->n_issues; i++) free(log->issues[i].reason);
    free(log->issues);
    log->issues = NULL;
    log->n_issues = 0;
}

void db_csv_log_summary(const db_csv_log *log, char *out, size_t n) {
    int k = snprintf(out, n, "%s: %ld records, %ld loaded, %ld skipped", log->path[0] ? log->path : "csv",
                     log->records, log->records - log->bad, log->bad);
    if (log->n_issues > 0 && k > 0 && (size_t)k < n)
        snprintf(out + k, n - (size_t)k, " (first: line %ld: %s)", log->issues[0].line,
                 log->issues[0].reason ? log->issues[0].reason : "?");
}

/* ---- parser setup shared by every libcsv reader ---- */
static _Thread_local long csv_grows;

/* libcsv's realloc hook: plain realloc, counted. */
static void *csv_counting_realloc(void *p, size_t n) {
    csv_grows++;
    return realloc(p, n);
}

void db_csv_parser_setup(struct csv_parser *p) {
    csv_set_blk_size(p, DB_CSV_BLK_SIZE);
    csv_set_realloc_func(p, csv_counting_realloc);
}

long db_csv_buffer_grows(void) { return csv_grows; }

size_t db_csv_bom_len(const char *buf, size_t n) {
    return buf && n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

/* ---- reader state ---- */
typedef struct {
    char *text;           /* field arena: NUL-terminated fields back to back */
    size_t tlen, tcap;
    size_t *off;          /* field start offsets */
    char **fields;
    int nf, fcap;
    int at_start;         /* the next non-blank line starts a record */
    long rec_line;        /* line where the current record starts */
    int have_first, expected, no_header;
    int status;           /* fatal status from a callback or allocation */
    db_csv_first_fn first;
    db_csv_row_fn row;
    void *ctx;
    db_csv_log *log;
} rd_state;

static void rd_field(void *s, size_t len, void *data) {
    rd_state *r = data;
    if (r->status) return;
    if (r->nf == r->fcap) {
        int nc = r->fcap ? 2 * r->fcap : 64;
        size_t *no = realloc(r->off, (size_t)nc * sizeof *no);
        if (!no) { r->status = eng_err_set(ENG_ENOMEM, "csv: out of memory"); return; }
        r->off = no;
        char **nfp = realloc(r->fields, (size_t)nc * sizeof *nfp);
        if (!nfp) { r->status = eng_err_set(ENG_ENOMEM, "csv: out of memory"); return; }
        r->fields = nfp;
        r->fcap = nc;
    }
    if (r->tlen + len + 1 > r->tcap) {
        size_t nc = r->tcap ? r->tcap : 4096;
        while (nc < r->tlen + len + 1) nc *= 2;
        char *nt = realloc(r->text, nc);
        if (!nt) { r->status = eng_err_set(ENG_ENOMEM, "csv: out of memory"); return; }
        r->text = nt;
        r->tcap = nc;
    }
    r->off[r->nf++] = r->tlen;
    if (len) memcpy(r->text + r->tlen, s, len);
    r->tlen += len;
    r->text[r->tlen++] = '\0';
}

static void rd_reset_record(rd_state *r) {
    r->nf = 0;
    r->tlen = 0;
    r->at_start = 1;
}

/* After a malformed record: a fresh parser (libcsv cannot resume after CSV_EPARSE) with the
 * same options and delimiter, and an empty record.  *live says whether p holds a parser that
 * must be freed.  Returns 0 or ENG_ENOMEM. */
static int rd_restart(struct csv_parser *p, unsigned char popts, unsigned char delim, rd_state *r, int *live) {
    csv_free(p);
    *live = 0;
    if (csv_init(p, popts) != 0) return eng_err_set(ENG_ENOMEM, "csv: cannot initialise the parser");
    *live = 1;
    db_csv_parser_setup(p);
    csv_set_delim(p, delim);
    rd_reset_record(r);
    return ENG_OK;
}

static void rd_record(int c, void *data) {
    (void)c;
    rd_state *r = data;
    if (r->status) return;
    for (int i = 0; i < r->nf; i++) r->fields[i] = r->text + r->off[i];
    if (!r->have_first) {
        r->have_first = 1;
        r->expected = r->nf;
        int st = r->first(r->ctx, r->nf, r->fields, !r->no_header);
        if (st < 0) { r->status = st; return; }
        if (!r->no_header) { rd_reset_record(r); return; }
    }
    r->log->records++;
    if (r->nf != r->expected) {
        db_csv_log_bad(r->log, r->rec_line, "expected %d fields, found %d", r->expected, r->nf);
    } else {
        int st = r->row(r->ctx, r->rec_line, r->nf, r->fields);
        if (st < 0) r->status = st;
    }
    rd_reset_record(r);
}

static int is_blank_line(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\n' && s[i] != '\r') return 0;
    return 1;
}

/* Map (or read) the whole file.  *mapped says whether to munmap or free. */
static int rd_open(const char *path, const char **data, size_t *len, int *mapped) {
    *data = NULL;
    *len = 0;
    *mapped = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return eng_err_set(errno == ENOENT ? ENG_ENOTFOUND : ENG_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    int st = ENG_OK;
    if (fstat(fd, &sb) != 0) { st = eng_err_set(ENG_EIO, "cannot stat '%s': %s", path, strerror(errno)); goto cleanup; }
    if (S_ISREG(sb.st_mode)) {
        if (sb.st_size == 0) goto cleanup;
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) { st = eng_err_set(ENG_EIO, "cannot map '%s': %s", path, strerror(errno)); goto cleanup; }
        madvise(m, (size_t)sb.st_size, MADV_SEQUENTIAL);
        *data = m;
        *len = (size_t)sb.st_size;
        *mapped = 1;
    } else { /* a pipe or device: read it all */
        size_t cap = 1 << 16, n = 0;
        char *b = malloc(cap);
        for (;;) {
            if (!b) { st = eng_err_set(ENG_ENOMEM, "reading '%s': out of memory", path); goto cleanup; }
            ssize_t k = read(fd, b + n, cap - n);
            if (k < 0) { free(b); st = eng_err_set(ENG_EIO, "read '%s': %s", path, strerror(errno)); goto cleanup; }
            if (k == 0) break;
            n += (size_t)k;
            if (n == cap) {
                char *nb = realloc(b, cap *= 2);
                if (!nb) free(b);
                b = nb;
            }
        }
        *data = b;
        *len = n;
    }
cleanup:
    close(fd);
    return st;
}

int db_csv_read(const char *path, const db_csv_opts *opts, db_csv_first_fn first, db_csv_row_fn row,
                void *ctx, db_csv_log *log) {
    const char *buf = NULL;
    size_t n = 0;
    int mapped = 0, st, parser_live = 0;
    struct csv_parser p;
    rd_state r;
    memset(&r, 0, sizeof r);
    r.first = first;
    r.row = row;
    r.ctx = ctx;
    r.log = log;
    r.no_header = opts && opts->no_header;
    r.at_start = 1;
    snprintf(log->path, sizeof log->path, "%s", path);
    const unsigned char popts = CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL;
    unsigned char delim = opts && opts->delim ? (unsigned char)opts->delim : ',';

    st = rd_open(path, &buf, &n, &mapped);
    if (st) goto cleanup;
    if (csv_init(&p, popts) != 0) { st = eng_err_set(ENG_ENOMEM, "csv: cannot initialise the parser"); goto cleanup; }
    parser_live = 1;
    db_csv_parser_setup(&p);
    csv_set_delim(&p, delim);

    size_t pos = 0, rec_next = 0;
    long line = 1;
    pos = db_csv_bom_len(buf, n);
    for (;;) {
        if (pos >= n) { /* end of file: finish the last record */
            int fr = csv_fini(&p, rd_field, rd_record, &r);
            if (r.status) { st = r.status; goto cleanup; }
            if (fr == 0) break;
            if (csv_error(&p) != CSV_EPARSE) { st = eng_err_set(ENG_ENOMEM, "csv: %s", csv_strerror(csv_error(&p))); goto cleanup; }
            log->records++;
            db_csv_log_bad(log, r.rec_line, "unterminated quoted field (the quote is never closed)");
            if ((st = rd_restart(&p, popts, delim, &r, &parser_live))) goto cleanup;
            if (r.rec_line < line - 1) { /* retry the lines the open quote swallowed */
                pos = rec_next;
                line = r.rec_line + 1;
                continue;
            }
            break;
        }
        const char *eol = memchr(buf + pos, '\n', n - pos);
        size_t end = eol ? (size_t)(eol - buf) + 1 : n;
        if (r.at_start && !is_blank_line(buf + pos, end - pos)) {
            r.rec_line = line;
            rec_next = end;
            r.at_start = 0;
        }
        size_t got = csv_parse(&p, buf + pos, end - pos, rd_field, rd_record, &r);
        if (r.status) { st = r.status; goto cleanup; }
        if (got < end - pos) {
            if (csv_error(&p) != CSV_EPARSE) { st = eng_err_set(ENG_ENOMEM, "csv: %s", csv_strerror(csv_error(&p))); goto cleanup; }
            log->records++;
            db_csv_log_bad(log, r.rec_line, "broken quoting (a quote inside an unquoted field, or text after a closing quote)");
            if ((st = rd_restart(&p, popts, delim, &r, &parser_live))) goto cleanup;
            if (r.rec_line < line) {
                pos = rec_next;
                line = r.rec_line + 1;
            } else {
                pos = end;
                line++;
            }
            continue;
        }
        pos = end;
        line++;
    }
    if (!r.have_first) st = eng_err_set(ENG_EFORMAT, "'%s' is empty (no header or data)", path);
cleanup:
    if (parser_live) csv_free(&p);
    if (buf) {
        if (mapped) munmap((void *)buf, n);
        else free((void *)buf);
    }
    free(r.text);
    free(r.off);
    free(r.fields);
    return st;
}
