/* h_plugins.c: programs (their effective rules) and plugin administration. */
#include <ctype.h>

#include "http/internal.h"
#include "process/process.h"

static void answer(req *r, int rc, store_reply *reply, err_t *e)
{
    if (rc) respond_error(r, e);
    else respond_reply(r, reply);
}

void h_programs_list(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    answer(r, process_programs(&reply, &e), &reply, &e);
}

void h_programs_get(req *r)
{
    char region[32];
    int rc = query_get(r, "region", region, sizeof region);
    if (rc < 0) return;
    if (rc) {
        for (const char *s = region; *s; s++)
            if (!isdigit((unsigned char)*s)) {
                respond_err(r, 400, "invalid_query", "region must be a numeric region code such as 11590");
                return;
            }
    }
    err_t e = {0};
    store_reply reply = {0};
    answer(r, process_program(r->params[0], rc ? region : NULL, &reply, &e), &reply, &e);
}

void h_plugins_list(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    answer(r, process_plugins(&reply, &e), &reply, &e);
}

void h_plugins_reload(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    answer(r, process_plugins_reload(&reply, &e), &reply, &e);
}

void h_plugins_candidate(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    answer(r, process_plugins_candidate(&reply, &e), &reply, &e);
}
