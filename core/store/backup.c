/*
 * backup.c: online copies of the store (VACUUM INTO: one read snapshot, so
 * writers go on), inspection of a copy, and folding a database's WAL into
 * its file. Each opens its own connection: these run in the command line,
 * beside (or instead of) a server.
 */
#include "store/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "store/migrations.h"

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int fsync_dir_of(const char *path)
{
    char tmp[1100];
    str_copy(tmp, sizeof tmp, path);
    return fsync_path(dirname(tmp), O_RDONLY | O_DIRECTORY);
}

static const char *text(sqlite3_stmt *s, int col)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    return t ? t : "";
}

static long long count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

int store_inspect(const char *path, store_backup_info *info, char *err, size_t errlen)
{
    memset(info, 0, sizeof *info);
    info->schema_latest = migrations_count;
    struct stat st;
    if (stat(path, &st)) {
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open '%s': %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        str_copy(info->integrity, sizeof info->integrity, text(s, 0));
    else
        str_copy(info->integrity, sizeof info->integrity, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    long long v = count(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    info->schema_version = v > 0 ? (int)v : 0;
    info->persons = count(db, "SELECT COUNT(*) FROM persons");
    info->cases = count(db, "SELECT COUNT(*) FROM cases");
    info->audit_records = count(db, "SELECT COUNT(*) FROM audit");
    s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id, rrn_sealed FROM persons WHERE rrn_sealed IS NOT NULL LIMIT 1", -1, &s,
                           NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        str_copy(info->sample_person, sizeof info->sample_person, text(s, 0));
        str_copy(info->sample_sealed, sizeof info->sample_sealed, text(s, 1));
    }
    sqlite3_finalize(s);
    s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT key_id FROM keyring WHERE retired_at IS NULL ORDER BY epoch DESC LIMIT 1", -1,
                           &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        str_copy(info->key_id, sizeof info->key_id, text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return 0;
}

int store_backup(const char *db_path, const char *dest, int busy_timeout_ms, store_backup_info *info, char *err,
                 size_t errlen)
{
    struct stat st;
    if (stat(db_path, &st)) {
        snprintf(err, errlen, "no database at '%s': %s", db_path, strerror(errno));
        return -1;
    }
    if (!lstat(dest, &st)) {
        snprintf(err, errlen, "'%s' exists already; a backup never overwrites a file", dest);
        return -1;
    }
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", dest);
    unlink(tmp);
    /* The copy holds personal data: only its owner may read it, from the
     * first byte (VACUUM INTO fills an empty file). */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create '%s': %s", tmp, strerror(errno));
        return -1;
    }
    close(fd);
    sqlite3 *db = NULL;
    int rc = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open '%s': %s", db_path, db ? sqlite3_errmsg(db) : "out of memory");
        goto done;
    }
    sqlite3_busy_timeout(db, busy_timeout_ms);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot copy '%s': %s", db_path, sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_bind_text(s, 1, tmp, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    sqlite3_finalize(s);
    if (step != SQLITE_DONE) {
        snprintf(err, errlen, "cannot copy '%s': %s", db_path, sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_close(db);
    db = NULL;
    /* One self-contained file: no write-ahead log beside it. */
    if (sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot finish '%s': %s", tmp, db ? sqlite3_errmsg(db) : "out of memory");
        goto done;
    }
    sqlite3_close(db);
    db = NULL;
    if (fsync_path(tmp, O_RDONLY) || rename(tmp, dest) || fsync_dir_of(dest)) {
        snprintf(err, errlen, "cannot write '%s': %s", dest, strerror(errno));
        goto done;
    }
    rc = store_inspect(dest, info, err, errlen);
done:
    sqlite3_close(db);
    if (rc) unlink(tmp);
    return rc;
}

int store_checkpoint_file(const char *path, int busy_timeout_ms, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open '%s': %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        goto done;
    }
    sqlite3_busy_timeout(db, busy_timeout_ms);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW || sqlite3_column_int(s, 0) != 0) {
        snprintf(err, errlen, "cannot checkpoint '%s': %s", path, sqlite3_errmsg(db));
        sqlite3_finalize(s);
        goto done;
    }
    sqlite3_finalize(s);
    rc = 0;
done:
    sqlite3_close(db);
    return rc;
}
