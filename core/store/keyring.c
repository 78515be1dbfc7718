/*
 * keyring.c: which key the database is sealed with, the epochs of the audit
 * chain, and key rotation.
 *
 * The database names its key by id (keyring.key_id, a one-way derivation
 * of the key). On open, a missing or different key file is refused with a
 * message naming the file and both ids; a new key is made only for a
 * database that holds nothing sealed. Each key the audit trail was chained
 * with is an epoch: the first record it chained, the public key of its
 * checkpoints (endorsed by the key before), and once retired its audit key,
 * sealed under the current key, so the whole trail can still be verified.
 *
 * The key file is held with a shared lock (flock) while the store is open;
 * `sarye key rotate` takes it exclusively, so it never runs beside a server.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store/internal.h"
#include "store/keys.h"

typedef struct {
    audit_epoch pub;
    unsigned char mac[KEY_BYTES];
    bool usable;
} epoch_key;

static struct {
    epoch_key *keys;
    audit_epoch *pub;
    size_t n;
    int lock_fd;
} R = {NULL, NULL, 0, -1};

static const char SQL_KEYRING[] =
    "SELECT epoch, key_id, first_seq, public_key, endorsement, audit_key, created_at, retired_at FROM keyring"
    " ORDER BY epoch";
static const char SQL_HAS_DATA[] =
    "SELECT EXISTS (SELECT 1 FROM persons WHERE rrn_sealed IS NOT NULL) OR EXISTS (SELECT 1 FROM idempotency)"
    " OR EXISTS (SELECT 1 FROM audit) OR EXISTS (SELECT 1 FROM audit_checkpoints)";
static const char SQL_EPOCH_INSERT[] =
    "INSERT INTO keyring (epoch, key_id, first_seq, public_key, endorsement, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_EPOCH_RETIRE[] = "UPDATE keyring SET retired_at = ?2, audit_key = ?3 WHERE epoch = ?1";
static const char SQL_EPOCH_RESEAL[] = "UPDATE keyring SET audit_key = ?2 WHERE epoch = ?1";
static const char SQL_PERSONS_SEALED[] =
    "SELECT rowid, id, rrn_sealed FROM persons WHERE rowid > ?1 AND rrn_sealed IS NOT NULL ORDER BY rowid LIMIT 500";
static const char SQL_PERSON_REKEY[] = "UPDATE persons SET rrn_sealed = ?2, rrn_hash = ?3 WHERE rowid = ?1";
static const char SQL_PERSONS_UNSEALED[] =
    "UPDATE persons SET rrn_hash = NULL WHERE rrn_sealed IS NULL AND rrn_hash IS NOT NULL";
static const char SQL_ANSWERS[] =
    "SELECT rowid, scope, key, body FROM idempotency WHERE rowid > ?1 ORDER BY rowid LIMIT 500";
static const char SQL_ANSWER_RESEAL[] = "UPDATE idempotency SET body = ?2, request_hash = '' WHERE rowid = ?1";

/* ---- the epochs in memory ---- */
const unsigned char *keyring_mac_for(long long seq, bool *legacy, bool *usable)
{
    *legacy = false;
    *usable = true;
    if (R.n == 0) return keys_current()->audit_mac;
    if (seq < R.keys[0].pub.first_seq) {
        *legacy = true;
        return NULL;
    }
    for (size_t i = R.n; i-- > 0;) {
        if (seq < R.keys[i].pub.first_seq) continue;
        if (!R.keys[i].usable) {
            *usable = false;
            return NULL;
        }
        return R.keys[i].mac;
    }
    *usable = false;
    return NULL;
}

int keyring_epoch_now(void) { return R.n ? R.keys[R.n - 1].pub.epoch : 0; }

const audit_epoch *store_keyring_epochs(size_t *n)
{
    *n = R.n;
    return R.pub;
}

static void forget_epochs(void)
{
    if (R.keys) sodium_memzero(R.keys, R.n * sizeof *R.keys);
    free(R.keys);
    free(R.pub);
    R.keys = NULL;
    R.pub = NULL;
    R.n = 0;
}

void store_keyring_close(void)
{
    if (R.lock_fd < 0 && R.n == 0) return; /* never opened: the key is the caller's (unit tests) */
    forget_epochs();
    if (R.lock_fd >= 0) close(R.lock_fd);
    R.lock_fd = -1;
    pii_shutdown();
}

static void ring_ad(int epoch, const char *key_id, char *buf, size_t n)
{
    snprintf(buf, n, "sarye keyring epoch %d key %s", epoch, key_id);
}

/* A keyring row as read, with its sealed audit key (NULL for the current). */
typedef struct {
    audit_epoch pub;
    char *audit_key;
} ring_row;

static void rows_free(ring_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) free(rows[i].audit_key);
    free(rows);
}

static int read_ring(store_tx *tx, ring_row **out, size_t *n, store_err *e)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = store_stmt(tx, SQL_KEYRING, e);
    if (!st) return -1;
    int rc;
    size_t cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            ring_row *m = realloc(*out, cap * sizeof *m);
            if (!m) {
                sqlite3_reset(st);
                rows_free(*out, *n);
                *out = NULL;
                *n = 0;
                return store_oom(e);
            }
            *out = m;
        }
        ring_row *r = &(*out)[(*n)++];
        memset(r, 0, sizeof *r);
        r->pub.epoch = sqlite3_column_int(st, 0);
        str_copy(r->pub.key_id, sizeof r->pub.key_id, TEXT(st, 1) ? TEXT(st, 1) : "");
        r->pub.first_seq = sqlite3_column_int64(st, 2);
        str_copy(r->pub.public_key, sizeof r->pub.public_key, TEXT(st, 3) ? TEXT(st, 3) : "");
        str_copy(r->pub.endorsement, sizeof r->pub.endorsement, TEXT(st, 4) ? TEXT(st, 4) : "");
        r->audit_key = TEXT(st, 5) ? strdup(TEXT(st, 5)) : NULL;
        str_copy(r->pub.created_at, sizeof r->pub.created_at, TEXT(st, 6) ? TEXT(st, 6) : "");
        str_copy(r->pub.retired_at, sizeof r->pub.retired_at, TEXT(st, 7) ? TEXT(st, 7) : "");
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        rows_free(*out, *n);
        *out = NULL;
        *n = 0;
        return store_fail(tx, e, "keyring");
    }
    return 0;
}

/* The epochs with their audit keys: the current one's is the loaded key's,
 * a retired one's is opened with the loaded key's ring key. */
static int load_epochs(const ring_row *rows, size_t n)
{
    forget_epochs();
    if (!n) return 0;
    R.keys = calloc(n, sizeof *R.keys);
    R.pub = calloc(n, sizeof *R.pub);
    if (!R.keys || !R.pub) {
        forget_epochs();
        return -1;
    }
    const keyset *ks = keys_current();
    for (size_t i = 0; i < n; i++) {
        R.keys[i].pub = R.pub[i] = rows[i].pub;
        if (i == n - 1 && !strcmp(rows[i].pub.key_id, ks->id)) {
            memcpy(R.keys[i].mac, ks->audit_mac, KEY_BYTES);
            R.keys[i].usable = true;
            continue;
        }
        char ad[96];
        size_t len = 0;
        ring_ad(rows[i].pub.epoch, rows[i].pub.key_id, ad, sizeof ad);
        unsigned char *k = rows[i].audit_key ? keys_open(ks->ring, ad, strlen(ad), rows[i].audit_key, &len) : NULL;
        if (k && len == KEY_BYTES) {
            memcpy(R.keys[i].mac, k, KEY_BYTES);
            R.keys[i].usable = true;
        } else {
            log_msg(LOG_WARN, "keyring: the audit key of an epoch cannot be opened", " epoch=%d key_id=%s",
                    rows[i].pub.epoch, rows[i].pub.key_id);
        }
        if (k) sodium_memzero(k, len), free(k);
    }
    R.n = n;
    return 0;
}

/* ---- reading the database's state ---- */
typedef struct {
    ring_row *rows;
    size_t n;
    bool has_data;
} ring_state;

static int work_state(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    ring_state *s = arg;
    store_err se = {0};
    if (read_ring(tx, &s->rows, &s->n, &se)) return err_set(e, 503, "unavailable", "%s", se.message), -1;
    sqlite3_stmt *st = store_stmt(tx, SQL_HAS_DATA, &se);
    if (!st) return err_set(e, 503, "unavailable", "%s", se.message), -1;
    int rc = sqlite3_step(st);
    s->has_data = rc == SQLITE_ROW && sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) {
        store_fail(tx, &se, "keyring state");
        return err_set(e, 503, "unavailable", "%s", se.message), -1;
    }
    return 0;
}

static int read_state(ring_state *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    store_reply reply = {0};
    err_t e = {0};
    store_err se = {0};
    int rc = store_read(work_state, s, &reply, &e, &se);
    if (rc) {
        snprintf(err, errlen, "cannot read the keyring of '%s': %s", store_path(), e.message[0] ? e.message : se.message);
        err_clear(&e);
    }
    return rc;
}

/* ---- sealing again ---- */
static int run(store_tx *tx, sqlite3_stmt *st, store_err *e, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, what);
}

/* Every Idempotency-Key answer sealed under `to` (opened with `from`, or
 * taken as the clear text an older sarye stored). The request digests go:
 * they were made with the old key (or none), and a replay of an answer
 * whose digest is unknown is answered by its key alone. */
static int reseal_answers(store_tx *tx, const keyset *from, const keyset *to, long long *count, store_err *e)
{
    long long after = 0;
    *count = 0;
    for (;;) {
        sqlite3_stmt *st = store_stmt(tx, SQL_ANSWERS, e);
        if (!st) return -1;
        sqlite3_bind_int64(st, 1, after);
        struct {
            long long rowid;
            char *sealed;
        } batch[500];
        int n = 0, rc;
        while (n < 500 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            long long rowid = sqlite3_column_int64(st, 0);
            const char *scope = TEXT(st, 1), *key = TEXT(st, 2), *body = TEXT(st, 3);
            char *plain = NULL;
            if (keys_is_sealed(body)) {
                if (from) plain = store_idem_open(from->idem_body, scope, key, body);
            } else {
                plain = strdup(body ? body : "null");
            }
            if (!plain) {
                sqlite3_reset(st);
                for (int i = 0; i < n; i++) free(batch[i].sealed);
                return store_err_set(e, STORE_INTERNAL,
                                     "an Idempotency-Key answer cannot be opened with the current key");
            }
            batch[n].rowid = rowid;
            batch[n].sealed = store_idem_seal(to->idem_body, scope, key, plain);
            sodium_memzero(plain, strlen(plain));
            free(plain);
            n++;
            after = rowid;
        }
        sqlite3_reset(st);
        int bad = 0;
        for (int i = 0; i < n; i++) {
            sqlite3_stmt *up = batch[i].sealed && !bad ? store_stmt(tx, SQL_ANSWER_RESEAL, e) : NULL;
            if (!up) bad = 1;
            if (!bad) {
                sqlite3_bind_int64(up, 1, batch[i].rowid);
                sqlite3_bind_text(up, 2, batch[i].sealed, -1, SQLITE_STATIC);
                if (run(tx, up, e, "reseal answer")) bad = 1;
            }
            free(batch[i].sealed);
        }
        if (bad) return e->kind ? -1 : store_oom(e);
        *count += n;
        if (n < 500) return 0;
    }
}

/* Every resident number sealed and indexed under `to`. */
static int rekey_numbers(store_tx *tx, const keyset *from, const keyset *to, long long *count, store_err *e)
{
    long long after = 0;
    *count = 0;
    for (;;) {
        sqlite3_stmt *st = store_stmt(tx, SQL_PERSONS_SEALED, e);
        if (!st) return -1;
        sqlite3_bind_int64(st, 1, after);
        struct {
            long long rowid;
            char sealed[128], index[SHA256_HEX];
        } batch[500];
        int n = 0, rc;
        while (n < 500 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            char digits[14];
            batch[n].rowid = after = sqlite3_column_int64(st, 0);
            const char *id = TEXT(st, 1), *sealed = TEXT(st, 2);
            if (keys_rrn_open(from, sealed, id, digits) ||
                keys_rrn_seal(to, digits, id, batch[n].sealed, sizeof batch[n].sealed)) {
                sodium_memzero(digits, sizeof digits);
                sqlite3_reset(st);
                return store_err_set(e, STORE_INTERNAL,
                                     "the resident number of person %s cannot be opened with the current key", id);
            }
            keys_rrn_index(to, digits, batch[n].index);
            sodium_memzero(digits, sizeof digits);
            n++;
        }
        sqlite3_reset(st);
        for (int i = 0; i < n; i++) {
            sqlite3_stmt *up = store_stmt(tx, SQL_PERSON_REKEY, e);
            if (!up) return -1;
            sqlite3_bind_int64(up, 1, batch[i].rowid);
            sqlite3_bind_text(up, 2, batch[i].sealed, -1, SQLITE_STATIC);
            sqlite3_bind_text(up, 3, batch[i].index, -1, SQLITE_STATIC);
            if (run(tx, up, e, "rekey number")) return -1;
        }
        sodium_memzero(batch, sizeof batch);
        *count += n;
        if (n < 500) break;
    }
    /* An index without its sealed number cannot be made again: it goes. */
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSONS_UNSEALED, e);
    return st ? run(tx, st, e, "drop unsealed index") : -1;
}

static int insert_epoch(store_tx *tx, const audit_epoch *ep, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_EPOCH_INSERT, e);
    if (!st) return -1;
    sqlite3_bind_int(st, 1, ep->epoch);
    sqlite3_bind_text(st, 2, ep->key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ep->first_seq);
    sqlite3_bind_text(st, 4, ep->public_key, -1, SQLITE_STATIC);
    store_bind_opt(st, 5, ep->endorsement);
    sqlite3_bind_text(st, 6, ep->created_at, -1, SQLITE_STATIC);
    return run(tx, st, e, "keyring insert");
}

/* ---- registering the first key ---- */
typedef struct {
    audit_epoch ep;
    bool legacy_audit;
} register_arg;

static int work_register(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    register_arg *a = arg;
    store_err se = {0};
    long long head = 0, answers = 0;
    char hash[SHA256_HEX];
    if (store_audit_chain_head(tx, &head, hash, &se)) goto fail;
    a->ep.first_seq = head + 1;
    a->legacy_audit = head > 0;
    if (insert_epoch(tx, &a->ep, &se)) goto fail;
    /* What an older sarye kept in clear, or digested without a key. */
    if (reseal_answers(tx, NULL, keys_current(), &answers, &se)) goto fail;
    if (a->legacy_audit) {
        /* The records of the older, unkeyed chain are held by a signed
         * checkpoint from here on. */
        ring_row row = {a->ep, NULL};
        if (load_epochs(&row, 1)) {
            store_err_set(&se, STORE_INTERNAL, "out of memory");
            goto fail;
        }
        audit_checkpoint cp;
        bool written;
        if (store_audit_checkpoint(tx, "register", 0, NULL, true, &cp, &written, &se)) goto fail;
    }
    return 0;
fail:
    forget_epochs();
    return err_set(e, 503, "unavailable", "%s", se.message), -1;
}

/* ---- opening ---- */
static void interrupted_rotation(const char *path, const char *db_key, char *out, size_t n)
{
    char next[1100];
    keyset ks;
    bool missing;
    char ignore[300];
    out[0] = 0;
    snprintf(next, sizeof next, "%s.new", path);
    if (keys_read(next, &ks, &missing, ignore, sizeof ignore) == 0) {
        if (!strcmp(ks.id, db_key))
            snprintf(out, n,
                     "; a key rotation was interrupted after it committed: '%s' holds key %s, move it to '%s'"
                     " (and keep the old key with the backups made before the rotation)",
                     next, ks.id, path);
        keys_wipe(&ks);
    }
}

static int lock_key(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the key file '%s': %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_SH | LOCK_NB)) {
        close(fd);
        snprintf(err, errlen, "the key file '%s' is locked by `sarye key rotate`; start again once it has finished",
                 path);
        return -1;
    }
    if (R.lock_fd >= 0) close(R.lock_fd);
    R.lock_fd = fd;
    return 0;
}

int store_keyring_open(const char *path, char *err, size_t errlen)
{
    ring_state s;
    if (read_state(&s, err, errlen)) return -1;
    int rc = -1;
    keyset ks;
    bool missing = false;
    char why[600];
    int read_rc = keys_read(path, &ks, &missing, why, sizeof why);
    if (s.n == 0) {
        if (read_rc && missing && !s.has_data) {
            if (keys_create(path, &ks, err, errlen)) goto out;
            log_msg(LOG_INFO, "keyring: a new key for a new database", " key_file=\"%s\" key_id=%s", path, ks.id);
        } else if (read_rc && missing) {
            snprintf(err, errlen,
                     "the key file '%s' does not exist, but the database '%s' holds data sealed with a key: restore"
                     " the key file from where it is kept (sarye makes a new key only for a new database)",
                     path, store_path());
            goto out;
        } else if (read_rc) {
            str_copy(err, errlen, why);
            goto out;
        }
        keys_set_current(&ks);
        register_arg a;
        memset(&a, 0, sizeof a);
        a.ep.epoch = 1;
        str_copy(a.ep.key_id, sizeof a.ep.key_id, ks.id);
        keys_hex(ks.sign_pk, sizeof ks.sign_pk, a.ep.public_key);
        time_rfc3339(time_now_ms(), a.ep.created_at);
        store_reply reply = {0};
        err_t e = {0};
        store_err se = {0};
        if (store_write(NULL, work_register, &a, &reply, &e, &se)) {
            snprintf(err, errlen, "cannot register the key in '%s': %s", store_path(),
                     e.message[0] ? e.message : se.message);
            err_clear(&e);
            goto out;
        }
        ring_row row = {a.ep, NULL};
        if (load_epochs(&row, 1)) {
            str_copy(err, errlen, "out of memory");
            goto out;
        }
        if (a.legacy_audit)
            log_msg(LOG_INFO, "keyring: the older, unkeyed audit chain is held by a signed checkpoint",
                    " first_keyed_record=%lld", a.ep.first_seq);
    } else {
        const audit_epoch *cur = &s.rows[s.n - 1].pub;
        char hint[1400];
        if (read_rc && missing) {
            interrupted_rotation(path, cur->key_id, hint, sizeof hint);
            snprintf(err, errlen,
                     "the key file '%s' does not exist, but the database '%s' is sealed with key %s: restore the key"
                     " file from where it is kept (sarye never makes a new key for a database that has one)%s",
                     path, store_path(), cur->key_id, hint);
            goto out;
        }
        if (read_rc) {
            str_copy(err, errlen, why);
            goto out;
        }
        if (strcmp(ks.id, cur->key_id)) {
            interrupted_rotation(path, cur->key_id, hint, sizeof hint);
            for (size_t i = 0; i + 1 < s.n && !hint[0]; i++)
                if (!strcmp(s.rows[i].pub.key_id, ks.id))
                    snprintf(hint, sizeof hint, "; key %s was retired by `sarye key rotate` at %s", ks.id,
                             s.rows[i].pub.retired_at);
            snprintf(err, errlen,
                     "the key file '%s' holds key %s, but the database '%s' is sealed with key %s%s: start with the"
                     " key file the database was sealed with",
                     path, ks.id, store_path(), cur->key_id, hint);
            goto out;
        }
        keys_set_current(&ks);
        if (load_epochs(s.rows, s.n)) {
            str_copy(err, errlen, "out of memory");
            goto out;
        }
    }
    if (lock_key(path, err, errlen)) goto out;
    rc = 0;
out:
    keys_wipe(&ks);
    rows_free(s.rows, s.n);
    if (rc) {
        forget_epochs();
        pii_shutdown();
    }
    return rc;
}

/* ---- rotation ---- */
typedef struct {
    const keyset *from, *to;
    key_rotation *out;
} rotate_arg;

static int work_rotate(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    rotate_arg *a = arg;
    store_err se = {0};
    ring_row *rows = NULL;
    size_t n = 0;
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    /* What is overwritten is not left in the file's free pages. */
    sqlite3_exec(tx->db, "PRAGMA secure_delete = ON", NULL, NULL, NULL);
    /* The last checkpoint of the old key: the trail up to here is its. */
    bool written;
    if (store_audit_checkpoint(tx, "rotate", 0, NULL, true, &a->out->checkpoint, &written, &se)) goto fail;
    if (rekey_numbers(tx, a->from, a->to, &a->out->numbers, &se)) goto fail;
    if (reseal_answers(tx, a->from, a->to, &a->out->answers, &se)) goto fail;
    if (read_ring(tx, &rows, &n, &se)) goto fail;
    if (!n) {
        store_err_set(&se, STORE_INTERNAL, "the database has no keyring");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        char ad[96];
        ring_ad(rows[i].pub.epoch, rows[i].pub.key_id, ad, sizeof ad);
        unsigned char *k = NULL;
        size_t len = 0;
        if (i == n - 1) {
            k = malloc(KEY_BYTES);
            if (k) memcpy(k, a->from->audit_mac, KEY_BYTES), len = KEY_BYTES;
        } else if (rows[i].audit_key) {
            k = keys_open(a->from->ring, ad, strlen(ad), rows[i].audit_key, &len);
        }
        if (!k || len != KEY_BYTES) {
            free(k);
            store_err_set(&se, STORE_INTERNAL, "the audit key of epoch %d cannot be opened with the current key",
                          rows[i].pub.epoch);
            goto fail;
        }
        char *sealed = keys_seal(a->to->ring, ad, strlen(ad), k, KEY_BYTES);
        sodium_memzero(k, KEY_BYTES);
        free(k);
        sqlite3_stmt *st = sealed ? store_stmt(tx, i == n - 1 ? SQL_EPOCH_RETIRE : SQL_EPOCH_RESEAL, &se) : NULL;
        if (!st) {
            free(sealed);
            if (!se.kind) store_err_set(&se, STORE_INTERNAL, "out of memory");
            goto fail;
        }
        sqlite3_bind_int(st, 1, rows[i].pub.epoch);
        if (i == n - 1) {
            sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, sealed, -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_text(st, 2, sealed, -1, SQLITE_STATIC);
        }
        int rc = run(tx, st, &se, "keyring reseal");
        free(sealed);
        if (rc) goto fail;
    }
    audit_epoch next;
    memset(&next, 0, sizeof next);
    next.epoch = rows[n - 1].pub.epoch + 1;
    str_copy(next.key_id, sizeof next.key_id, a->to->id);
    next.first_seq = a->out->checkpoint.through_seq + 1;
    keys_hex(a->to->sign_pk, sizeof a->to->sign_pk, next.public_key);
    str_copy(next.created_at, sizeof next.created_at, now);
    char msg[512];
    int len = audit_epoch_message(&next, msg, sizeof msg);
    keys_sign(a->from, msg, (size_t)len, next.endorsement);
    if (insert_epoch(tx, &next, &se)) goto fail;
    rows_free(rows, n);
    return 0;
fail:
    rows_free(rows, n);
    return err_set(e, 503, "unavailable", "%s", se.message), -1;
}

static int fsync_dir(const char *path)
{
    char tmp[1100];
    str_copy(tmp, sizeof tmp, path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int store_key_rotate(const char *path, key_rotation *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (R.lock_fd < 0 || R.n == 0) {
        str_copy(err, errlen, "the keyring is not open");
        return -1;
    }
    if (flock(R.lock_fd, LOCK_EX | LOCK_NB)) {
        snprintf(err, errlen,
                 "another sarye process (a server, or a command) is using the key file '%s': stop it first;"
                 " a key rotation needs the database to itself",
                 path);
        return -1;
    }
    int rc = -1;
    keyset from = *keys_current(), to;
    memset(&to, 0, sizeof to);
    char next[1100];
    snprintf(next, sizeof next, "%s.new", path);
    str_copy(out->old_id, sizeof out->old_id, from.id);
    snprintf(out->retired_file, sizeof out->retired_file, "%s.retired-%s", path, from.id);
    /* A key left by a rotation that did not commit (the database opened
     * with the current key, so it is not the database's). */
    unlink(next);
    if (keys_create(next, &to, err, errlen)) goto out;
    str_copy(out->new_id, sizeof out->new_id, to.id);
    rotate_arg a = {&from, &to, out};
    store_reply reply = {0};
    err_t e = {0};
    store_err se = {0};
    if (store_write(NULL, work_rotate, &a, &reply, &e, &se)) {
        snprintf(err, errlen, "the rotation did not commit (nothing changed): %s",
                 e.message[0] ? e.message : se.message);
        err_clear(&e);
        unlink(next);
        goto out;
    }
    /* Committed: the database is sealed with the new key. */
    if (rename(path, out->retired_file) || rename(next, path)) {
        snprintf(err, errlen,
                 "the database is now sealed with key %s, in '%s', but it could not be moved to '%s': %s; move it"
                 " there by hand",
                 to.id, next, path, strerror(errno));
        goto out;
    }
    fsync_dir(path);
    keys_set_current(&to);
    ring_state s;
    if (read_state(&s, err, errlen) == 0) {
        load_epochs(s.rows, s.n);
        rows_free(s.rows, s.n);
    }
    rc = 0;
out:
    keys_wipe(&from);
    keys_wipe(&to);
    flock(R.lock_fd, LOCK_SH);
    return rc;
}

void store_sql_of_keyring(store_sql_fn fn, void *ctx)
{
    /* at start and in `sarye key rotate` */
    fn("SQL_KEYRING", SQL_KEYRING, STORE_SQL_TOOL, ctx);
    fn("SQL_HAS_DATA", SQL_HAS_DATA, STORE_SQL_TOOL, ctx);
    fn("SQL_EPOCH_INSERT", SQL_EPOCH_INSERT, STORE_SQL_TOOL, ctx);
    fn("SQL_EPOCH_RETIRE", SQL_EPOCH_RETIRE, STORE_SQL_TOOL, ctx);
    fn("SQL_EPOCH_RESEAL", SQL_EPOCH_RESEAL, STORE_SQL_TOOL, ctx);
    fn("SQL_PERSONS_SEALED", SQL_PERSONS_SEALED, STORE_SQL_TOOL, ctx);
    fn("SQL_PERSON_REKEY", SQL_PERSON_REKEY, STORE_SQL_TOOL, ctx);
    fn("SQL_PERSONS_UNSEALED", SQL_PERSONS_UNSEALED, STORE_SQL_TOOL, ctx);
    fn("SQL_ANSWERS", SQL_ANSWERS, STORE_SQL_TOOL, ctx);
    fn("SQL_ANSWER_RESEAL", SQL_ANSWER_RESEAL, STORE_SQL_TOOL, ctx);
}
