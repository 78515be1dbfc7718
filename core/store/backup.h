/*
 * backup: copies of the case store for operators. A backup is taken online
 * (a running server keeps writing: the copy is one read snapshot, made with
 * VACUUM INTO) into a single self-contained SQLite file; a file is
 * inspected before it is restored (integrity, schema version, a sealed
 * number to try the key on). The master key is never in a backup.
 */
#ifndef SARYE_STORE_BACKUP_H
#define SARYE_STORE_BACKUP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    int schema_version;      /* its migrations; 0 for a file that is not a sarye database */
    int schema_latest;       /* the newest this binary knows */
    char integrity[200];     /* "ok", or the first problem integrity_check found */
    long long persons, cases, audit_records;
    /* one sealed resident registration number and its person, to try a key
     * on ("" when the database holds none) */
    char sample_person[64];
    char sample_sealed[200];
    char key_id[24];           /* the key it is sealed with (keyring), "" if none recorded */
} store_backup_info;

/* Copies the database db (which a server may be using) into dest, a new
 * file (refused if it exists): written as dest.tmp, synced, renamed. The
 * copy is one consistent snapshot: every write committed before the call
 * is in it. Fills *info from the copy. 0, or -1 with err. */
int store_backup(const char *db, const char *dest, int busy_timeout_ms, store_backup_info *info, char *err,
                 size_t errlen);

/* Reads what store_backup_info says of an existing file (opened read-only,
 * never changed). 0, or -1 with err when it cannot be opened at all. */
int store_inspect(const char *path, store_backup_info *info, char *err, size_t errlen);

/* Folds the write-ahead log of the database at path into the file and
 * truncates it, so the file alone holds everything (before it is moved
 * aside). 0, or -1 with err. */
int store_checkpoint_file(const char *path, int busy_timeout_ms, char *err, size_t errlen);

#endif
