/* audit.c: the audit trail of personal data. Each record carries a keyed
 * MAC (BLAKE2b, the audit key of the current epoch) of its fields and of
 * the MAC before it, so a changed or deleted record breaks the chain and
 * the chain cannot be recomputed without the key. Records are appended by
 * the store's one writer, so the chain is a line, never a tree; the writer
 * keeps the chain's head while a batch runs (read once per batch, restored
 * when a unit rolls back), so a record costs one MAC and one insert.
 *
 * Checkpoints, signed with Ed25519, hold the chain's position and head; the
 * writer adds one at the end of a batch every `every` records, and the
 * server on shutdown, `audit verify`, `audit archive` and `key rotate` add
 * their own. Archives move the oldest records out to a file; the schema
 * lets records go only when a (signed) archive covers them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"
#include "store/keys.h"

#define AUDIT_COLS \
    "seq, at, actor, org_id, role, action, person_id, case_id, purpose, request_id, status, prev_hash, hash"
static const char SQL_AUDIT_LAST[] = "SELECT seq, hash, at FROM audit ORDER BY seq DESC LIMIT 1";
static const char SQL_ARCHIVE_LAST[] =
    "SELECT through_seq, head, at FROM audit_archives ORDER BY through_seq DESC LIMIT 1";
static const char SQL_AUDIT_INSERT[] =
    "INSERT INTO audit (seq, at, actor, org_id, role, action, person_id, case_id, purpose, request_id, status,"
    " prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
/* The persons a record names when several (audit_persons, beside the
 * chain), and who may read a record: an auditor reads those of its
 * organisations' actors and those naming a person, a case or a token (as
 * purpose) of its organisations. */
static const char SQL_AUDIT_PERSON[] = "INSERT OR IGNORE INTO audit_persons (seq, person_id) VALUES (?1, ?2)";
/* A record's persons in person_id order: the walk of the index on (seq,
 * person_id), which INDEXED BY holds the plan to. */
#define SQL_PERSONS_OF(seq) \
    "(SELECT group_concat(apo.person_id, ' ') FROM audit_persons apo INDEXED BY audit_persons_seq" \
    " WHERE apo.seq = " seq ")"
/* The trail by seq: of a person (audit_person, and audit_persons for the
 * records naming several: two arms merged in seq order), of an actor
 * (audit_actor), or all (the rowid); since: from the first record at or
 * after that time (audit_at) on, which is exact because a record's time is
 * never before the one's before it (store_audit_append). Each record is
 * then kept if it is about what the reader oversees: its actor's
 * organisation, or a person, case or token (its id as purpose) of it. */
enum { AUD_PERSON = 1, AUD_ACTOR = 2, AUD_SINCE = 4, AUD_AFTER = 8, AUD_SHAPES = 16 };
/* seq: the column the arm walks in order (a.seq, or ap.seq for the arm of
 * audit_persons, so that SQLite merges the arms without a sort). */
#define AUDIT_SEL_BY(seq)                                                                                       \
    seq ", a.at, a.actor, a.org_id, a.role, a.action, a.person_id, a.case_id, a.purpose, a.request_id,"      \
    " a.status, a.prev_hash, a.hash, " SQL_PERSONS_OF("a.seq")
#define AUDIT_SEL AUDIT_SEL_BY("a.seq")
/* ... and a system operator's (or the server's own: a reload on SIGHUP):
 * what it does (reloads, organisations, tokens, the clock) bears on every
 * organisation, so every auditor reads it. */
#define AUDIT_SCOPE                                                                                     \
    " AND (" OVERSEEN_BY("a.org_id") " OR a.role IN ('operator', 'system')"                          \
    "   OR EXISTS (SELECT 1 FROM persons p WHERE p.id = a.person_id AND " OVERSEEN_BY("p.org_id") ")"    \
    "   OR EXISTS (SELECT 1 FROM cases c WHERE c.id = a.case_id AND " OVERSEEN_BY("c.org_id") ")"        \
    "   OR EXISTS (SELECT 1 FROM tokens t WHERE t.id = a.purpose AND " OVERSEEN_BY("t.org_id") ")"       \
    "   OR EXISTS (SELECT 1 FROM audit_persons ap2 JOIN persons p ON p.id = ap2.person_id"                 \
    "              WHERE ap2.seq = a.seq AND " OVERSEEN_BY("p.org_id") "))"

static void audit_filters(sql_buf *b, unsigned shape)
{
    /* with a person, the person's index drives: +actor only filters */
    if (shape & AUD_ACTOR) sql_add(b, " AND %sa.actor = ?2", shape & AUD_PERSON ? "+" : "");
    /* one lower bound on seq, so that the index range starts there */
#define SINCE_SEQ "(SELECT seq FROM audit WHERE at >= ?3 ORDER BY at LIMIT 1)"
    if ((shape & AUD_SINCE) && (shape & AUD_AFTER))
        sql_add(b, " AND a.seq > MAX(CAST(?4 AS INTEGER), " SINCE_SEQ " - 1) AND a.at >= ?3");
    else if (shape & AUD_SINCE)
        sql_add(b, " AND a.seq >= " SINCE_SEQ " AND a.at >= ?3");
    else if (shape & AUD_AFTER)
        sql_add(b, " AND a.seq > CAST(?4 AS INTEGER)");
#undef SINCE_SEQ
    sql_add(b, AUDIT_SCOPE);
}

static void audit_list_sql(sql_buf *b, unsigned shape)
{
    if (shape & AUD_PERSON) {
        sql_add(b, "SELECT " AUDIT_SEL " FROM audit a WHERE a.person_id = ?1");
        audit_filters(b, shape);
        sql_add(b, " UNION SELECT " AUDIT_SEL_BY("ap.seq") " FROM audit_persons ap CROSS JOIN audit a ON a.seq = ap.seq"
                   " WHERE ap.person_id = ?1");
        audit_filters(b, shape);
        sql_add(b, " ORDER BY 1 LIMIT ?5");
        return;
    }
    /* No filter but the reader's scope: a walk of the trail in order, each
     * record kept or not (a system operator's keeps them all). */
    sql_add(b, "SELECT " AUDIT_SEL " FROM audit a WHERE %s1", shape ? "" : "/*scoped*/ ");
    audit_filters(b, shape);
    sql_add(b, " ORDER BY a.seq LIMIT ?5");
}
static const char SQL_AUDIT_RANGE[] = "SELECT " AUDIT_COLS ", " SQL_PERSONS_OF("audit.seq") " FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2";
static const char SQL_CP_LAST[] =
    "SELECT id, through_seq FROM audit_checkpoints ORDER BY id DESC LIMIT 1";
static const char SQL_ARCHIVED[] = "SELECT COALESCE(MAX(through_seq), 0) FROM audit_archives";
static const char SQL_CP_INSERT[] =
    "INSERT INTO audit_checkpoints (id, epoch, through_seq, head, archived_through, at, reason, signature)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char SQL_CP_LIST[] =
    "SELECT id, epoch, through_seq, head, archived_through, at, reason, signature FROM audit_checkpoints"
    " WHERE id > ?1 ORDER BY id";
static const char SQL_ARCHIVE_LIST[] =
    "SELECT from_seq, through_seq, records, epoch, prev, head, at, file, signature FROM audit_archives"
    " ORDER BY through_seq";
static const char SQL_ARCHIVE_INSERT[] =
    "INSERT INTO audit_archives (from_seq, through_seq, records, epoch, prev, head, at, file, signature)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_CUT[] = "SELECT seq FROM audit WHERE seq > ?2 AND at >= ?1 ORDER BY seq LIMIT 1";
static const char SQL_LAST_SEQ[] = "SELECT COALESCE(MAX(seq), 0) FROM audit";
static const char SQL_ARCHIVE_PURGE[] =
    "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE seq <="
    " (SELECT COALESCE(MAX(through_seq), 0) FROM audit_archives) ORDER BY seq LIMIT ?1)";
static const char SQL_ARCHIVE_PURGE_PERSONS[] =
    "DELETE FROM audit_persons WHERE seq < COALESCE((SELECT MIN(seq) FROM audit),"
    " (SELECT MAX(through_seq) + 1 FROM audit_archives), 0)";

#define GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

static struct {
    long every;
    store_checkpoint_hook hook;
} CP = {10000, NULL};

void store_audit_checkpoints_every(long every, store_checkpoint_hook hook)
{
    CP.every = every;
    CP.hook = hook;
}

store_checkpoint_hook store_audit_hook(void) { return CP.hook; }

/* ---- the MAC of a record ---- */
static const char *opt(const char *v) { return v && *v ? v : NULL; }

/* One field: its length (8 bytes, little-endian; all ones for NULL) and its
 * bytes, so no two different records encode alike. */
static void put(crypto_generichash_state *s, const char *v)
{
    unsigned char len[8];
    uint64_t n = v ? (uint64_t)strlen(v) : UINT64_MAX;
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
    crypto_generichash_update(s, len, sizeof len);
    if (v) crypto_generichash_update(s, (const unsigned char *)v, strlen(v));
}

/* Every field of the record, and the MAC before it. A field added to the
 * record is added here. */
/* persons: every person the record names when several, sorted and
 * space-separated (as SQL_PERSONS_OF reads them back), or NULL; a record
 * naming at most one person is MACed without it. */
static void record_mac(const unsigned char key[KEY_BYTES], const char *prev, long long seq, const char *at,
                       const audit_entry *a, const char *persons, char out[SHA256_HEX])
{
    crypto_generichash_state s;
    char num[24];
    unsigned char h[32];
    crypto_generichash_init(&s, key, KEY_BYTES, sizeof h);
    put(&s, "sarye audit record v1");
    put(&s, prev);
    snprintf(num, sizeof num, "%lld", seq);
    put(&s, num);
    put(&s, at);
    put(&s, a->actor);
    put(&s, a->org);
    put(&s, a->role);
    put(&s, a->action);
    put(&s, opt(a->person_id));
    put(&s, opt(a->case_id));
    put(&s, opt(a->purpose));
    put(&s, a->request_id);
    snprintf(num, sizeof num, "%d", a->status);
    put(&s, num);
    if (persons && *persons) put(&s, persons);
    crypto_generichash_final(&s, h, sizeof h);
    keys_hex(h, sizeof h, out);
}

/* The chain of the first sarye (unkeyed SHA-256), for the records it wrote;
 * a checkpoint signed when the database got its keyring holds their head. */
static void legacy_hash(const char *prev, long long seq, const char *at, const audit_entry *a, char out[SHA256_HEX])
{
    char buf[2048];
    int n = snprintf(buf, sizeof buf, "%s|%lld|%s|%s|%s|%s|%s|%s|%s|%s|%s|%d", prev, seq, at, a->actor, a->org,
                     a->role, a->action, a->person_id ? a->person_id : "", a->case_id ? a->case_id : "",
                     a->purpose ? a->purpose : "", a->request_id, a->status);
    sha256_hex(buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1), out);
}

/* ---- the head ---- */
static int read_head(store_tx *tx, long long *seq, char hash[SHA256_HEX], char at[RFC3339_MAX], store_err *e)
{
    const char *const sql[] = {SQL_AUDIT_LAST, SQL_ARCHIVE_LAST};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st = store_stmt(tx, sql[i], e);
        if (!st) return -1;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *seq = sqlite3_column_int64(st, 0);
            str_copy(hash, SHA256_HEX, TEXT(st, 1));
            if (at) str_copy(at, RFC3339_MAX, TEXT(st, 2) ? TEXT(st, 2) : "");
            sqlite3_reset(st);
            return 0;
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) return store_fail(tx, e, "audit head");
    }
    *seq = 0;
    str_copy(hash, SHA256_HEX, GENESIS);
    if (at) at[0] = 0;
    return 0;
}

int store_audit_chain_head(store_tx *tx, long long *seq, char head[SHA256_HEX], store_err *e)
{
    return read_head(tx, seq, head, NULL, e);
}

/* The chain's head: cached in the writer's connection during a batch. */
static int audit_head(store_tx *tx, store_audit_head *h, store_err *e)
{
    if (tx->conn->audit.valid) {
        *h = tx->conn->audit;
        return 0;
    }
    *h = tx->conn->audit;
    if (read_head(tx, &h->seq, h->hash, h->at, e)) return -1;
    h->valid = true;
    return 0;
}

static int cmp_str(const void *x, const void *y) { return strcmp(*(const char *const *)x, *(const char *const *)y); }

/* The persons a record names when several: sorted, each once,
 * space-separated (malloc'd); NULL when fewer than two (*oom when for
 * want of memory). */
static char *persons_joined(const audit_entry *a, bool *oom)
{
    *oom = false;
    if (a->n_persons < 2) return NULL;
    const char **v = malloc(a->n_persons * sizeof *v);
    if (!v) return *oom = true, NULL;
    size_t len = 1;
    for (size_t i = 0; i < a->n_persons; i++) {
        v[i] = a->persons[i];
        len += strlen(v[i]) + 1;
    }
    qsort(v, a->n_persons, sizeof *v, cmp_str);
    char *out = malloc(len), *w = out;
    size_t distinct = 0;
    if (out) {
        *w = 0;
        for (size_t i = 0; i < a->n_persons; i++) {
            if (i && !strcmp(v[i], v[i - 1])) continue;
            w += sprintf(w, "%s%s", w == out ? "" : " ", v[i]);
            distinct++;
        }
    } else {
        *oom = true;
    }
    free(v);
    if (distinct < 2) {
        free(out);
        return NULL;
    }
    return out;
}

int store_audit_append(store_tx *tx, const audit_entry *a, store_err *e)
{
    const keyset *ks = keys_current();
    if (!ks->ready) return store_err_set(e, STORE_INTERNAL, "no key is loaded: the audit trail cannot be written");
    store_audit_head h;
    if (audit_head(tx, &h, e)) return -1;
    long long seq = h.seq + 1;
    char prev[SHA256_HEX], at[RFC3339_MAX], hash[SHA256_HEX];
    str_copy(prev, sizeof prev, h.hash);
    time_rfc3339(time_now_ms(), at);
    /* A clock stepped back does not put a record before the one it follows:
     * the trail is in time order, which `since` relies on. */
    if (strcmp(at, h.at) < 0) str_copy(at, sizeof at, h.at);
    bool oom;
    char *persons = persons_joined(a, &oom);
    if (oom) return store_fail(tx, e, "audit persons: out of memory");
    record_mac(ks->audit_mac, prev, seq, at, a, persons, hash);
    sqlite3_stmt *st = store_stmt(tx, SQL_AUDIT_INSERT, e);
    if (!st) {
        free(persons);
        return -1;
    }
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_text(st, 2, at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, a->action, -1, SQLITE_STATIC);
    store_bind_opt(st, 7, a->person_id);
    store_bind_opt(st, 8, a->case_id);
    store_bind_opt(st, 9, a->purpose);
    sqlite3_bind_text(st, 10, a->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 11, a->status);
    sqlite3_bind_text(st, 12, prev, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        free(persons);
        return store_fail(tx, e, "audit append");
    }
    for (size_t i = 0; persons && i < a->n_persons; i++) {
        if (!(st = store_stmt(tx, SQL_AUDIT_PERSON, e))) {
            free(persons);
            return -1;
        }
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_text(st, 2, a->persons[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            free(persons);
            return store_fail(tx, e, "audit persons");
        }
    }
    free(persons);
    tx->conn->audit.valid = true;
    tx->conn->audit.seq = seq;
    memcpy(tx->conn->audit.hash, hash, sizeof hash);
    memcpy(tx->conn->audit.at, at, sizeof at);
    return 0;
}

/* ---- reading records ---- */
static int audit_read(sqlite3_stmt *st, void *row)
{
    audit_row *a = row;
    const char **const f[] = {NULL,          &a->at,      &a->actor,   &a->org,        &a->role,
                              &a->action,    &a->person_id, &a->case_id, &a->purpose, &a->request_id,
                              NULL,          &a->prev_hash, &a->hash,  &a->persons};
    a->mem = store_texts(st, f, 14);
    a->seq = sqlite3_column_int64(st, 0);
    a->status = sqlite3_column_int(st, 10);
    return a->mem ? 0 : -1;
}

static void audit_drop(void *row) { audit_row_free(row); }

static int audit_page(store_tx *tx, sqlite3_stmt *st, int limit, audit_list *out, store_err *e)
{
    void *items;
    if (store_rows(tx, st, limit, sizeof *out->items, audit_read, audit_drop, &items, &out->n, &out->more, e,
                   "audit list"))
        return -1;
    out->items = items;
    if (out->n) snprintf(out->last, sizeof out->last, "%lld", out->items[out->n - 1].seq);
    return 0;
}

void store_sql_of_audit(store_sql_fn fn, void *ctx)
{
    STORE_SQL(fn, ctx, SQL_AUDIT_LAST);
    STORE_SQL(fn, ctx, SQL_AUDIT_INSERT);
    STORE_SQL(fn, ctx, SQL_AUDIT_PERSON);
    /* the writer's, once a batch: the chain's head and the last checkpoint */
    STORE_SQL(fn, ctx, SQL_ARCHIVE_LAST);
    STORE_SQL(fn, ctx, SQL_CP_LAST);
    STORE_SQL(fn, ctx, SQL_ARCHIVED);
    STORE_SQL(fn, ctx, SQL_CP_INSERT);
    /* audit verify, archive and export */
    fn("SQL_AUDIT_RANGE", SQL_AUDIT_RANGE, STORE_SQL_TOOL, ctx);
    fn("SQL_CP_LIST", SQL_CP_LIST, STORE_SQL_TOOL, ctx);
    fn("SQL_ARCHIVE_LIST", SQL_ARCHIVE_LIST, STORE_SQL_TOOL, ctx);
    fn("SQL_ARCHIVE_INSERT", SQL_ARCHIVE_INSERT, STORE_SQL_TOOL, ctx);
    fn("SQL_CUT", SQL_CUT, STORE_SQL_TOOL, ctx);
    fn("SQL_LAST_SEQ", SQL_LAST_SEQ, STORE_SQL_TOOL, ctx);
    fn("SQL_ARCHIVE_PURGE", SQL_ARCHIVE_PURGE, STORE_SQL_TOOL, ctx);
    fn("SQL_ARCHIVE_PURGE_PERSONS", SQL_ARCHIVE_PURGE_PERSONS, STORE_SQL_TOOL, ctx);
    for (unsigned shape = 0; shape < AUD_SHAPES; shape++) {
        sql_buf b = {0};
        char name[64];
        audit_list_sql(&b, shape);
        snprintf(name, sizeof name, "audit list (shape %u)", shape);
        if (!b.oom) fn(name, b.s, STORE_SQL_REQUEST, ctx);
        sql_free(&b);
    }
}

int store_audit_list(store_tx *tx, const principal *overseer, const audit_query *q, audit_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sql_buf b = {0};
    audit_list_sql(&b, (q->person_id && *q->person_id ? AUD_PERSON : 0) | (q->actor && *q->actor ? AUD_ACTOR : 0) |
                           (q->since && *q->since ? AUD_SINCE : 0) | (q->after && *q->after ? AUD_AFTER : 0));
    sqlite3_stmt *st = store_stmt_built(tx, &b, e);
    sql_free(&b);
    if (!st) return -1;
    store_bind_overseer(st, overseer);
    store_bind_opt(st, 1, q->person_id);
    store_bind_opt(st, 2, q->actor);
    store_bind_opt(st, 3, q->since);
    store_bind_opt(st, 4, q->after);
    sqlite3_bind_int(st, 5, q->limit + 1);
    return audit_page(tx, st, q->limit, out, e);
}

int store_audit_range(store_tx *tx, long long after_seq, int limit, audit_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_AUDIT_RANGE, e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, after_seq);
    sqlite3_bind_int(st, 2, limit + 1);
    return audit_page(tx, st, limit, out, e);
}

bool store_audit_record_ok(const audit_row *r, const char *prev, char *why, size_t whylen)
{
    if (strcmp(r->prev_hash, prev)) {
        snprintf(why, whylen,
                 "record %lld does not follow the record before it: a record before it was removed, or the"
                 " chain was rewritten",
                 r->seq);
        return false;
    }
    bool legacy = false, usable = true;
    const unsigned char *key = keyring_mac_for(r->seq, &legacy, &usable);
    if (!usable) {
        snprintf(why, whylen, "record %lld: the key of its epoch cannot be opened with this key (the keyring was changed)",
                 r->seq);
        return false;
    }
    audit_entry a = {.actor = r->actor, .org = r->org, .role = r->role, .action = r->action,
                     .person_id = r->person_id, .case_id = r->case_id, .purpose = r->purpose,
                     .request_id = r->request_id, .status = r->status};
    char mac[SHA256_HEX];
    if (legacy) legacy_hash(prev, r->seq, r->at, &a, mac);
    else record_mac(key, prev, r->seq, r->at, &a, r->persons, mac);
    if (strcmp(mac, r->hash)) {
        snprintf(why, whylen, "record %lld was changed: its MAC does not match what it says", r->seq);
        return false;
    }
    return true;
}

static int archive_message(const audit_archive *a, char *buf, size_t n);

/* ---- checkpoints ---- */
static int checkpoint_message(const audit_checkpoint *c, char *buf, size_t n)
{
    return snprintf(buf, n,
                    "sarye audit checkpoint v1\nid %lld\nepoch %d\nthrough %lld\nhead %s\narchived %lld\nat %s\n"
                    "reason %s\n",
                    c->id, c->epoch, c->through_seq, c->head, c->archived_through, c->at, c->reason);
}

static const audit_epoch *epoch_of(int epoch, const audit_epoch *epochs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (epochs[i].epoch == epoch) return &epochs[i];
    return NULL;
}

static bool signed_by(int epoch, const audit_epoch *epochs, size_t n, const char *msg, int len, const char *sig)
{
    const audit_epoch *ep = epoch_of(epoch, epochs, n);
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    if (!ep || len <= 0 || !keys_unhex(ep->public_key, pk, sizeof pk)) return false;
    return keys_signature_ok(pk, msg, (size_t)len, sig);
}

bool store_audit_checkpoint_ok(const audit_checkpoint *c, const audit_epoch *epochs, size_t n)
{
    char msg[512];
    int len = checkpoint_message(c, msg, sizeof msg);
    return len < (int)sizeof msg && signed_by(c->epoch, epochs, n, msg, len, c->signature);
}

static int scalar(store_tx *tx, const char *sql, long long *out, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, sql, e);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_fail(tx, e, "audit scalar");
}

/* The last checkpoint's id and position (0, 0 when there is none). */
static int last_checkpoint(store_tx *tx, long long *id, long long *through, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_CP_LAST, e);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    *id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    *through = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_fail(tx, e, "audit last checkpoint");
}

/* Signs and inserts a checkpoint at (seq, head) with the current key. */
static int insert_checkpoint(store_tx *tx, long long last_id, long long seq, const char *head, const char *reason,
                             audit_checkpoint *c, store_err *e)
{
    const keyset *ks = keys_current();
    if (!ks->ready) return store_err_set(e, STORE_INTERNAL, "no key is loaded: no checkpoint can be signed");
    memset(c, 0, sizeof *c);
    c->id = last_id + 1;
    c->epoch = keyring_epoch_now();
    c->through_seq = seq;
    str_copy(c->head, sizeof c->head, head);
    if (scalar(tx, SQL_ARCHIVED, &c->archived_through, e)) return -1;
    time_rfc3339(time_now_ms(), c->at);
    str_copy(c->reason, sizeof c->reason, reason);
    char msg[512];
    int len = checkpoint_message(c, msg, sizeof msg);
    keys_sign(ks, msg, (size_t)len, c->signature);
    sqlite3_stmt *st = store_stmt(tx, SQL_CP_INSERT, e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int(st, 2, c->epoch);
    sqlite3_bind_int64(st, 3, c->through_seq);
    sqlite3_bind_text(st, 4, c->head, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, c->archived_through);
    sqlite3_bind_text(st, 6, c->at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, c->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, c->signature, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "audit checkpoint");
}

int store_audit_checkpoint(store_tx *tx, const char *reason, long long seq, const char *head, bool force,
                           audit_checkpoint *out, bool *written, store_err *e)
{
    long long last_id, last_through;
    char at_head[SHA256_HEX];
    *written = false;
    if (last_checkpoint(tx, &last_id, &last_through, e)) return -1;
    if (!head) {
        if (read_head(tx, &seq, at_head, NULL, e)) return -1;
        head = at_head;
    }
    if (!force && last_id > 0 && last_through == seq) return 0;
    if (insert_checkpoint(tx, last_id, seq, head, reason, out, e)) return -1;
    *written = true;
    return 0;
}

void store_audit_archive_sign(audit_archive *a)
{
    const keyset *ks = keys_current();
    char msg[1024];
    a->epoch = keyring_epoch_now();
    int len = archive_message(a, msg, sizeof msg);
    a->signature[0] = 0;
    if (ks->ready && len < (int)sizeof msg) keys_sign(ks, msg, (size_t)len, a->signature);
}

int store_audit_batch_checkpoint(store_tx *tx, audit_checkpoint *out)
{
    store_audit_head *h = &tx->conn->audit;
    if (!h->valid || CP.every <= 0 || !keys_current()->ready) return 0;
    if (h->cp_known && h->seq - h->cp_through < CP.every) return 0;
    store_err e = {0};
    long long last_id, last_through;
    if (last_checkpoint(tx, &last_id, &last_through, &e)) return 0;
    h->cp_known = true;
    h->cp_through = last_through;
    if (h->seq - last_through < CP.every) return 0;
    if (insert_checkpoint(tx, last_id, h->seq, h->hash, "interval", out, &e)) {
        h->cp_known = false;
        return 0;
    }
    h->cp_through = h->seq;
    return 1;
}

int store_audit_checkpoints(store_tx *tx, long long after_id, audit_checkpoint **out, size_t *n, store_err *e)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = store_stmt(tx, SQL_CP_LIST, e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, after_id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            audit_checkpoint *m = realloc(*out, cap * sizeof **out);
            if (!m) {
                sqlite3_reset(st);
                free(*out);
                *out = NULL;
                return store_oom(e);
            }
            *out = m;
        }
        audit_checkpoint *c = &(*out)[(*n)++];
        memset(c, 0, sizeof *c);
        c->id = sqlite3_column_int64(st, 0);
        c->epoch = sqlite3_column_int(st, 1);
        c->through_seq = sqlite3_column_int64(st, 2);
        str_copy(c->head, sizeof c->head, TEXT(st, 3) ? TEXT(st, 3) : "");
        c->archived_through = sqlite3_column_int64(st, 4);
        str_copy(c->at, sizeof c->at, TEXT(st, 5) ? TEXT(st, 5) : "");
        str_copy(c->reason, sizeof c->reason, TEXT(st, 6) ? TEXT(st, 6) : "");
        str_copy(c->signature, sizeof c->signature, TEXT(st, 7) ? TEXT(st, 7) : "");
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        free(*out);
        *out = NULL;
        *n = 0;
        return store_fail(tx, e, "audit checkpoints");
    }
    return 0;
}

/* ---- archives ---- */
static int archive_message(const audit_archive *a, char *buf, size_t n)
{
    return snprintf(buf, n,
                    "sarye audit archive v1\nfrom %lld\nthrough %lld\nrecords %lld\nprev %s\nhead %s\nepoch %d\n"
                    "at %s\nfile %s\n",
                    a->from_seq, a->through_seq, a->records, a->prev, a->head, a->epoch, a->at, a->file);
}

bool store_audit_archive_ok(const audit_archive *a, const audit_epoch *epochs, size_t n)
{
    char msg[1024];
    int len = archive_message(a, msg, sizeof msg);
    return len < (int)sizeof msg && signed_by(a->epoch, epochs, n, msg, len, a->signature);
}

int store_audit_archives(store_tx *tx, audit_archive **out, size_t *n, store_err *e)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = store_stmt(tx, SQL_ARCHIVE_LIST, e);
    if (!st) return -1;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            audit_archive *m = realloc(*out, cap * sizeof **out);
            if (!m) {
                sqlite3_reset(st);
                free(*out);
                *out = NULL;
                return store_oom(e);
            }
            *out = m;
        }
        audit_archive *a = &(*out)[(*n)++];
        memset(a, 0, sizeof *a);
        a->from_seq = sqlite3_column_int64(st, 0);
        a->through_seq = sqlite3_column_int64(st, 1);
        a->records = sqlite3_column_int64(st, 2);
        a->epoch = sqlite3_column_int(st, 3);
        str_copy(a->prev, sizeof a->prev, TEXT(st, 4) ? TEXT(st, 4) : "");
        str_copy(a->head, sizeof a->head, TEXT(st, 5) ? TEXT(st, 5) : "");
        str_copy(a->at, sizeof a->at, TEXT(st, 6) ? TEXT(st, 6) : "");
        str_copy(a->file, sizeof a->file, TEXT(st, 7) ? TEXT(st, 7) : "");
        str_copy(a->signature, sizeof a->signature, TEXT(st, 8) ? TEXT(st, 8) : "");
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        free(*out);
        *out = NULL;
        *n = 0;
        return store_fail(tx, e, "audit archives");
    }
    return 0;
}

int store_audit_cut(store_tx *tx, const char *before, long long after_seq, long long *cut, store_err *e)
{
    *cut = 0;
    sqlite3_stmt *st = store_stmt(tx, SQL_CUT, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, before, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after_seq);
    int rc = sqlite3_step(st);
    long long first_kept = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_fail(tx, e, "audit cut");
    if (first_kept) {
        *cut = first_kept - 1;
    } else if (scalar(tx, SQL_LAST_SEQ, cut, e)) {
        return -1;
    }
    if (*cut <= after_seq) *cut = 0;
    return 0;
}

int store_audit_archive_record(store_tx *tx, const audit_archive *a, audit_checkpoint *cp, store_err *e)
{
    if (!a->signature[0]) return store_err_set(e, STORE_INTERNAL, "the archive is not signed");
    sqlite3_stmt *st = store_stmt(tx, SQL_ARCHIVE_INSERT, e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, a->from_seq);
    sqlite3_bind_int64(st, 2, a->through_seq);
    sqlite3_bind_int64(st, 3, a->records);
    sqlite3_bind_int(st, 4, a->epoch);
    sqlite3_bind_text(st, 5, a->prev, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, a->head, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, a->at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, a->file, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, a->signature, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        if ((sqlite3_extended_errcode(tx->db) & 0xff) == SQLITE_CONSTRAINT)
            return store_err_set(e, STORE_CONFLICT, "these records were archived already");
        return store_fail(tx, e, "audit archive");
    }
    bool written;
    return store_audit_checkpoint(tx, "archive", 0, NULL, true, cp, &written, e);
}

int store_audit_archive_purge(store_tx *tx, int limit, int *deleted, store_err *e)
{
    *deleted = 0;
    sqlite3_stmt *st = store_stmt(tx, SQL_ARCHIVE_PURGE, e);
    if (!st) return -1;
    sqlite3_bind_int(st, 1, limit);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "audit archive purge");
    *deleted = sqlite3_changes(tx->db);
    if (!(st = store_stmt(tx, SQL_ARCHIVE_PURGE_PERSONS, e))) return -1;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "audit archive purge (persons)");
    return 0;
}

/* ---- epochs ---- */
int audit_epoch_message(const audit_epoch *ep, char *buf, size_t n)
{
    return snprintf(buf, n, "sarye keyring epoch v1\nepoch %d\nkey %s\nfirst %lld\npublic %s\n", ep->epoch,
                    ep->key_id, ep->first_seq, ep->public_key);
}

bool store_audit_epochs_ok(const audit_epoch *epochs, size_t n, char *why, size_t whylen)
{
    for (size_t i = 1; i < n; i++) {
        char msg[512];
        int len = audit_epoch_message(&epochs[i], msg, sizeof msg);
        if (epochs[i].epoch != epochs[i - 1].epoch + 1 ||
            !signed_by(epochs[i - 1].epoch, epochs, n, msg, len, epochs[i].endorsement)) {
            snprintf(why, whylen, "key epoch %d is not endorsed by the key before it (the keyring was changed)",
                     epochs[i].epoch);
            return false;
        }
    }
    return true;
}
