/*
 * outcome.c: the store's outcomes as the API answers them. The store says
 * what happened in its own terms (store_kind); here that becomes an HTTP
 * status, a snake_case code and a message. A caller that knows what an
 * outcome means to it ("no such case" is a 404 here, a 422 unknown_case
 * there) says so through process_store_error; the rest get one generic
 * answer per kind.
 */
#include <stdarg.h>
#include <stdio.h>

#include "process/process.h"

int process_store_fail(const store_err *se, err_t *e)
{
    const char *msg = se->message[0] ? se->message : "internal store error";
    switch (se->kind) {
    case STORE_NOT_FOUND: err_set(e, 404, "not_found", "%s", msg); break;
    case STORE_DUPLICATE: err_set(e, 409, "duplicate", "%s", msg); break;
    case STORE_CONFLICT: err_set(e, 409, "conflict", "%s", msg); break;
    case STORE_STALE: err_set(e, 412, "version_mismatch", "%s", msg); break;
    case STORE_KEY_REUSED: err_set(e, 409, "idempotency_key_reused", "%s", msg); break;
    case STORE_BUSY: err_set(e, 503, "store_busy", "%s", msg); break;
    case STORE_UNAVAILABLE: err_set(e, 503, "store_unavailable", "%s", msg); break;
    case STORE_OK:
    case STORE_INTERNAL: err_set(e, 500, "internal_error", "%s", msg); break;
    }
    return -1;
}

int process_store_error(const store_err *se, err_t *e, store_kind kind, int status, const char *code,
                        const char *fmt, ...)
{
    if (se->kind != kind) return process_store_fail(se, e);
    char msg[sizeof e->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err_set(e, status, code, "%s", msg);
    return -1;
}

/* A unit (or read) that failed: the unit's own error stands; a failure of
 * the store gets its answer. */
static int unit_failed(const store_idem *idem, const store_err *se, err_t *e)
{
    if (se->kind != STORE_OK) {
        process_store_fail(se, e);
        if (se->kind == STORE_KEY_REUSED && idem) err_detail(e, "idempotency_key", json_string(idem->key));
    } else if (!e->status) {
        err_set(e, 500, "internal_error", "a unit of work failed without saying why");
    }
    return -1;
}

int process_write(const store_idem *idem, store_work_fn fn, void *arg, store_reply *reply, err_t *e)
{
    store_err se = {0};
    if (store_write(idem, fn, arg, reply, e, &se) == 0) return 0;
    return unit_failed(idem, &se, e);
}

int process_write_rerunnable(const store_idem *idem, store_work_fn fn, void *arg, store_reply *reply, err_t *e)
{
    store_err se = {0};
    if (store_write_rerunnable(idem, fn, arg, reply, e, &se) == 0) return 0;
    return unit_failed(idem, &se, e);
}

int process_read(store_work_fn fn, void *arg, store_reply *reply, err_t *e)
{
    store_err se = {0};
    if (store_read(fn, arg, reply, e, &se) == 0) return 0;
    return unit_failed(NULL, &se, e);
}

int process_replay(const store_idem *idem, store_reply *reply, err_t *e)
{
    store_err se = {0};
    int rc = store_idem_replay(idem, reply, &se);
    if (rc >= 0) return rc;
    return unit_failed(idem, &se, e);
}
