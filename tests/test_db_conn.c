/* tests/test_db_conn.c - connections: passwords never in messages, describe, resolve,
 * the embedded cluster. */
#include "test_db.h"

#include <sys/stat.h>

static void test_redact_patterns(void **state) {
    (void)state;
    char out[512];
    db_redact(out, sizeof out, "bad: host=x password=Hunter2xyz dbname=y", NULL);
    assert_null(strstr(out, "Hunter2xyz"));
    assert_non_null(strstr(out, "password=***"));
    assert_non_null(strstr(out, "dbname=y"));
    db_redact(out, sizeof out, "bad: password = 'quo ted\\' pw' user=u", NULL);
    assert_null(strstr(out, "quo"));
    assert_null(strstr(out, "pw'"));
    assert_non_null(strstr(out, "user=u"));
    db_redact(out, sizeof out, "uri postgresql://bob:S3cretPass@db.example/x failed", NULL);
    assert_null(strstr(out, "S3cretPass"));
    assert_non_null(strstr(out, "postgresql://bob:***@db.example/x"));
    /* a literal password from the conninfo, wherever libpq echoes it */
    db_redact(out, sizeof out, "token \"Zq9Secret\" invalid", "host=h password=Zq9Secret");
    assert_null(strstr(out, "Zq9Secret"));
    assert_non_null(strstr(out, "token"));
}

/* Wrong password (and wrong role): the failure carries the server's text, never the password. */
static void test_wrong_password_not_leaked(void **state) {
    (void)state;
    const char *host = getenv("PGHOST"), *port = getenv("PGPORT");
    char ci[1024];
    snprintf(ci, sizeof ci, "host='%s' port=%s user=rlprice_nobody_%d password=WrongPw_7781x dbname=rlprice", host,
             port ? port : "5432", (int)getpid());
    PGconn *c = (PGconn *)1;
    assert_int_equal(db_connect(&c, ci), ENG_EDB);
    assert_null(c);
    const char *msg = eng_err_msg();
    assert_null(strstr(msg, "WrongPw_7781x"));
    assert_non_null(strstr(msg, "does not exist")); /* the server's message is kept */
    assert_non_null(strstr(msg, "rlprice_nobody_"));

    /* a malformed URI makes libpq echo the password token itself */
    assert_int_equal(db_connect(&c, "postgresql://rlprice:Sup3r%zzSecretPw@localhost/rlprice"), ENG_EDB);
    msg = eng_err_msg();
    assert_null(strstr(msg, "Sup3r"));
    assert_null(strstr(msg, "SecretPw"));
    assert_non_null(strstr(msg, "percent"));
}

static void test_describe_no_password(void **state) {
    (void)state;
    char ci[1024];
    snprintf(ci, sizeof ci, "host='%s' user=rlprice password=GoodPw_55123 dbname=rlprice", getenv("PGHOST"));
    PGconn *c = NULL;
    assert_int_equal(db_connect(&c, ci), ENG_OK); /* trust auth: password unused */
    const char *d = db_describe(c);
    assert_null(strstr(d, "GoodPw_55123"));
    assert_non_null(strstr(d, "rlprice@"));
    assert_non_null(strstr(d, "/rlprice"));
    db_disconnect(c);
}

/* db_resolve: conninfo wins, then PG* variables. */
static void test_resolve_env(void **state) {
    (void)state;
    PGconn *c = NULL;
    assert_int_equal(db_resolve(&c, NULL), ENG_OK);
    assert_string_equal(PQdb(c), getenv("PGDATABASE"));
    db_disconnect(c);
    assert_int_equal(db_resolve(&c, "dbname=rlprice_surely_missing_db"), ENG_EDB);
    assert_null(c);
    assert_non_null(strstr(eng_err_msg(), "rlprice_surely_missing_db"));
}

/* No --db, no PG* variables: the embedded cluster is started (in a test folder) and used. */
static void test_embedded_default(void **state) {
    (void)state;
    char dir[1024], *saved[4];
    const char *vars[4] = {"PGHOST", "PGPORT", "PGDATABASE", "PGSERVICE"};
    snprintf(dir, sizeof dir, "%s/embedded_%d", test_tmpdir(), (int)getpid());
    setenv("RLPRICE_PGDATA", dir, 1);
    for (int i = 0; i < 4; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(vars[i]);
    }
    PGconn *c = NULL;
    int st = db_resolve(&c, NULL);
    if (st == ENG_OK) {
        char sock[1100];
        snprintf(sock, sizeof sock, "%s/sock", dir);
        assert_string_equal(PQhost(c), sock);
        PGresult *r = PQexec(c, "SELECT 1");
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        PQclear(r);
        db_disconnect(c);
    }
    db_embedded e;
    int st2 = db_embedded_stop(&e);
    for (int i = 0; i < 4; i++) {
        if (saved[i]) setenv(vars[i], saved[i], 1);
        free(saved[i]);
    }
    unsetenv("RLPRICE_PGDATA");
    if (st) fail_msg("embedded: %s", eng_err_msg());
    assert_int_equal(st2, ENG_OK);
    assert_string_equal(e.dir, dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_patterns),
        cmocka_unit_test(test_wrong_password_not_leaked),
        cmocka_unit_test(test_describe_no_password),
        cmocka_unit_test(test_resolve_env),
        cmocka_unit_test(test_embedded_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
