/* db_conn.c - libpq connections, password redaction and the embedded cluster (see db_conn.h). */
#include "db_conn.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eng_util.h"

/* ---- redaction ------------------------------------------------------------ */

/* Append src[0..len) to buf at *pos, bounded by n - 1. */
static void put(char *buf, size_t n, size_t *pos, const char *src, size_t len) {
    if (*pos + 1 >= n) return;
    size_t room = n - 1 - *pos;
    if (len > room) len = room;
    memcpy(buf + *pos, src, len);
    *pos += len;
    buf[*pos] = '\0';
}

/* Case-insensitive prefix test. */
static int starts_ci(const char *s, const char *prefix) {
    for (; *prefix; s++, prefix++)
        if (tolower((unsigned char)*s) != tolower((unsigned char)*prefix)) return 0;
    return 1;
}

/* Replace every occurrence of `secret` in buf (in place, bounded by n) by "***". */
static void redact_literal(char *buf, size_t n, const char *secret) {
    size_t sl = secret ? strlen(secret) : 0;
    if (sl < 3) return;
    char *tmp = malloc(n);
    if (!tmp) { buf[0] = '\0'; return; } /* cannot redact: drop the text rather than leak */
    size_t pos = 0;
    tmp[0] = '\0';
    for (const char *s = buf; *s;) {
        if (strncmp(s, secret, sl) == 0) { put(tmp, n, &pos, "***", 3); s += sl; }
        else { put(tmp, n, &pos, s, 1); s++; }
    }
    memcpy(buf, tmp, pos + 1);
    free(tmp);
}

char *db_redact(char *buf, size_t n, const char *msg, const char *conninfo) {
    if (!buf || n == 0) return buf;
    buf[0] = '\0';
    if (!msg) return buf;
    size_t pos = 0;
    const char *s = msg;
    while (*s) {
        if (starts_ci(s, "password") && (s == msg || !isalnum((unsigned char)s[-1]))) {
            const char *k = s + 8;
            while (*k == ' ') k++;
            if (*k == '=') {
                k++;
                while (*k == ' ') k++;
                put(buf, n, &pos, "password=***", 12);
                if (*k == '\'') { /* quoted value with backslash escapes */
                    k++;
                    while (*k && *k != '\'') k += (k[0] == '\\' && k[1]) ? 2 : 1;
                    if (*k == '\'') k++;
                } else {
                    while (*k && !isspace((unsigned char)*k) && *k != '&' && *k != '"') k++;
                }
                s = k;
                continue;
            }
        }
        if (s[0] == ':' && s[1] == '/' && s[2] == '/') { /* URI: scheme://user:password@host */
            const char *auth = s + 3, *at = auth;
            while (*at && *at != '@' && *at != '/' && !isspace((unsigned char)*at)) at++;
            if (*at == '@') {
                const char *colon = memchr(auth, ':', (size_t)(at - auth));
                put(buf, n, &pos, s, colon ? (size_t)(colon - s) : (size_t)(at - s));
                if (colon) put(buf, n, &pos, ":***", 4);
                s = at;
                continue;
            }
        }
        put(buf, n, &pos, s, 1);
        s++;
    }
    /* literal passwords we know of */
    if (conninfo && *conninfo) {
        PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
        if (opts) {
            for (PQconninfoOption *o = opts; o->keyword; o++)
                if (!strcmp(o->keyword, "password") && o->val) redact_literal(buf, n, o->val);
            PQconninfoFree(opts);
        }
    }
    if (conninfo) { /* URI password taken verbatim, also when the URI does not parse */
        const char *sch = strstr(conninfo, "://");
        if (sch) {
            const char *auth = sch + 3, *at = auth;
            while (*at && *at != '@' && *at != '/' && *at != '?') at++;
            const char *colon = *at == '@' ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
            if (colon && at - colon - 1 > 0 && at - colon - 1 < 512) {
                char secret[512];
                memcpy(secret, colon + 1, (size_t)(at - colon - 1));
                secret[at - colon - 1] = '\0';
                redact_literal(buf, n, secret);
            }
        }
    }
    redact_literal(buf, n, getenv("PGPASSWORD"));
    size_t len = strlen(buf);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = '\0';
    return buf;
}

/* ---- connections ------------------------------------------------------------ */

const char *db_describe(PGconn *conn) {
    static _Thread_local char buf[512];
    if (!conn) return "(no connection)";
    const char *host = PQhost(conn), *port = PQport(conn), *user = PQuser(conn), *db = PQdb(conn);
    snprintf(buf, sizeof buf, "%s@%s:%s/%s", user && *user ? user : "?", host && *host ? host : "?",
             port && *port ? port : "?", db && *db ? db : "?");
    return buf;
}

/* Server notices (e.g. "relation exists, skipping") go to the debug log, redacted. */
static void notice_to_log(void *arg, const char *message) {
    (void)arg;
    char msg[1024];
    ENG_DEBUG("postgres: %s", db_redact(msg, sizeof msg, message, NULL));
}

/* Check a fresh connection; on failure record the redacted message and close it. */
static int finish_connect(PGconn **out, PGconn *c, const char *conninfo) {
    *out = NULL;
    if (!c) return eng_err_set(ENG_ENOMEM, "cannot connect to PostgreSQL: out of memory");
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[1024], where[512];
        db_redact(msg, sizeof msg, PQerrorMessage(c), conninfo);
        db_redact(where, sizeof where, db_describe(c), conninfo);
        PQfinish(c);
        return eng_err_set(ENG_EDB, "cannot connect to PostgreSQL (%s): %s", where, msg);
    }
    PQsetNoticeProcessor(c, notice_to_log, NULL);
    *out = c;
    return ENG_OK;
}

int db_connect(PGconn **out, const char *conninfo) {
    return finish_connect(out, PQconnectdb(conninfo ? conninfo : ""), conninfo);
}

int db_connect_dbname(PGconn **out, const char *conninfo, const char *dbname) {
    const char *keys[] = {"dbname", "dbname", NULL};
    const char *vals[] = {conninfo ? conninfo : "", dbname, NULL};
    return finish_connect(out, PQconnectdbParams(keys, vals, 1), conninfo);
}

void db_disconnect(PGconn *conn) {
    if (conn) PQfinish(conn);
}

/* ---- embedded cluster --------------------------------------------------------- */

/* Find `<root>/scripts/pgtmp.sh` walking up from `start`; writes root into buf. */
static int find_root_from(const char *start, char *buf, size_t n) {
    char dir[PATH_MAX];
    if (!realpath(start, dir)) return 0;
    for (;;) {
        char probe[PATH_MAX + 32];
        snprintf(probe, sizeof probe, "%s/scripts/pgtmp.sh", dir);
        if (access(probe, R_OK) == 0) {
            snprintf(buf, n, "%s", dir);
            return 1;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) return 0;
        *slash = '\0';
    }
}

static int find_root(char *buf, size_t n) {
    if (find_root_from(".", buf, n)) return 1;
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return 0;
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    return find_root_from(exe, buf, n);
}

int db_embedded_locate(db_embedded *e) {
    memset(e, 0, sizeof *e);
    char root[PATH_MAX];
    if (!find_root(root, sizeof root))
        return eng_err_set(ENG_ENOTFOUND, "embedded PostgreSQL: scripts/pgtmp.sh not found above the current "
                                          "directory or the rlprice executable; pass --db or set PGHOST");
    const char *dir = getenv("RLPRICE_PGDATA");
    if (dir && *dir) snprintf(e->dir, sizeof e->dir, "%s", dir);
    else if ((size_t)snprintf(e->dir, sizeof e->dir, "%s/.pgdata", root) >= sizeof e->dir)
        return eng_err_set(ENG_EINVAL, "embedded PostgreSQL: path too long: %s", root);
    snprintf(e->host, sizeof e->host, "%s/sock", e->dir);
    snprintf(e->port, sizeof e->port, "5432");
    snprintf(e->user, sizeof e->user, "rlprice");
    snprintf(e->dbname, sizeof e->dbname, "rlprice");
    return ENG_OK;
}

/* Copy the value of NAME=... (optionally single-quoted) from an `export` line. */
static void env_value(const char *line, const char *name, char *out, size_t n) {
    char key[32];
    snprintf(key, sizeof key, "%s=", name);
    const char *p = strstr(line, key);
    if (!p) return;
    p += strlen(key);
    size_t len = 0;
    if (*p == '\'') {
        p++;
        while (p[len] && p[len] != '\'') len++;
    } else {
        while (p[len] && !isspace((unsigned char)p[len])) len++;
    }
    if (len >= n) return;
    memcpy(out, p, len);
    out[len] = '\0';
}

/* Run `bash <root>/scripts/pgtmp.sh VERB DIR`, capturing stdout into out (size n). */
static int run_pgtmp(const char *verb, const char *dir, char *out, size_t n) {
    char root[PATH_MAX], script[PATH_MAX + 32];
    if (!find_root(root, sizeof root))
        return eng_err_set(ENG_ENOTFOUND, "embedded PostgreSQL: scripts/pgtmp.sh not found");
    snprintf(script, sizeof script, "%s/scripts/pgtmp.sh", root);
    int fds[2];
    if (pipe(fds) != 0) return eng_err_set(ENG_EIO, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return eng_err_set(ENG_EIO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl("/bin/bash", "bash", script, verb, dir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t pos = 0;
    for (;;) {
        char tmp[512];
        ssize_t r = read(fds[0], tmp, sizeof tmp);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        size_t take = (size_t)r;
        if (pos + take >= n) take = n - 1 - pos;
        memcpy(out + pos, tmp, take);
        pos += take;
    }
    out[pos] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return eng_err_set(ENG_EDB, "embedded PostgreSQL: `%s %s %s` failed (exit %d; see messages above)", script,
                           verb, dir, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return ENG_OK;
}

int db_embedded_start(db_embedded *e) {
    int st = db_embedded_locate(e);
    if (st) return st;
    char out[4096];
    st = run_pgtmp("start", e->dir, out, sizeof out);
    if (st) return st;
    env_value(out, "PGHOST", e->host, sizeof e->host);
    env_value(out, "PGPORT", e->port, sizeof e->port);
    env_value(out, "PGUSER", e->user, sizeof e->user);
    env_value(out, "PGDATABASE", e->dbname, sizeof e->dbname);
    return ENG_OK;
}

int db_embedded_stop(db_embedded *e) {
    int st = db_embedded_locate(e);
    if (st) return st;
    char out[1024];
    return run_pgtmp("stop", e->dir, out, sizeof out);
}

int db_resolve(PGconn **out, const char *conninfo_or_null) {
    *out = NULL;
    if (conninfo_or_null && *conninfo_or_null) return db_connect(out, conninfo_or_null);
    static const char *vars[] = {"PGHOST", "PGDATABASE", "PGSERVICE", "PGPORT"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return db_connect(out, NULL);
    }
    db_embedded e;
    int st = db_embedded_start(&e);
    if (st) return st;
    ENG_INFO("no --db and no PG* variables: using the embedded cluster in %s", e.dir);
    const char *keys[] = {"host", "port", "user", "dbname", NULL};
    const char *vals[] = {e.host, e.port, e.user, e.dbname, NULL};
    return finish_connect(out, PQconnectdbParams(keys, vals, 0), NULL);
}

int db_connect_like(PGconn **out, PGconn *like, const char *dbname) {
    const char *keys[] = {"host", "port", "user", "password", "dbname", NULL};
    const char *vals[] = {PQhost(like), PQport(like), PQuser(like), PQpass(like), dbname, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 0);
    *out = NULL;
    if (!c || PQstatus(c) != CONNECTION_OK) {
        char msg[1024];
        db_redact(msg, sizeof msg, c ? PQerrorMessage(c) : "out of memory", NULL);
        PQfinish(c);
        return eng_err_set(ENG_EDB, "connect to %s: %s", dbname, msg);
    }
    *out = c;
    return ENG_OK;
}

/* Run "<verb> <quoted name><suffix>" on m. */
static int database_ddl(PGconn *m, const char *verb, const char *name, const char *suffix) {
    char *ident = PQescapeIdentifier(m, name, strlen(name));
    if (!ident) return eng_err_set(ENG_ENOMEM, "%s: cannot quote the database name", verb);
    size_t n = strlen(verb) + strlen(ident) + strlen(suffix) + 4;
    char *sql = eng_malloc(n);
    if (!sql) {
        PQfreemem(ident);
        return ENG_ENOMEM;
    }
    snprintf(sql, n, "%s %s%s", verb, ident, suffix);
    PQfreemem(ident);
    PGresult *r = PQexec(m, sql);
    free(sql);
    int st = ENG_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        char msg[1024];
        st = eng_err_set(ENG_EDB, "%s %s: %s", verb, name, db_redact(msg, sizeof msg, PQerrorMessage(m), NULL));
    }
    PQclear(r);
    return st;
}

int db_database_create(PGconn *m, const char *name) { return database_ddl(m, "CREATE DATABASE", name, ""); }

int db_database_drop(PGconn *m, const char *name) {
    return database_ddl(m, "DROP DATABASE IF EXISTS", name, " WITH (FORCE)");
}

int db_connect_again(PGconn **out, PGconn *like, const char *conninfo) {
    *out = NULL;
    if (conninfo && *conninfo) return db_connect(out, conninfo);
    if (!like) return eng_err_set(ENG_EINVAL, "db_connect_again: no connection to copy the settings of");
    const char *db = PQdb(like);
    return db_connect_like(out, like, db && *db ? db : NULL);
}

int db_connect_retry(PGconn **out, PGconn *like, const char *conninfo, int tries, double backoff_s) {
    int st = ENG_EDB;
    double wait = backoff_s > 0 ? backoff_s : 0;
    for (int k = 1; k <= (tries > 0 ? tries : 1); k++) {
        if ((st = db_connect_again(out, like, conninfo)) == ENG_OK) return ENG_OK;
        if (k == tries) break;
        ENG_WARN("reconnecting (attempt %d of %d) failed: %s; next try in %.2f s", k, tries, eng_err_msg(), wait);
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
        wait *= 2;
    }
    return st;
}
