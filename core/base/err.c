/* err.c: building and rendering err_t. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"

void err_set(err_t *e, int status, const char *code, const char *fmt, ...)
{
    if (e->details) json_decref(e->details);
    e->details = NULL;
    e->status = status;
    str_copy(e->code, sizeof e->code, code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void err_detail(err_t *e, const char *key, json_t *value)
{
    if (!e->details) e->details = json_object();
    json_object_set_new(e->details, key, value);
}

void err_clear(err_t *e)
{
    if (e->details) json_decref(e->details);
    memset(e, 0, sizeof *e);
}

json_t *err_json(const err_t *e)
{
    json_t *inner = json_pack("{s:s, s:s}", "code", e->code[0] ? e->code : "internal_error",
                              "message", e->message[0] ? e->message : "internal error");
    json_object_set_new(inner, "details", e->details ? json_incref(e->details) : json_object());
    return json_pack("{s:o}", "error", inner);
}
