/*
 * audit.c: the audit trail of personal data. Every read and write that
 * discloses a person is recorded before the answer leaves, naming every
 * person it discloses (process_disclose for those the answer does not
 * name); the record of a write is part of the write's own unit, the record
 * of a read is a unit of its own, which rides the writer's next batch with
 * everything else.
 *
 * And what keeps the trail honest (the chain and its signatures are the
 * store's, audit.c and keyring.c there):
 *
 *   - verification, from the last verified checkpoint forward (or every
 *     record), in short read transactions of `batch` records, so no read
 *     snapshot is held for long; it checks every checkpoint's signature,
 *     each record against the MAC before it, the heads of the checkpoints
 *     it passes, and that no signed position lies beyond the last record;
 *   - the anchor: the newest checkpoint, rewritten beside the key file
 *     whenever one is made, so records and checkpoints removed together
 *     from the database are still found missing;
 *   - checkpoint exports, to keep elsewhere and verify the database against;
 *   - archives: the oldest records written to a file, read back and
 *     verified, then recorded (signed) and only then deleted, in batches.
 *
 * The files are JSON lines: a header ({"format", "key_id", "keys"}), then
 * one {"checkpoint"}, {"archive"} or {"record"} per line.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "process/process.h"
#include "render/render.h"
#include "store/pii.h"
#include "store/store.h"

#define FORMAT_CHECKPOINTS "sarye-audit-checkpoints/1"
#define FORMAT_ARCHIVE "sarye-audit-archive/1"
#define GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
#define BATCH 5000

void process_disclose(store_reply *reply, const char *person_id)
{
    if (!person_id || !*person_id) return;
    if (!reply->disclosed) reply->disclosed = json_array();
    json_array_append_new(reply->disclosed, json_string(person_id));
}

static int work_audit(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    store_err se = {0};
    if (store_audit_append(tx, arg, &se)) return process_store_fail(&se, e);
    return 0;
}

int process_audit(const audit_entry *a, err_t *e)
{
    store_reply reply = {0};
    return process_write_rerunnable(NULL, work_audit, (void *)a, &reply, e);
}

typedef struct {
    const principal *p;
    const audit_query *q;
} list_arg;

static int work_audit_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    list_arg *a = arg;
    audit_list list;
    store_err se = {0};
    if (store_audit_list(tx, a->p, a->q, &list, &se)) return process_store_fail(&se, e);
    reply->status = 200;
    reply->body = render_page(render_audits(&list), list.more, list.last);
    audit_list_free(&list);
    return 0;
}

int process_audit_list(const principal *p, const audit_query *q, store_reply *reply, err_t *e)
{
    list_arg a = {p, q};
    return process_read(work_audit_list, &a, reply, e);
}

/* ---- files ---- */
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

/* A new file beside path (its owner's alone), to be renamed onto it. */
static FILE *open_tmp(const char *path, char *tmp, size_t tmplen, err_t *e)
{
    snprintf(tmp, tmplen, "%s.tmp-%ld", path, (long)getpid());
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        err_set(e, 500, "io_error", "cannot write '%s': %s", tmp, strerror(errno));
    }
    return f;
}

static int put_line(FILE *f, const char *key, json_t *value)
{
    json_t *line = json_pack("{s:o}", key, value);
    int rc = line ? json_dumpf(line, f, JSON_COMPACT) : -1;
    json_decref(line);
    return rc == 0 && fputc('\n', f) != EOF ? 0 : -1;
}

static int put_header(FILE *f, const char *format, json_t *extra)
{
    size_t n;
    const audit_epoch *ep = store_keyring_epochs(&n);
    json_t *keys = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(keys, render_audit_epoch(&ep[i]));
    json_t *h = json_pack("{s:s, s:s, s:o}", "format", format, "key_id", pii_key_id(), "keys", keys);
    if (extra) json_object_update(h, extra);
    int rc = h ? json_dumpf(h, f, JSON_COMPACT) : -1;
    json_decref(h);
    return rc == 0 && fputc('\n', f) != EOF ? 0 : -1;
}

/* Flushes, fsyncs and closes f, then moves tmp onto path. */
static int finish_file(FILE *f, const char *tmp, const char *path, bool failed, err_t *e)
{
    int err = 0;
    if (fflush(f) || fsync(fileno(f))) err = errno;
    if (fclose(f) && !err) err = errno;
    if (failed || err || rename(tmp, path)) {
        if (!failed) err_set(e, 500, "io_error", "cannot write '%s': %s", path, strerror(err ? err : errno));
        unlink(tmp);
        return -1;
    }
    fsync_dir(path);
    return 0;
}

static long long jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static bool jstr(json_t *o, const char *k, char *out, size_t n, bool may_be_null)
{
    json_t *v = json_object_get(o, k);
    if (may_be_null && (!v || json_is_null(v))) {
        out[0] = 0;
        return true;
    }
    if (!json_is_string(v) || json_string_length(v) >= n) return false;
    str_copy(out, n, json_string_value(v));
    return true;
}

static bool epoch_from(json_t *j, audit_epoch *ep)
{
    memset(ep, 0, sizeof *ep);
    ep->epoch = (int)jint(j, "epoch");
    ep->first_seq = jint(j, "first_seq");
    return json_is_object(j) && jstr(j, "key_id", ep->key_id, sizeof ep->key_id, false) &&
           jstr(j, "public_key", ep->public_key, sizeof ep->public_key, false) &&
           jstr(j, "endorsement", ep->endorsement, sizeof ep->endorsement, true) &&
           jstr(j, "created_at", ep->created_at, sizeof ep->created_at, true) &&
           jstr(j, "retired_at", ep->retired_at, sizeof ep->retired_at, true);
}

static bool checkpoint_from(json_t *j, audit_checkpoint *c)
{
    memset(c, 0, sizeof *c);
    c->id = jint(j, "id");
    c->epoch = (int)jint(j, "epoch");
    c->through_seq = jint(j, "through_seq");
    c->archived_through = jint(j, "archived_through");
    return json_is_object(j) && jstr(j, "head", c->head, sizeof c->head, false) &&
           jstr(j, "at", c->at, sizeof c->at, false) && jstr(j, "reason", c->reason, sizeof c->reason, false) &&
           jstr(j, "signature", c->signature, sizeof c->signature, false);
}

static bool archive_from(json_t *j, audit_archive *a)
{
    memset(a, 0, sizeof *a);
    a->from_seq = jint(j, "from_seq");
    a->through_seq = jint(j, "through_seq");
    a->records = jint(j, "records");
    a->epoch = (int)jint(j, "epoch");
    return json_is_object(j) && jstr(j, "prev", a->prev, sizeof a->prev, false) &&
           jstr(j, "head", a->head, sizeof a->head, false) && jstr(j, "at", a->at, sizeof a->at, false) &&
           jstr(j, "file", a->file, sizeof a->file, false) &&
           jstr(j, "signature", a->signature, sizeof a->signature, false);
}

/* Reads a file of JSON lines: fn gets each line after the header (which
 * must name format). -1 with why when the file cannot be read or a line is
 * not JSON; fn's -1 stops. */
typedef int (*line_fn)(json_t *line, void *ctx, char *why, size_t whylen);
static int read_lines(const char *path, const char *format, json_t **header, line_fn fn, void *ctx, char *why,
                      size_t whylen)
{
    FILE *f = fopen(path, "r");
    *header = NULL;
    if (!f) {
        snprintf(why, whylen, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long n = 0;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        n++;
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)len, 0, &je);
        if (!json_is_object(j)) {
            snprintf(why, whylen, "%s:%ld: not a JSON object (%s)", path, n, je.text);
            json_decref(j);
            rc = -1;
            break;
        }
        if (n == 1) {
            const char *fmt = json_string_value(json_object_get(j, "format"));
            if (!fmt || strcmp(fmt, format)) {
                snprintf(why, whylen, "%s is not a file of %s", path, format);
                json_decref(j);
                rc = -1;
                break;
            }
            *header = j;
            continue;
        }
        rc = fn(j, ctx, why, whylen);
        json_decref(j);
        if (rc) break;
    }
    free(line);
    fclose(f);
    if (!rc && n == 0) {
        snprintf(why, whylen, "%s is empty", path);
        rc = -1;
    }
    if (rc) {
        json_decref(*header);
        *header = NULL;
    }
    return rc;
}

/* The keys a file names must be this database's, epoch by epoch. */
static bool keys_match(json_t *header, const char *path, char *why, size_t whylen)
{
    size_t n, i;
    const audit_epoch *db = store_keyring_epochs(&n);
    json_t *keys = json_object_get(header, "keys"), *k;
    if (!json_is_array(keys)) {
        snprintf(why, whylen, "%s names no keys", path);
        return false;
    }
    json_array_foreach(keys, i, k) {
        audit_epoch ep;
        const audit_epoch *mine = NULL;
        if (!epoch_from(k, &ep)) {
            snprintf(why, whylen, "%s: key %zu is malformed", path, i + 1);
            return false;
        }
        for (size_t x = 0; x < n; x++)
            if (db[x].epoch == ep.epoch) mine = &db[x];
        if (!mine || strcmp(mine->key_id, ep.key_id) || strcmp(mine->public_key, ep.public_key)) {
            snprintf(why, whylen,
                     "%s was signed by key %s (epoch %d, public key %.16s...), which is not a key of this database",
                     path, ep.key_id, ep.epoch, ep.public_key);
            return false;
        }
    }
    return true;
}

/* ---- checkpoint files: exports and the anchor ---- */
typedef struct {
    audit_checkpoint *cps;
    size_t nc, capc;
    audit_archive *arcs;
    size_t na, capa;
} cp_file;

static void cp_file_free(cp_file *f)
{
    free(f->cps);
    free(f->arcs);
    memset(f, 0, sizeof *f);
}

static int cp_line(json_t *line, void *ctx, char *why, size_t whylen)
{
    cp_file *f = ctx;
    json_t *c = json_object_get(line, "checkpoint"), *a = json_object_get(line, "archive");
    if (c) {
        if (f->nc == f->capc) {
            f->capc = f->capc ? f->capc * 2 : 16;
            audit_checkpoint *m = realloc(f->cps, f->capc * sizeof *m);
            if (!m) return snprintf(why, whylen, "out of memory"), -1;
            f->cps = m;
        }
        if (!checkpoint_from(c, &f->cps[f->nc])) return snprintf(why, whylen, "a malformed checkpoint"), -1;
        f->nc++;
    } else if (a) {
        if (f->na == f->capa) {
            f->capa = f->capa ? f->capa * 2 : 4;
            audit_archive *m = realloc(f->arcs, f->capa * sizeof *m);
            if (!m) return snprintf(why, whylen, "out of memory"), -1;
            f->arcs = m;
        }
        if (!archive_from(a, &f->arcs[f->na])) return snprintf(why, whylen, "a malformed archive"), -1;
        f->na++;
    }
    return 0;
}

static int write_checkpoint_file(const char *path, const audit_checkpoint *cps, size_t nc, const audit_archive *arcs,
                                 size_t na, err_t *e)
{
    char tmp[1200];
    FILE *f = open_tmp(path, tmp, sizeof tmp, e);
    if (!f) return -1;
    bool bad = put_header(f, FORMAT_CHECKPOINTS, NULL) != 0;
    for (size_t i = 0; i < na && !bad; i++) bad = put_line(f, "archive", render_audit_archive(&arcs[i])) != 0;
    for (size_t i = 0; i < nc && !bad; i++) bad = put_line(f, "checkpoint", render_audit_checkpoint(&cps[i])) != 0;
    if (bad) err_set(e, 500, "io_error", "cannot write '%s': %s", tmp, strerror(errno));
    return finish_file(f, tmp, path, bad, e);
}

static struct {
    pthread_mutex_t mu;
    char anchor[1100];
} A = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The anchor holds the newest checkpoint; one made elsewhere (another
 * process) and newer is kept. */
static void anchor_update(const audit_checkpoint *c)
{
    if (!A.anchor[0]) return;
    pthread_mutex_lock(&A.mu);
    json_t *header = NULL;
    cp_file old = {0};
    char why[300];
    bool newer = true;
    if (access(A.anchor, F_OK) == 0 && read_lines(A.anchor, FORMAT_CHECKPOINTS, &header, cp_line, &old, why, sizeof why) == 0) {
        const char *kid = json_string_value(json_object_get(header, "key_id"));
        for (size_t i = 0; i < old.nc; i++)
            if (old.cps[i].id >= c->id && kid && !strcmp(kid, pii_key_id())) newer = false;
    }
    json_decref(header);
    cp_file_free(&old);
    if (newer) {
        err_t e = {0};
        if (write_checkpoint_file(A.anchor, c, 1, NULL, 0, &e)) {
            log_msg(LOG_ERROR, "audit: cannot write the anchor", " file=\"%s\" error=\"%s\"", A.anchor, e.message);
            err_clear(&e);
        }
    }
    pthread_mutex_unlock(&A.mu);
}

void process_audit_setup(const char *anchor_file, long every)
{
    str_copy(A.anchor, sizeof A.anchor, anchor_file ? anchor_file : "");
    store_audit_checkpoints_every(every, anchor_update);
}

/* ---- checkpoints ---- */
typedef struct {
    const char *reason;
    long long seq;
    const char *head;
    bool force, written;
    audit_checkpoint cp;
} cp_arg;

static int work_checkpoint(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    cp_arg *a = arg;
    store_err se = {0};
    if (store_audit_checkpoint(tx, a->reason, a->seq, a->head, a->force, &a->cp, &a->written, &se))
        return process_store_fail(&se, e);
    return 0;
}

static int checkpoint_at(const char *reason, long long seq, const char *head, bool force, audit_checkpoint *out,
                         err_t *e)
{
    cp_arg a = {reason, seq, head, force, false, {0}};
    store_reply reply = {0};
    if (process_write(NULL, work_checkpoint, &a, &reply, e)) return -1;
    if (out) *out = a.cp;
    if (a.written) anchor_update(&a.cp);
    else if (out) out->id = 0;
    return 0;
}

int process_audit_checkpoint(const char *reason, audit_checkpoint *out, err_t *e)
{
    return checkpoint_at(reason, 0, NULL, false, out, e);
}

void process_audit_anchor(const audit_checkpoint *c) { anchor_update(c); }

typedef struct {
    audit_checkpoint *cps;
    size_t nc;
    audit_archive *arcs;
    size_t na;
} trail_meta;

static int work_meta(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    trail_meta *m = arg;
    store_err se = {0};
    if (store_audit_checkpoints(tx, 0, &m->cps, &m->nc, &se) || store_audit_archives(tx, &m->arcs, &m->na, &se))
        return process_store_fail(&se, e);
    return 0;
}

static void meta_free(trail_meta *m)
{
    free(m->cps);
    free(m->arcs);
    memset(m, 0, sizeof *m);
}

int process_audit_export(const char *path, size_t *n, err_t *e)
{
    trail_meta m = {0};
    store_reply reply = {0};
    if (process_read(work_meta, &m, &reply, e)) return -1;
    int rc = write_checkpoint_file(path, m.cps, m.nc, m.arcs, m.na, e);
    *n = m.nc;
    meta_free(&m);
    return rc;
}

/* ---- verification ---- */
typedef struct {
    long long after;
    int limit;
    audit_list list;
} range_arg;

static int work_range(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    range_arg *a = arg;
    store_err se = {0};
    if (store_audit_range(tx, a->after, a->limit, &a->list, &se)) return process_store_fail(&se, e);
    return 0;
}

static int by_through(const void *x, const void *y)
{
    const audit_checkpoint *a = *(const audit_checkpoint *const *)x, *b = *(const audit_checkpoint *const *)y;
    return a->through_seq < b->through_seq ? -1 : a->through_seq > b->through_seq ? 1 : a->id < b->id ? -1 : 1;
}

#define FAIL(...)                                             \
    do {                                                      \
        snprintf(r->why, sizeof r->why, __VA_ARGS__);         \
        goto done;                                            \
    } while (0)

/* The checkpoints of an export (or the anchor) must be the database's. */
static bool check_external(const char *path, const trail_meta *m, audit_verify_result *r)
{
    json_t *header = NULL;
    cp_file f = {0};
    size_t ne;
    const audit_epoch *ep = store_keyring_epochs(&ne);
    bool ok = false;
    if (read_lines(path, FORMAT_CHECKPOINTS, &header, cp_line, &f, r->why, sizeof r->why)) goto done;
    if (!keys_match(header, path, r->why, sizeof r->why)) goto done;
    for (size_t i = 0; i < f.nc; i++) {
        const audit_checkpoint *x = &f.cps[i], *mine = NULL;
        if (!store_audit_checkpoint_ok(x, ep, ne))
            FAIL("checkpoint %lld in %s does not carry a valid signature", x->id, path);
        for (size_t k = 0; k < m->nc; k++)
            if (m->cps[k].id == x->id) mine = &m->cps[k];
        if (!mine)
            FAIL("checkpoint %lld (records to %lld, signed at %s), held in %s, is not in the database: checkpoints"
                 " were removed",
                 x->id, x->through_seq, x->at, path);
        if (mine->through_seq != x->through_seq || strcmp(mine->head, x->head) || strcmp(mine->signature, x->signature))
            FAIL("checkpoint %lld in the database differs from the one held in %s", x->id, path);
        r->external++;
    }
    for (size_t i = 0; i < f.na; i++) {
        const audit_archive *x = &f.arcs[i];
        bool found = false;
        for (size_t k = 0; k < m->na; k++)
            if (m->arcs[k].through_seq == x->through_seq && !strcmp(m->arcs[k].head, x->head)) found = true;
        if (!found) FAIL("the archive of records %lld to %lld, held in %s, is not in the database", x->from_seq,
                         x->through_seq, path);
    }
    ok = true;
done:
    json_decref(header);
    cp_file_free(&f);
    return ok;
}

int process_audit_verify(const audit_verify_opts *o, audit_verify_result *r, err_t *e)
{
    memset(r, 0, sizeof *r);
    int64_t t0 = time_mono_ns();
    int batch = o->batch > 0 ? o->batch : BATCH;
    size_t ne;
    const audit_epoch *ep = store_keyring_epochs(&ne);
    trail_meta m = {0};
    const audit_checkpoint **order = NULL;
    audit_list *list = NULL;
    store_reply reply = {0};
    int rc = -1;
    if (!store_audit_epochs_ok(ep, ne, r->why, sizeof r->why)) {
        rc = 0;
        goto done;
    }
    if (process_read(work_meta, &m, &reply, e)) goto done;
    r->transactions++;
    rc = 0;
    /* Every checkpoint and archive: signed, none missing. */
    long long archived = 0;
    for (size_t i = 0; i < m.nc; i++) {
        const audit_checkpoint *c = &m.cps[i];
        if (c->id != (long long)i + 1)
            FAIL("checkpoint %lld is missing from the database (checkpoints are never removed)", (long long)i + 1);
        if (!store_audit_checkpoint_ok(c, ep, ne))
            FAIL("checkpoint %lld (signed at %s) does not carry a valid signature: it was changed", c->id, c->at);
        if (c->archived_through > archived) archived = c->archived_through;
    }
    r->checkpoints = m.nc;
    long long start = 0;
    char prev[SHA256_HEX] = GENESIS;
    for (size_t i = 0; i < m.na; i++) {
        const audit_archive *a = &m.arcs[i];
        if (!store_audit_archive_ok(a, ep, ne))
            FAIL("the archive of records %lld to %lld does not carry a valid signature: it was changed", a->from_seq,
                 a->through_seq);
        if (a->from_seq != start + 1 || strcmp(a->prev, prev))
            FAIL("the archive of records %lld to %lld does not follow the one before it", a->from_seq,
                 a->through_seq);
        start = a->through_seq;
        str_copy(prev, sizeof prev, a->head);
    }
    if (archived != start)
        FAIL("the checkpoints say records up to %lld were archived, but the database's archives end at %lld: an"
             " archive record was removed or added",
             archived, start);
    /* Held outside: the anchor beside the key, and an export. */
    if (A.anchor[0] && access(A.anchor, F_OK) == 0) {
        if (!check_external(A.anchor, &m, r)) goto done;
        r->anchor = true;
    }
    if (o->checkpoints_file && !check_external(o->checkpoints_file, &m, r)) goto done;

    /* Where to start: the newest verified checkpoint past the archives. */
    const audit_checkpoint *from = NULL;
    for (size_t i = 0; i < m.nc && !o->full; i++)
        if (!strcmp(m.cps[i].reason, "verify") && m.cps[i].through_seq > start &&
            (!from || m.cps[i].through_seq > from->through_seq))
            from = &m.cps[i];
    order = malloc((m.nc + 1) * sizeof *order);
    list = calloc(1, sizeof *list);
    if (!order || !list) {
        err_set(e, 500, "internal", "out of memory");
        rc = -1;
        goto done;
    }
    for (size_t i = 0; i < m.nc; i++) order[i] = &m.cps[i];
    qsort(order, m.nc, sizeof *order, by_through);
    size_t next_cp = 0;
    long long expect = start + 1;
    r->first = expect;
    if (from) {
        /* Its record is still there, with the MAC it signed. */
        range_arg a = {from->through_seq - 1, 1, {0}};
        if (process_read(work_range, &a, &reply, e)) {
            rc = -1;
            goto done;
        }
        r->transactions++;
        bool there = a.list.n == 1 && a.list.items[0].seq == from->through_seq;
        bool same = there && !strcmp(a.list.items[0].hash, from->head);
        audit_list_free(&a.list);
        if (!there)
            FAIL("record %lld, which checkpoint %lld (signed at %s) covers, is missing: records were removed",
                 from->through_seq, from->id, from->at);
        if (!same)
            FAIL("record %lld no longer has the MAC that checkpoint %lld (signed at %s) holds: the chain was"
                 " rewritten",
                 from->through_seq, from->id, from->at);
        r->from_checkpoint = from->id;
        expect = from->through_seq + 1;
        r->first = expect;
        str_copy(prev, sizeof prev, from->head);
    }
    while (next_cp < m.nc && order[next_cp]->through_seq < expect) {
        /* A checkpoint at the last archived record holds the archive's head. */
        const audit_checkpoint *c = order[next_cp++];
        if (!from && c->through_seq == start && strcmp(c->head, prev))
            FAIL("checkpoint %lld (signed at %s) does not hold the head of the archived records", c->id, c->at);
    }
    for (;;) {
        range_arg a = {expect - 1, batch, {0}};
        if (process_read(work_range, &a, &reply, e)) {
            rc = -1;
            goto done;
        }
        r->transactions++;
        *list = a.list;
        for (size_t i = 0; i < list->n; i++) {
            const audit_row *row = &list->items[i];
            if (row->seq != expect)
                FAIL("record %lld is missing (the next record is %lld): records were removed", expect, row->seq);
            if (!store_audit_record_ok(row, prev, r->why, sizeof r->why)) goto done;
            while (next_cp < m.nc && order[next_cp]->through_seq == row->seq) {
                const audit_checkpoint *c = order[next_cp++];
                if (strcmp(c->head, row->hash))
                    FAIL("record %lld does not have the MAC that checkpoint %lld (signed at %s) holds: the chain was"
                         " rewritten",
                         row->seq, c->id, c->at);
            }
            str_copy(prev, sizeof prev, row->hash);
            expect++;
            r->checked++;
        }
        bool more = list->more;
        audit_list_free(list);
        memset(list, 0, sizeof *list);
        if (!more) break;
    }
    r->last = expect - 1;
    r->records = r->last - start;
    /* Nothing signed may lie beyond the last record. */
    if (m.nc && order[m.nc - 1]->through_seq > r->last) {
        const audit_checkpoint *c = order[m.nc - 1];
        if (r->last == start)
            FAIL("the trail holds no records after %lld, but checkpoint %lld (signed at %s) covers records up to"
                 " %lld: records were removed",
                 start, c->id, c->at, c->through_seq);
        FAIL("the trail ends at record %lld, but checkpoint %lld (signed at %s) covers records up to %lld: records"
             " were removed from its end",
             r->last, c->id, c->at, c->through_seq);
    }
    r->ok = true;
    r->elapsed_ms = (double)(time_mono_ns() - t0) / 1e6;
    /* What was verified is signed as verified: the next run starts there. */
    long long verified = 0;
    for (size_t i = 0; i < m.nc; i++)
        if (!strcmp(m.cps[i].reason, "verify") && m.cps[i].through_seq > verified) verified = m.cps[i].through_seq;
    if (r->last > start && r->last > verified) {
        err_t we = {0};
        if (checkpoint_at("verify", r->last, prev, true, &r->written, &we)) {
            snprintf(r->note, sizeof r->note, "the verified position could not be recorded: %.500s", we.message);
            err_clear(&we);
        }
    }
done:
    if (!r->ok && r->why[0] == 0 && rc == 0) str_copy(r->why, sizeof r->why, "verification failed");
    if (!r->elapsed_ms) r->elapsed_ms = (double)(time_mono_ns() - t0) / 1e6;
    if (list) audit_list_free(list);
    free(list);
    free(order);
    meta_free(&m);
    return rc;
}

/* ---- archives ---- */
/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS[.mmm]Z" as milliseconds. */
static bool parse_time(const char *s, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, n = 0;
    size_t len = strlen(s);
    if (len == 10) {
        if (!date_parse(s, &y, &mo, &d)) return false;
    } else if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6 && n == 19) {
        char date[11];
        snprintf(date, sizeof date, "%.10s", s);
        if (!date_parse(date, &y, &mo, &d) || h > 23 || mi > 59 || sec > 59) return false;
        const char *rest = s + 19;
        if (*rest == '.') {
            int digits = 0;
            for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
                if (digits < 3) frac = frac * 10 + (*rest - '0');
            if (!digits) return false;
            for (; digits < 3; digits++) frac *= 10;
        }
        if (strcmp(rest, "Z")) return false;
    } else {
        return false;
    }
    *ms = ((date_to_days(y, mo, d) * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + frac;
    return true;
}

typedef struct {
    const char *before;
    long long after, cut;
    char head[SHA256_HEX];
} cut_arg;

static int work_cut(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    cut_arg *a = arg;
    store_err se = {0};
    if (store_audit_cut(tx, a->before, a->after, &a->cut, &se)) return process_store_fail(&se, e);
    return 0;
}

typedef struct {
    const audit_archive *a;
    audit_checkpoint cp;
} record_arg;

static int work_archive_record(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    record_arg *a = arg;
    store_err se = {0};
    if (store_audit_archive_record(tx, a->a, &a->cp, &se)) return process_store_fail(&se, e);
    return 0;
}

typedef struct {
    int limit, deleted;
} purge_arg;

static int work_archive_purge(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    purge_arg *a = arg;
    store_err se = {0};
    if (store_audit_archive_purge(tx, a->limit, &a->deleted, &se)) return process_store_fail(&se, e);
    return 0;
}

static json_t *record_json(const audit_row *row)
{
    json_t *j = render_audit(row);
    json_object_set_new(j, "prev_hash", json_string(row->prev_hash));
    return j;
}

/* What an archive file holds, read back. */
typedef struct {
    long long expect, records;
    char prev[SHA256_HEX];
    bool have_from;
    audit_archive statement;
    bool have_statement;
    audit_checkpoint *cps;
    size_t nc, capc;
    char why[700];
    bool bad;
} archive_reader;

static int cmp_str(const void *x, const void *y) { return strcmp(*(const char *const *)x, *(const char *const *)y); }

/* A record's persons as its MAC covers them: sorted, each once,
 * space-separated, when it names two or more (malloc'd); else NULL. */
static char *persons_of(json_t *arr)
{
    size_t n = json_array_size(arr), len = 1, distinct = 0;
    if (n < 2) return NULL;
    const char **v = calloc(n, sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++) {
        v[i] = json_string_value(json_array_get(arr, i));
        if (!v[i]) v[i] = "";
        len += strlen(v[i]) + 1;
    }
    qsort(v, n, sizeof *v, cmp_str);
    char *out = malloc(len), *w = out;
    if (out) {
        *w = 0;
        for (size_t i = 0; i < n; i++) {
            if (i && !strcmp(v[i], v[i - 1])) continue;
            w += sprintf(w, "%s%s", w == out ? "" : " ", v[i]);
            distinct++;
        }
    }
    free(v);
    if (distinct < 2) {
        free(out);
        return NULL;
    }
    return out;
}

static int archive_line(json_t *line, void *ctx, char *why, size_t whylen)
{
    archive_reader *ar = ctx;
    json_t *rec = json_object_get(line, "record"), *st = json_object_get(line, "archive"),
           *cp = json_object_get(line, "checkpoint");
    if (ar->have_statement) return snprintf(why, whylen, "lines after the archive's statement"), -1;
    if (rec) {
        audit_row row;
        memset(&row, 0, sizeof row);
        row.seq = jint(rec, "seq");
        row.status = (int)jint(rec, "status");
#define S(f, k) row.f = json_string_value(json_object_get(rec, k))
        S(at, "at"); S(actor, "actor"); S(org, "org"); S(role, "role"); S(action, "action");
        S(person_id, "person_id"); S(case_id, "case_id"); S(purpose, "purpose"); S(request_id, "request_id");
        S(prev_hash, "prev_hash"); S(hash, "hash");
#undef S
        if (!row.at || !row.actor || !row.org || !row.role || !row.action || !row.request_id || !row.prev_hash ||
            !row.hash)
            return snprintf(why, whylen, "record %lld is malformed", row.seq), -1;
        if (row.seq != ar->expect)
            return snprintf(why, whylen, "record %lld is missing from the archive", ar->expect), -1;
        char *persons = persons_of(json_object_get(rec, "persons"));
        row.persons = persons;
        bool ok = store_audit_record_ok(&row, ar->prev, why, whylen);
        free(persons);
        if (!ok) return -1;
        for (size_t i = 0; i < ar->nc; i++)
            if (ar->cps[i].through_seq == row.seq && strcmp(ar->cps[i].head, row.hash))
                return snprintf(why, whylen, "record %lld does not have the MAC that checkpoint %lld holds", row.seq,
                                ar->cps[i].id), -1;
        str_copy(ar->prev, sizeof ar->prev, row.hash);
        ar->expect++;
        ar->records++;
    } else if (cp) {
        if (ar->nc == ar->capc) {
            ar->capc = ar->capc ? ar->capc * 2 : 16;
            audit_checkpoint *m = realloc(ar->cps, ar->capc * sizeof *m);
            if (!m) return snprintf(why, whylen, "out of memory"), -1;
            ar->cps = m;
        }
        if (!checkpoint_from(cp, &ar->cps[ar->nc])) return snprintf(why, whylen, "a malformed checkpoint"), -1;
        ar->nc++;
    } else if (st) {
        if (!archive_from(st, &ar->statement)) return snprintf(why, whylen, "a malformed statement"), -1;
        ar->have_statement = true;
    }
    return 0;
}

/* Reads an archive file back and checks every record, its checkpoints and
 * its signed statement. */
static bool archive_file_ok(const char *path, archive_reader *ar, char *why, size_t whylen)
{
    json_t *header = NULL;
    bool ok = false;
    memset(ar, 0, sizeof *ar);
    size_t ne;
    const audit_epoch *ep = store_keyring_epochs(&ne);
    /* The header comes first: read it alone for the starting point. */
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    if (!f || getline(&line, &cap, f) <= 0) {
        snprintf(why, whylen, "cannot read '%s': %s", path, f ? "empty" : strerror(errno));
        if (f) fclose(f);
        free(line);
        return false;
    }
    fclose(f);
    json_t *h = json_loads(line, 0, NULL);
    free(line);
    ar->expect = jint(h, "from_seq");
    if (!jstr(h, "prev", ar->prev, sizeof ar->prev, false)) ar->expect = 0;
    json_decref(h);
    if (ar->expect < 1) {
        snprintf(why, whylen, "%s has no starting point", path);
        return false;
    }
    long long from = ar->expect;
    char prev[SHA256_HEX];
    str_copy(prev, sizeof prev, ar->prev);
    /* Checkpoints come before the records that they cover are checked:
     * the file puts them first. */
    if (read_lines(path, FORMAT_ARCHIVE, &header, archive_line, ar, why, whylen)) goto done;
    if (!keys_match(header, path, why, whylen)) goto done;
    if (!ar->have_statement) {
        snprintf(why, whylen, "%s has no signed statement: it is incomplete", path);
        goto done;
    }
    const audit_archive *s = &ar->statement;
    if (!store_audit_archive_ok(s, ep, ne)) {
        snprintf(why, whylen, "the statement of %s does not carry a valid signature", path);
        goto done;
    }
    if (s->from_seq != from || s->through_seq != ar->expect - 1 || s->records != ar->records || strcmp(s->prev, prev) ||
        strcmp(s->head, ar->prev)) {
        snprintf(why, whylen, "the records of %s are not the ones its signed statement names (records %lld to %lld)",
                 path, s->from_seq, s->through_seq);
        goto done;
    }
    for (size_t i = 0; i < ar->nc; i++)
        if (!store_audit_checkpoint_ok(&ar->cps[i], ep, ne)) {
            snprintf(why, whylen, "checkpoint %lld in %s does not carry a valid signature", ar->cps[i].id, path);
            goto done;
        }
    ok = true;
done:
    json_decref(header);
    return ok;
}

int process_audit_verify_archive(const char *path, audit_verify_result *r, err_t *e)
{
    (void)e;
    memset(r, 0, sizeof *r);
    int64_t t0 = time_mono_ns();
    archive_reader ar;
    r->ok = archive_file_ok(path, &ar, r->why, sizeof r->why);
    r->first = ar.statement.from_seq;
    r->last = ar.statement.through_seq;
    r->checked = r->records = ar.records;
    r->checkpoints = ar.nc;
    free(ar.cps);
    r->elapsed_ms = (double)(time_mono_ns() - t0) / 1e6;
    return 0;
}

int process_audit_archive(const char *before, int keep_days, const char *path, audit_archive_result *res, err_t *e)
{
    memset(res, 0, sizeof *res);
    int64_t before_ms;
    if (!parse_time(before, &before_ms)) {
        err_set(e, 400, "invalid_date", "--before '%s' is not a date (YYYY-MM-DD) or an RFC 3339 UTC time", before);
        return -1;
    }
    int64_t newest = time_now_ms() - (int64_t)keep_days * 86400000LL;
    if (before_ms > newest) {
        char limit[RFC3339_MAX];
        time_rfc3339(newest, limit);
        err_set(e, 400, "too_recent",
                "records stay in the database for retention.audit_days (%d days): --before may be %s at the latest",
                keep_days, limit);
        return -1;
    }
    /* A trail that does not verify is not archived. */
    audit_verify_opts vo = {0};
    audit_verify_result vr;
    if (process_audit_verify(&vo, &vr, e)) return -1;
    if (!vr.ok) {
        err_set(e, 409, "audit_broken", "the audit trail does not verify, so nothing is archived: %s", vr.why);
        return -1;
    }
    trail_meta m = {0};
    store_reply reply = {0};
    if (process_read(work_meta, &m, &reply, e)) return -1;
    cut_arg ca = {0};
    char before_text[RFC3339_MAX];
    time_rfc3339(before_ms, before_text);
    ca.before = before_text;
    ca.after = m.na ? m.arcs[m.na - 1].through_seq : 0;
    audit_archive st;
    memset(&st, 0, sizeof st);
    str_copy(st.prev, sizeof st.prev, m.na ? m.arcs[m.na - 1].head : GENESIS);
    int rc = -1;
    char tmp[1200] = "";
    FILE *f = NULL;
    if (process_read(work_cut, &ca, &reply, e)) goto out;
    if (ca.cut == 0) {
        rc = 0; /* nothing written before that time */
        goto purge;
    }
    st.from_seq = ca.after + 1;
    st.through_seq = ca.cut;
    st.records = ca.cut - ca.after;
    time_rfc3339(time_now_ms(), st.at);
    str_copy(st.file, sizeof st.file, path);
    /* 1. The file: header, the checkpoints of the range, the records
     * (each checked against its MAC as it is written), the statement. */
    f = open_tmp(path, tmp, sizeof tmp, e);
    if (!f) goto out;
    json_t *extra = json_pack("{s:I, s:s}", "from_seq", (json_int_t)st.from_seq, "prev", st.prev);
    bool bad = put_header(f, FORMAT_ARCHIVE, extra) != 0;
    json_decref(extra);
    for (size_t i = 0; i < m.nc && !bad; i++)
        if (m.cps[i].through_seq >= st.from_seq && m.cps[i].through_seq <= st.through_seq)
            bad = put_line(f, "checkpoint", render_audit_checkpoint(&m.cps[i])) != 0;
    char prev[SHA256_HEX];
    str_copy(prev, sizeof prev, st.prev);
    long long expect = st.from_seq;
    while (!bad && expect <= st.through_seq) {
        range_arg a = {expect - 1, BATCH, {0}};
        if (process_read(work_range, &a, &reply, e)) {
            fclose(f);
            unlink(tmp);
            f = NULL;
            goto out;
        }
        char why[600];
        for (size_t i = 0; i < a.list.n && !bad && expect <= st.through_seq; i++) {
            const audit_row *row = &a.list.items[i];
            if (row->seq != expect || !store_audit_record_ok(row, prev, why, sizeof why)) {
                err_set(e, 409, "audit_broken", "record %lld cannot be archived: %s", expect,
                        row->seq != expect ? "it is missing" : why);
                bad = true;
                break;
            }
            bad = put_line(f, "record", record_json(row)) != 0;
            str_copy(prev, sizeof prev, row->hash);
            expect++;
        }
        bool empty = a.list.n == 0;
        audit_list_free(&a.list);
        if (empty && expect <= st.through_seq) {
            err_set(e, 409, "audit_broken", "record %lld cannot be archived: it is missing", expect);
            bad = true;
        }
    }
    if (!bad) {
        str_copy(st.head, sizeof st.head, prev);
        store_audit_archive_sign(&st);
        bad = put_line(f, "archive", render_audit_archive(&st)) != 0;
    }
    if (finish_file(f, tmp, path, bad, e)) {
        f = NULL;
        if (!e->status) err_set(e, 500, "io_error", "cannot write '%s'", path);
        goto out;
    }
    f = NULL;
    /* 2. Read back and verified before anything leaves the database. */
    archive_reader ar;
    char why[700];
    bool ok = archive_file_ok(path, &ar, why, sizeof why);
    free(ar.cps);
    if (!ok) {
        err_set(e, 500, "archive_unverified", "the archive written to '%s' does not verify: %s; nothing was removed",
                path, why);
        goto out;
    }
    /* 3. Recorded (signed), with a checkpoint: the records may now go. */
    record_arg ra = {&st, {0}};
    if (process_write(NULL, work_archive_record, &ra, &reply, e)) goto out;
    anchor_update(&ra.cp);
    res->checkpoint = ra.cp;
    res->from = st.from_seq;
    res->through = st.through_seq;
    res->records = st.records;
    rc = 0;
purge:
    /* 4. Deleted in small batches, each its own short write; this also
     * finishes what an interrupted archive left. */
    for (;;) {
        purge_arg pa = {1000, 0};
        if (process_write(NULL, work_archive_purge, &pa, &reply, e)) {
            rc = -1;
            break;
        }
        res->deleted += pa.deleted;
        if (pa.deleted < pa.limit) break;
    }
out:
    if (f) {
        fclose(f);
        unlink(tmp);
    }
    meta_free(&m);
    return rc;
}
