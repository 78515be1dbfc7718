/*
 * walbuf.c: a SQLite VFS over the default one whose write-ahead log files
 * gather a transaction's writes and hand them to the kernel in one write.
 *
 * SQLite writes a WAL frame as two writes, its 24-byte header then the
 * page: a batch that changes 90 pages costs 180 system calls, the largest
 * kernel cost of a write after the fsync. Here the frames of a
 * transaction are appended to a buffer and written when the transaction's
 * commit frame is complete (a frame whose header carries the database size
 * after the commit: the WAL file format, https://sqlite.org/fileformat.html),
 * so a committed transaction is in the kernel before SQLite publishes it to
 * readers, exactly as without the buffer: a `kill -9` after an answer
 * loses nothing. The buffer is also written before anything that reads,
 * syncs, truncates, sizes or closes the file, and before a write that does
 * not continue it (SQLite rewriting a frame of the same transaction), so
 * the file always reads as SQLite wrote it. Every other file, and every
 * other method, is the default VFS's own.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

#define WAL_HEADER 32
#define FRAME_HEADER 24
#define BUF_CAP (1 << 20)
#define WRITE_MAX (64 * 1024)

typedef struct {
    sqlite3_file base;   /* pMethods: wal_methods */
    sqlite3_file *real;  /* the default VFS's file, just after this struct */
    char *buf;           /* writes not yet handed to the kernel (allocated at the first write:
                          * readers open the log too, and never write it) */
    sqlite3_int64 start; /* their offset in the file */
    size_t len;
    sqlite3_int64 commit_end; /* end of a commit frame being written, or 0 */
    sqlite3_int64 commit_hdr; /* ... and where its header starts */
    sqlite3_int64 last_commit; /* the header of the last commit frame handed to the kernel since
                                * walbuf_commit_begin, or 0 */
    unsigned page_size;       /* from the WAL header, 0 until known */
    bool size_unknown;        /* the header could not be read back: write through */
    bool no_buf;              /* none could be allocated: every write goes straight through */
} wal_file;

static sqlite3_vfs walbuf_vfs;
static sqlite3_vfs *base_vfs;
/* Writes SQLite made to logs, and the write calls they became (/metrics). */
static atomic_ulong n_writes, n_calls;

void walbuf_counts(unsigned long *writes, unsigned long *calls)
{
    *writes = atomic_load_explicit(&n_writes, memory_order_relaxed);
    *calls = atomic_load_explicit(&n_calls, memory_order_relaxed);
}

/* One write handed to the default file. */
static int real_write(wal_file *w, const void *data, int n, sqlite3_int64 off)
{
    atomic_fetch_add_explicit(&n_calls, 1, memory_order_relaxed);
    return w->real->pMethods->xWrite(w->real, data, n, off);
}

static unsigned be32(const unsigned char *p)
{
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | (unsigned)p[3];
}

static int flush(wal_file *w)
{
    int rc = SQLITE_OK;
    /* The default VFS writes at most 128 KiB a call (its seekAndWrite keeps
     * 17 bits of the length): hand it the buffer in pieces below that. */
    for (size_t done = 0; done < w->len && rc == SQLITE_OK; done += WRITE_MAX) {
        size_t n = w->len - done < WRITE_MAX ? w->len - done : WRITE_MAX;
        rc = real_write(w, w->buf + done, (int)n, w->start + (sqlite3_int64)done);
    }
    if (w->commit_hdr && w->len) w->last_commit = w->commit_hdr; /* even if its write failed: part may be there */
    w->len = 0;
    w->commit_end = w->commit_hdr = 0;
    return rc;
}

/* The page size the log's frames carry, from the header SQLite writes at
 * the start of the file (or read back from it once): 0 when it is not one
 * SQLite would write, and then nothing is gathered. */
static unsigned page_size(wal_file *w)
{
    if (!w->page_size && !w->size_unknown) {
        unsigned char h[WAL_HEADER];
        if (flush(w) == SQLITE_OK && w->real->pMethods->xRead(w->real, h, WAL_HEADER, 0) == SQLITE_OK)
            w->page_size = be32(h + 8);
        w->size_unknown = !w->page_size;
    }
    unsigned pg = w->page_size;
    return pg >= 512 && pg <= 65536 && !(pg & (pg - 1)) ? pg : 0;
}

/* Notes the end of any commit frame whose header this write holds. */
static void note_commit(wal_file *w, const unsigned char *data, int n, sqlite3_int64 off, unsigned pg)
{
    sqlite3_int64 frame = FRAME_HEADER + (sqlite3_int64)pg;
    sqlite3_int64 k = off <= WAL_HEADER ? 0 : (off - WAL_HEADER + frame - 1) / frame;
    for (sqlite3_int64 h = WAL_HEADER + k * frame; h + 8 <= off + n; h += frame)
        if (be32(data + (h - off) + 4)) { /* database size after commit */
            w->commit_hdr = h;
            w->commit_end = h + frame;
        }
}

static int w_write(sqlite3_file *f, const void *data, int n, sqlite3_int64 off)
{
    wal_file *w = (wal_file *)f;
    atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
    if (off == 0 && n >= WAL_HEADER) { /* a new log's header */
        w->page_size = be32((const unsigned char *)data + 8);
        w->size_unknown = false;
    }
    int rc;
    if (w->len && (off != w->start + (sqlite3_int64)w->len || w->len + (size_t)n > BUF_CAP))
        if ((rc = flush(w)) != SQLITE_OK) return rc;
    unsigned pg = off + n > WAL_HEADER ? page_size(w) : 0;
    if (!w->buf && !w->no_buf && pg && !(w->buf = malloc(BUF_CAP))) w->no_buf = true; /* the writer's alone */
    /* Straight through, after what is gathered: the log's header, a log
     * whose frames cannot be told apart, no buffer, a write larger than
     * SQLite makes. */
    if (!pg || !w->buf || (size_t)n > WRITE_MAX) {
        if ((rc = flush(w)) != SQLITE_OK) return rc;
        if (pg) note_commit(w, data, n, off, pg);
        if (w->commit_hdr) w->last_commit = w->commit_hdr;
        w->commit_end = w->commit_hdr = 0;
        return real_write(w, data, n, off);
    }
    note_commit(w, data, n, off, pg);
    if (!w->len) w->start = off;
    memcpy(w->buf + w->len, data, (size_t)n);
    w->len += (size_t)n;
    if (w->commit_end && w->start + (sqlite3_int64)w->len >= w->commit_end) return flush(w);
    return SQLITE_OK;
}

static int w_close(sqlite3_file *f)
{
    wal_file *w = (wal_file *)f;
    int rc = flush(w);
    int rc2 = w->real->pMethods->xClose(w->real);
    free(w->buf);
    w->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int w_read(sqlite3_file *f, void *out, int n, sqlite3_int64 off)
{
    wal_file *w = (wal_file *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, out, n, off);
}

static int w_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    wal_file *w = (wal_file *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int w_sync(sqlite3_file *f, int flags)
{
    wal_file *w = (wal_file *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int w_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    wal_file *w = (wal_file *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

/* The rest is the default file's, unchanged. */
#define REAL(f) (((wal_file *)(f))->real)
static int w_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int w_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int w_reserved(sqlite3_file *f, int *out) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out); }
static int w_fcntl(sqlite3_file *f, int op, void *arg) { return REAL(f)->pMethods->xFileControl(REAL(f), op, arg); }
static int w_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int w_device(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int w_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **out)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, out);
}
static int w_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void w_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int w_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int w_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    *out = NULL; /* never mapped: every read goes through w_read */
    (void)f, (void)off, (void)n;
    return SQLITE_OK;
}
static int w_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    (void)f, (void)off, (void)p;
    return SQLITE_OK;
}

static const sqlite3_io_methods wal_methods = {
    3,          w_close,  w_read,        w_write,     w_truncate, w_sync,    w_file_size,
    w_lock,     w_unlock, w_reserved,    w_fcntl,     w_sector,   w_device,  w_shm_map,
    w_shm_lock, w_shm_barrier, w_shm_unmap, w_fetch, w_unfetch,
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL)) return base_vfs->xOpen(base_vfs, name, f, flags, out_flags);
    wal_file *w = (wal_file *)f;
    memset(w, 0, sizeof *w);
    w->real = (sqlite3_file *)(w + 1);
    int rc = base_vfs->xOpen(base_vfs, name, w->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        w->base.pMethods = NULL; /* nothing to close: SQLite will not call back */
        return rc;
    }
    w->base.pMethods = &wal_methods;
    return SQLITE_OK;
}

/* The rest of the VFS is the default one's. */
static int v_delete(sqlite3_vfs *v, const char *n, int sync) { (void)v; return base_vfs->xDelete(base_vfs, n, sync); }
static int v_access(sqlite3_vfs *v, const char *n, int flags, int *out)
{
    (void)v;
    return base_vfs->xAccess(base_vfs, n, flags, out);
}
static int v_full(sqlite3_vfs *v, const char *n, int len, char *out)
{
    (void)v;
    return base_vfs->xFullPathname(base_vfs, n, len, out);
}
static void *v_dlopen(sqlite3_vfs *v, const char *n) { (void)v; return base_vfs->xDlOpen(base_vfs, n); }
static void v_dlerror(sqlite3_vfs *v, int n, char *out) { (void)v; base_vfs->xDlError(base_vfs, n, out); }
static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *s))(void)
{
    (void)v;
    return base_vfs->xDlSym(base_vfs, h, s);
}
static void v_dlclose(sqlite3_vfs *v, void *h) { (void)v; base_vfs->xDlClose(base_vfs, h); }
static int v_random(sqlite3_vfs *v, int n, char *out) { (void)v; return base_vfs->xRandomness(base_vfs, n, out); }
static int v_sleep(sqlite3_vfs *v, int us) { (void)v; return base_vfs->xSleep(base_vfs, us); }
static int v_time(sqlite3_vfs *v, double *out) { (void)v; return base_vfs->xCurrentTime(base_vfs, out); }
static int v_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return base_vfs->xGetLastError(base_vfs, n, out);
}
static int v_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return base_vfs->xCurrentTimeInt64(base_vfs, out);
}

/* The log db's writes go to, when it is one of ours. */
static wal_file *log_of(sqlite3 *db)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) != SQLITE_OK || !f ||
        f->pMethods != &wal_methods)
        return NULL;
    return (wal_file *)f;
}

void walbuf_commit_begin(sqlite3 *db)
{
    wal_file *w = log_of(db);
    if (w) w->last_commit = 0;
}

int walbuf_commit_failed(sqlite3 *db)
{
    wal_file *w = log_of(db);
    if (!w || !w->last_commit) return 0;
    /* Both salts and both checksums of its header: a frame whose salts
     * are not the log's, or whose checksum is wrong, ends recovery. */
    static const unsigned char spoilt[16];
    int rc = flush(w);
    if (rc == SQLITE_OK) rc = real_write(w, spoilt, sizeof spoilt, w->last_commit + 8);
    if (rc == SQLITE_OK) w->real->pMethods->xSync(w->real, SQLITE_SYNC_NORMAL); /* as far as the disk still does */
    w->last_commit = 0;
    return rc == SQLITE_OK ? 0 : -1;
}

const char *walbuf_register(void)
{
    if (base_vfs) return walbuf_vfs.zName;
    sqlite3_vfs *base = sqlite3_vfs_find(NULL);
    if (!base || base->iVersion < 2) return NULL;
    int sz = (int)((sizeof(wal_file) + 15) / 16 * 16) + base->szOsFile;
    walbuf_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = sz > base->szOsFile ? sz : base->szOsFile,
        .mxPathname = base->mxPathname,
        .zName = "sarye-walbuf",
        .xOpen = v_open,
        .xDelete = v_delete,
        .xAccess = v_access,
        .xFullPathname = v_full,
        .xDlOpen = v_dlopen,
        .xDlError = v_dlerror,
        .xDlSym = v_dlsym,
        .xDlClose = v_dlclose,
        .xRandomness = v_random,
        .xSleep = v_sleep,
        .xCurrentTime = v_time,
        .xGetLastError = v_last_error,
        .xCurrentTimeInt64 = v_time64,
    };
    base_vfs = base;
    if (sqlite3_vfs_register(&walbuf_vfs, 0) != SQLITE_OK) {
        base_vfs = NULL;
        return NULL;
    }
    return walbuf_vfs.zName;
}
