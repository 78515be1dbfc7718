/*
 * test_walbuf.c: the VFS whose write-ahead logs gather a transaction's
 * writes (core/store/walbuf.c), on real SQLite files: every commit is in
 * the file before SQLite returns (another connection on the default VFS
 * reads it at once, and a process killed with SIGKILL after a commit keeps
 * it), transactions larger than the buffer, frames rewritten in one
 * transaction and a log another connection began read back as written, and a commit of many pages costs a
 * handful of write system calls instead of two a page.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/internal.h"

static char g_dir[64];
static char g_db[128];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/sarye-walbuf-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_db, sizeof g_db, "%s/t.db", g_dir);
    return walbuf_register() ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh database: no file, log or shared memory left from before. */
static void remove_db(void)
{
    static const char *const ext[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", g_db, ext[i]);
        unlink(p);
    }
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg ? msg : "?");
}

static sqlite3 *open_db(const char *vfs, const char *sync)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(g_db, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), SQLITE_OK);
    char sql[160];
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA wal_autocheckpoint=0;", sync);
    exec_ok(db, sql);
    return db;
}

static long long one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void expect_ok_integrity(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

/* Inserts n rows of size bytes each (a blob of the row's own byte) and, when
 * rewrite, changes every row of the table in the same transaction, so
 * frames already in the log are written again before the commit. */
static void write_tx(sqlite3 *db, int tx, int n, int size, bool rewrite)
{
    exec_ok(db, "BEGIN IMMEDIATE");
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t (tx, b) VALUES (?1, zeroblob(?2))", -1, &st, NULL),
                     SQLITE_OK);
    for (int i = 0; i < n; i++) {
        sqlite3_bind_int(st, 1, tx);
        sqlite3_bind_int(st, 2, size);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (rewrite) exec_ok(db, "UPDATE t SET touched = touched + 1");
    exec_ok(db, "COMMIT");
}

/* Every commit, small or larger than the buffer, with or without rewritten
 * frames, at either durability, is read at once by a connection on the
 * default VFS, and the file is sound throughout and after. */
static void test_commits_visible_at_once(void **state)
{
    (void)state;
    static const char *const syncs[] = {"NORMAL", "FULL"};
    for (int s = 0; s < 2; s++) {
        remove_db();
        sqlite3 *w = open_db("sarye-walbuf", syncs[s]);
        exec_ok(w, "CREATE TABLE t (id INTEGER PRIMARY KEY, tx INTEGER, touched INTEGER DEFAULT 0, b BLOB)");
        sqlite3 *r = open_db(NULL, syncs[s]);
        long long rows = 0, bytes = 0, touched = 0;
        static const int sizes[] = {1, 100, 3000, 5000, 70000, 300000};
        for (int tx = 0; tx < 60; tx++) {
            int n = 1 + tx % 7, size = sizes[tx % 6];
            bool rewrite = tx % 5 == 4;
            if (tx == 30) n = 40, size = 100000; /* about 4 MiB: four times the buffer */
            write_tx(w, tx, n, size, rewrite);
            rows += n;
            bytes += (long long)n * size;
            if (rewrite) touched += rows;
            assert_int_equal(one_int(r, "SELECT count(*) FROM t"), rows);
            assert_int_equal(one_int(r, "SELECT total(length(b)) FROM t"), bytes);
            assert_int_equal(one_int(r, "SELECT total(touched) FROM t"), touched);
            if (tx % 20 == 19) exec_ok(w, "PRAGMA wal_checkpoint(PASSIVE)");
        }
        expect_ok_integrity(r);
        expect_ok_integrity(w);
        sqlite3_close(r);
        sqlite3_close(w);
        sqlite3 *again = open_db(NULL, syncs[s]);
        assert_int_equal(one_int(again, "SELECT count(*) FROM t"), rows);
        expect_ok_integrity(again);
        sqlite3_close(again);
    }
}

/* A log begun by another connection (its header never passed through this
 * file): the page size is read back from it, and commits are still in the
 * file when they return. */
static void test_log_begun_elsewhere(void **state)
{
    (void)state;
    remove_db();
    sqlite3 *other = open_db(NULL, "NORMAL");
    exec_ok(other, "CREATE TABLE t (id INTEGER PRIMARY KEY, tx INTEGER, touched INTEGER DEFAULT 0, b BLOB)");
    write_tx(other, 0, 3, 5000, false); /* the log exists, with frames */
    sqlite3 *w = open_db("sarye-walbuf", "NORMAL");
    sqlite3 *r = open_db(NULL, "NORMAL");
    long long rows = 3;
    for (int tx = 1; tx < 20; tx++) {
        write_tx(tx % 2 ? w : other, tx, 2, 3000 + tx * 100, tx % 4 == 3);
        rows += 2;
        assert_int_equal(one_int(r, "SELECT count(*) FROM t"), rows);
        assert_int_equal(one_int(r, "SELECT coalesce(max(tx), -1) FROM t"), tx);
    }
    expect_ok_integrity(r);
    sqlite3_close(r);
    sqlite3_close(w);
    sqlite3_close(other);
}

/* A process that commits through the VFS and is killed with SIGKILL keeps
 * every transaction whose commit returned: at synchronous=NORMAL nothing
 * is synced, so only a write before the commit returns can keep it. */
static void test_commit_survives_kill(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        remove_db();
        sqlite3 *init = open_db(NULL, "NORMAL");
        exec_ok(init, "CREATE TABLE t (id INTEGER PRIMARY KEY, tx INTEGER, touched INTEGER DEFAULT 0, b BLOB)");
        sqlite3_close(init);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            sqlite3 *w = open_db("sarye-walbuf", "NORMAL");
            for (int tx = 0;; tx++) {
                write_tx(w, tx, 1 + tx % 4, tx % 3 ? 2000 : 9000, tx % 6 == 5);
                if (write(fds[1], &tx, sizeof tx) != sizeof tx) _exit(3); /* committed */
            }
        }
        close(fds[1]);
        int last = -1, tx;
        /* Let it commit a number of transactions that differs per round. */
        while (last < 20 + round * 13 && read(fds[0], &tx, sizeof tx) == sizeof tx) last = tx;
        kill(pid, SIGKILL);
        while (read(fds[0], &tx, sizeof tx) == sizeof tx) last = tx; /* reported before it died */
        close(fds[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        sqlite3 *r = open_db(NULL, "NORMAL");
        expect_ok_integrity(r);
        assert_true(one_int(r, "SELECT coalesce(max(tx), -1) FROM t") >= last);
        sqlite3_close(r);
    }
}

/* Write system calls of this process so far (/proc/self/io syscw). */
static long long write_calls(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    assert_non_null(f);
    char line[128];
    long long n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "syscw: %lld", &n) == 1) break;
    fclose(f);
    assert_true(n >= 0);
    return n;
}

/* What the VFS is for: a commit of some 60 pages is a few writes through it
 * and over a hundred without it (a frame header and a page each). */
static void test_fewer_write_calls(void **state)
{
    (void)state;
    long long calls[2];
    for (int v = 0; v < 2; v++) {
        remove_db();
        sqlite3 *w = open_db(v ? "sarye-walbuf" : NULL, "NORMAL");
        exec_ok(w, "CREATE TABLE t (id INTEGER PRIMARY KEY, tx INTEGER, touched INTEGER DEFAULT 0, b BLOB)");
        write_tx(w, 0, 1, 10, false);
        long long before = write_calls();
        write_tx(w, 1, 60, 3000, false); /* one page a row */
        calls[v] = write_calls() - before;
        sqlite3_close(w);
    }
    if (calls[0] < 120) fail_msg("the default VFS made %lld write calls for 60 pages", calls[0]);
    if (calls[1] > 12) fail_msg("through the buffer: %lld write calls for 60 pages", calls[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commits_visible_at_once),
        cmocka_unit_test(test_log_begun_elsewhere),
        cmocka_unit_test(test_commit_survives_kill),
        cmocka_unit_test(test_fewer_write_calls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
