/*
 * ops.c: backup, restore and configuration checks for operators.
 *
 * A backup is the database alone. The master key (sarye.key) seals every
 * resident registration number; it is never copied into a backup, so a
 * stolen backup holds no readable number, and the command says where the
 * key is: keep it with the backups, but not in the same place.
 */
#include "ops/ops.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/backup.h"
#include "store/pii.h"

extern const unsigned char embedded_default_conf[];
extern char **environ;

void ops_key_path(const config *cfg, char *out, size_t outlen)
{
    if (cfg->key_file[0]) {
        str_copy(out, outlen, cfg->key_file);
        return;
    }
    const char *slash = strrchr(cfg->db, '/');
    snprintf(out, outlen, "%.*ssarye.key", slash ? (int)(slash - cfg->db + 1) : 0, cfg->db);
}

static void absolute(const char *path, char *out, size_t outlen)
{
    char *r = realpath(path, NULL);
    str_copy(out, outlen, r ? r : path);
    free(r);
}

int ops_backup(const config *cfg, const char *file)
{
    store_backup_info info;
    char err[1200];
    if (store_backup(cfg->db, file, cfg->busy_timeout_ms, &info, err, sizeof err)) {
        fprintf(stderr, "sarye: backup: %s\n", err);
        return 1;
    }
    if (strcmp(info.integrity, "ok")) {
        fprintf(stderr, "sarye: backup: the copy in '%s' fails its integrity check: %s\n", file, info.integrity);
        return 1;
    }
    char key[1100], where[1100];
    ops_key_path(cfg, key, sizeof key);
    absolute(key, where, sizeof where);
    printf("backup written: %s\n"
           "  schema %d, %lld persons, %lld cases, %lld audit records; integrity ok\n"
           "the key is NOT in the backup. Without the key file %s\n"
           "  every stored resident registration number in this backup is lost for good.\n"
           "  Keep a copy of that key with your backups, but not in the same place\n"
           "  (another medium or vault: whoever holds both can read them).\n",
           file, info.schema_version, info.persons, info.cases, info.audit_records, where);
    return 0;
}

static int copy_file(const char *from, const char *to, char *err, size_t errlen)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        snprintf(err, errlen, "cannot read '%s': %s", from, strerror(errno));
        return -1;
    }
    unlink(to);
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        snprintf(err, errlen, "cannot create '%s': %s", to, strerror(errno));
        close(in);
        return -1;
    }
    char buf[65536];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR) continue;
                rc = -1;
                break;
            }
            off += w;
        }
        if (rc) break;
    }
    if (n < 0 || rc || fsync(out)) {
        snprintf(err, errlen, "cannot copy '%s' to '%s': %s", from, to, strerror(errno));
        rc = -1;
    }
    close(in);
    close(out);
    if (rc) unlink(to);
    return rc;
}

static void fsync_dir_of(const char *path)
{
    char tmp[1100];
    str_copy(tmp, sizeof tmp, path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int ops_restore(const config *cfg, const char *file)
{
    char err[2600];
    store_backup_info info;
    if (store_inspect(file, &info, err, sizeof err)) {
        fprintf(stderr, "sarye: restore: %s\n", err);
        return 1;
    }
    if (strcmp(info.integrity, "ok")) {
        fprintf(stderr, "sarye: restore: refused: '%s' fails its integrity check (%s)\n", file, info.integrity);
        return 1;
    }
    if (info.schema_version == 0) {
        fprintf(stderr, "sarye: restore: refused: '%s' is not a sarye database\n", file);
        return 1;
    }
    if (info.schema_version > info.schema_latest) {
        fprintf(stderr,
                "sarye: restore: refused: '%s' has schema version %d, newer than this sarye knows (%d); "
                "restore it with the sarye that made it\n",
                file, info.schema_version, info.schema_latest);
        return 1;
    }
    /* The key must be the one the backup's numbers were sealed with. */
    char key[1100];
    ops_key_path(cfg, key, sizeof key);
    bool have_key = access(key, F_OK) == 0;
    if (info.key_id[0] || info.sample_sealed[0]) {
        if (!have_key) {
            fprintf(stderr,
                    "sarye: restore: refused: no key file at %s. Put the sarye.key kept with this backup (key id %s) "
                    "there first (mode 0600); without it the backup's resident registration numbers and the proof "
                    "of its audit trail cannot be read\n",
                    key, info.key_id[0] ? info.key_id : "unknown");
            return 1;
        }
        if (pii_load(key, false, err, sizeof err)) {
            fprintf(stderr, "sarye: restore: %s\n", err);
            return 1;
        }
        bool same = !info.key_id[0] || !strcmp(info.key_id, pii_key_id());
        char digits[14], have[PII_KEY_ID_HEX];
        str_copy(have, sizeof have, pii_key_id());
        int opened = info.sample_sealed[0] ? pii_rrn_open(info.sample_sealed, info.sample_person, digits) : 0;
        memset(digits, 0, sizeof digits);
        pii_shutdown();
        if (!same || opened) {
            fprintf(stderr,
                    "sarye: restore: refused: the key at %s (key id %s) is not the key '%s' was made with (%s): "
                    "put the matching sarye.key there first\n",
                    key, have, file, info.key_id[0] ? info.key_id : "its sealed numbers do not open");
            return 1;
        }
    }
    /* No server may use the database while it is replaced. */
    int lock = open(cfg->db, O_RDONLY | O_CLOEXEC);
    if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB)) {
        fprintf(stderr, "sarye: restore: refused: a sarye server is using %s; stop it first "
                        "(systemctl stop sarye)\n", cfg->db);
        close(lock);
        return 1;
    }
    char aside[1200] = "", tmp[1200];
    int rc = 1;
    if (lock >= 0) {
        if (store_checkpoint_file(cfg->db, cfg->busy_timeout_ms, err, sizeof err)) {
            fprintf(stderr, "sarye: restore: %s\n", err);
            goto done;
        }
        snprintf(aside, sizeof aside, "%s.before-restore", cfg->db);
        if (rename(cfg->db, aside)) {
            fprintf(stderr, "sarye: restore: cannot move %s aside: %s\n", cfg->db, strerror(errno));
            goto done;
        }
    }
    char side[1200];
    snprintf(side, sizeof side, "%s-wal", cfg->db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", cfg->db);
    unlink(side);
    snprintf(tmp, sizeof tmp, "%s.restore-tmp", cfg->db);
    if (copy_file(file, tmp, err, sizeof err) || rename(tmp, cfg->db)) {
        fprintf(stderr, "sarye: restore: %s\n", err[0] ? err : strerror(errno));
        unlink(tmp);
        if (aside[0] && rename(aside, cfg->db) == 0) fprintf(stderr, "sarye: restore: %s is back as it was\n", cfg->db);
        goto done;
    }
    fsync_dir_of(cfg->db);
    /* The anchor holds the newest checkpoint of the database replaced: the
     * restored one is older, and its audit verify would find records
     * missing. It is kept aside, as the database is. */
    char anchor[1200] = "", anchor_aside[1300] = "";
    if (!cfg->audit_anchor_file[0]) snprintf(anchor, sizeof anchor, "%s.anchor", key);
    else if (strcmp(cfg->audit_anchor_file, "off")) str_copy(anchor, sizeof anchor, cfg->audit_anchor_file);
    if (anchor[0] && access(anchor, F_OK) == 0) {
        snprintf(anchor_aside, sizeof anchor_aside, "%s.before-restore", anchor);
        if (rename(anchor, anchor_aside)) anchor_aside[0] = 0;
    }
    printf("restored %s into %s\n  schema %d, %lld persons, %lld cases, %lld audit records; integrity ok\n", file,
           cfg->db, info.schema_version, info.persons, info.cases, info.audit_records);
    if (info.schema_version < info.schema_latest)
        printf("  schema %d is older than this sarye's %d: the next `sarye serve` or `sarye migrate` upgrades it\n",
               info.schema_version, info.schema_latest);
    if (aside[0]) printf("the database it replaced is kept as %s\n", aside);
    if (anchor_aside[0])
        printf("the audit anchor of the database it replaced is kept as %s (the next start writes a new one)\n",
               anchor_aside);
    if (!info.key_id[0] && !info.sample_sealed[0] && !have_key)
        printf("the backup holds no sealed numbers; a new key will be made at %s on the next start\n", key);
    printf("check the audit trail with: sarye audit verify --db %s\n", cfg->db);
    rc = 0;
done:
    if (lock >= 0) close(lock);
    return rc;
}

int ops_serve_lock(const config *cfg, char *err, size_t errlen)
{
    /* Kept open (and locked) until the process exits; never closed before,
     * as closing any descriptor of the database file would drop SQLite's
     * own (POSIX) locks on it. */
    static int held = -1;
    if (held >= 0) return 0;
    int fd = open(cfg->db, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0; /* a new database: nothing to guard yet (called again once it exists) */
    if (flock(fd, LOCK_SH | LOCK_NB)) {
        snprintf(err, errlen, "the database %s is being restored (sarye restore holds it); start again after it", cfg->db);
        close(fd);
        return -1;
    }
    held = fd;
    return 0;
}

/* ---- config check ---- */
static void print_problem(const char *msg, void *ctx)
{
    (*(int *)ctx)++;
    fprintf(stderr, "sarye: config: %s\n", msg);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *nb = cap < (16u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[len] = 0;
    return buf;
}

int ops_config_check(const char *file)
{
    const char *name = file;
    char *text = NULL;
    if (!file && access("config/sarye.conf", R_OK) == 0) name = "config/sarye.conf";
    if (name) {
        text = read_text(name);
        if (!text) {
            fprintf(stderr, "sarye: config: cannot read '%s': %s\n", name, strerror(errno));
            return 1;
        }
    } else {
        name = "(embedded sarye.conf)";
        text = strdup((const char *)embedded_default_conf);
        if (!text) return 1;
    }
    int problems = 0, keys = 0;
    int n = config_check_text(text, name, &keys, print_problem, &problems);
    free(text);
    if (n < 0) {
        fprintf(stderr, "sarye: config: out of memory\n");
        return 1;
    }
    /* The environment overrides the file: each SARYE_* variable alone. */
    int envs = 0;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "SARYE_", 6)) continue;
        char one[1200];
        str_copy(one, sizeof one, *e);
        char *eq = strchr(one, '=');
        if (!eq) continue;
        *eq = 0;
        /* apply just this variable: hide the others for a moment */
        config c;
        config_defaults(&c);
        char err[900] = "";
        char **all = environ;
        char *only[2] = {*e, NULL};
        environ = only;
        int rc = config_apply_env(&c, err, sizeof err);
        environ = all;
        envs++;
        if (rc < 0) print_problem(err, &problems);
        else if (rc > 0) {
            char msg[1000];
            snprintf(msg, sizeof msg, "%s (not a setting; SARYE_ + the key in upper case, '.' as '_')", err);
            print_problem(msg, &problems);
        }
    }
    if (problems) {
        fprintf(stderr, "sarye: config: %d problem%s in %s%s\n", problems, problems == 1 ? "" : "s", name,
                envs ? " and the environment" : "");
        return 1;
    }
    printf("configuration %s is valid (%d setting%s%s)\n", name, keys, keys == 1 ? "" : "s",
           envs ? ", and the SARYE_* environment" : "");
    return 0;
}
