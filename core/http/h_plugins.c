/* h_plugins.c: programs (their effective rules) and plugin administration. */
#include <ctype.h>
#include <string.h>

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
    int rc = query_region(r, region, sizeof region);
    if (rc < 0) return;
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

static int field_bool(json_t *obj, const char *name, bool *out, err_t *e)
{
    json_t *v = json_object_get(obj, name);
    *out = json_is_true(v);
    if (v && !json_is_boolean(v) && !json_is_null(v)) {
        err_set(e, 400, "validation_failed", "%s: must be true or false", name);
        err_detail(e, "field", json_string(name));
        return -1;
    }
    return 0;
}

/* A reload of the plugin directory, and what becomes of the open cases
 * (the body is optional: without it, plugins.open_cases decides). */
void h_plugins_reload(req *r)
{
    static const char *const known[] = {"open_cases", "dry_run", "require_replay", "expected_digest", NULL};
    static const char *const choices[] = {"migrate", "stay", NULL};
    err_t e = {0};
    plugins_reload_in in = {.by = &r->who, .request_id = r->id};
    if (r->json &&
        (fields_known(r->json, known, &e) || field_enum(r->json, "open_cases", false, choices, &in.open_cases, &e) ||
         field_bool(r->json, "dry_run", &in.dry_run, &e) ||
         field_bool(r->json, "require_replay", &in.require_replay, &e) ||
         field_string(r->json, "expected_digest", false, 64, &in.expected_digest, &e)))
        return respond_error(r, &e);
    if (in.expected_digest && !in.require_replay) {
        err_set(&e, 400, "validation_failed", "expected_digest: only with require_replay: true");
        err_detail(&e, "field", json_string("expected_digest"));
        return respond_error(r, &e);
    }
    store_reply reply = {0};
    answer(r, process_plugins_reload(&in, &reply, &e), &reply, &e);
}

/* A shadow replay of a candidate set: the serving set with the files sent
 * laid over it. A directory on the server is never read from a request
 * (it would let a token probe the server's files): that is the command
 * line's (`sarye plugin replay DIR`). */
void h_plugins_replay(req *r)
{
    static const char *const known[] = {"files", "examples", "dir", NULL};
    err_t e = {0};
    if (fields_known(r->json, known, &e)) return respond_error(r, &e);
    if (json_object_get(r->json, "dir")) {
        err_set(&e, 422, "validation_failed",
                "dir: a directory on the server is replayed only from the command line (sarye plugin replay DIR); "
                "send the changed files instead");
        err_detail(&e, "field", json_string("dir"));
        return respond_error(r, &e);
    }
    json_t *files = json_object_get(r->json, "files");
    if (!json_is_array(files) || json_array_size(files) == 0 || json_array_size(files) > 512) {
        err_set(&e, 400, "validation_failed", "files: a list of 1 to 512 {path, text} (text null removes the file)");
        err_detail(&e, "field", json_string("files"));
        return respond_error(r, &e);
    }
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
        static const char *const fknown[] = {"path", "text", NULL};
        const char *path = json_string_value(json_object_get(f, "path"));
        json_t *text = json_object_get(f, "text");
        bool ok = json_is_object(f) && path && (json_is_string(text) || json_is_null(text)) &&
                  fields_known(f, fknown, &e) == 0;
        err_clear(&e);
        const char *name = NULL;
        if (ok) {
            static const char *const kinds[] = {"programs/", "regions/", "agencies/", NULL};
            for (const char *const *k = kinds; *k && !name; k++)
                if (!strncmp(path, *k, strlen(*k))) name = path + strlen(*k);
            size_t l = name ? strlen(name) : 0;
            ok = name && l >= 5 && l <= 200 && !strcmp(name + l - 4, ".lua") && name[0] != '.';
            for (const char *c = name; ok && *c; c++)
                ok = isalnum((unsigned char)*c) || *c == '_' || *c == '-' || *c == '.';
        }
        if (!ok) {
            err_set(&e, 400, "validation_failed",
                    "files[%zu]: {path: programs/NAME.lua | regions/NAME.lua | agencies/NAME.lua, text: the file or "
                    "null}", i);
            err_detail(&e, "field", json_sprintf("files[%zu]", i));
            return respond_error(r, &e);
        }
    }
    json_t *ex = json_object_get(r->json, "examples");
    if (ex && (!json_is_integer(ex) || json_integer_value(ex) < 0 || json_integer_value(ex) > 1000)) {
        err_set(&e, 400, "validation_failed", "examples: a number from 0 to 1000");
        err_detail(&e, "field", json_string("examples"));
        return respond_error(r, &e);
    }
    /* Examples name cases (ids, moves, deadlines; never a person): a system
     * operator's replay shows them of every region, anyone else's of its own. */
    plugins_replay_in in = {.files = files, .region = r->who.region[0] ? r->who.region : NULL,
                            .max_examples = ex ? (int)json_integer_value(ex) : 20};
    store_reply reply = {0};
    answer(r, process_plugins_replay(&in, &reply, &e), &reply, &e);
}

void h_plugins_candidate(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    answer(r, process_plugins_candidate(&reply, &e), &reply, &e);
}
