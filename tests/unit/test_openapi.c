/*
 * test_openapi.c: the served API description (http_openapi_json) against
 * the route table (http_route_method / http_route_pattern): every route is
 * described, nothing else is, and each operation is complete enough for a
 * client (responses, security, path parameters, resolvable $refs).
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "http/http.h"

static const char *const HTTP_METHODS[] = {"get", "put", "post", "delete", "options", "head", "patch", "trace", NULL};

static bool is_http_method(const char *k)
{
    for (const char *const *m = HTTP_METHODS; *m; m++)
        if (!strcmp(*m, k)) return true;
    return false;
}

static void lower(const char *in, char *out, size_t n)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++) out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = 0;
}

static int n_routes(void)
{
    int n = 0;
    while (http_route_method(n)) n++;
    return n;
}

static int setup(void **state)
{
    json_error_t je;
    json_t *spec = json_loads(http_openapi_json(), JSON_REJECT_DUPLICATES, &je);
    if (!spec) {
        fprintf(stderr, "openapi.json does not parse: line %d: %s\n", je.line, je.text);
        return -1;
    }
    *state = spec;
    return 0;
}

static int teardown(void **state)
{
    json_decref(*state);
    return 0;
}

static void test_document_header(void **state)
{
    /* servers and license, for clients and their tools */
    json_t *servers = json_object_get(*state, "servers");
    assert_true(json_is_array(servers) && json_array_size(servers) > 0);
    assert_non_null(json_string_value(json_object_get(json_array_get(servers, 0), "url")));
    json_t *lic = json_object_get(json_object_get(*state, "info"), "license");
    assert_string_equal(json_string_value(json_object_get(lic, "identifier")), "Apache-2.0");
    /* 405 with Allow, for any path's missing method */
    json_t *mna = json_object_get(json_object_get(json_object_get(*state, "components"), "responses"), "MethodNotAllowed");
    assert_true(json_is_true(json_object_get(json_object_get(json_object_get(mna, "headers"), "Allow"), "required")) ||
                json_object_get(json_object_get(json_object_get(mna, "headers"), "Allow"), "$ref"));
    json_t *spec = *state;
    assert_true(json_is_object(spec));
    const char *v = json_string_value(json_object_get(spec, "openapi"));
    assert_non_null(v);
    assert_int_equal(strncmp(v, "3.1.", 4), 0);
    json_t *info = json_object_get(spec, "info");
    assert_true(json_is_object(info));
    assert_non_null(json_string_value(json_object_get(info, "title")));
    assert_non_null(json_string_value(json_object_get(info, "version")));
    assert_true(json_is_object(json_object_get(spec, "paths")));
    json_t *bearer = json_object_get(json_object_get(json_object_get(spec, "components"), "securitySchemes"),
                                     "bearerAuth");
    assert_string_equal(json_string_value(json_object_get(bearer, "type")), "http");
    assert_string_equal(json_string_value(json_object_get(bearer, "scheme")), "bearer");
}

static void test_routes_are_described(void **state)
{
    json_t *paths = json_object_get(*state, "paths");
    int n = n_routes();
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        const char *method = http_route_method(i), *pattern = http_route_pattern(i);
        assert_non_null(pattern);
        char m[16];
        lower(method, m, sizeof m);
        json_t *item = json_object_get(paths, pattern);
        if (!item) fail_msg("route %s %s is not in the spec's paths", method, pattern);
        if (!json_is_object(json_object_get(item, m)))
            fail_msg("route %s %s has no '%s' operation in the spec", method, pattern, m);
    }
    assert_null(http_route_method(n));
    assert_null(http_route_pattern(n));
    assert_null(http_route_method(-1));
    assert_null(http_route_pattern(-1));
}

/* Each operation's x-roles is exactly the roles the route table lets in
 * (the authorization matrix test then holds the server to x-roles). */
static void test_roles_are_the_route_tables(void **state)
{
    static const char *const ROLES[] = {"worker", "supervisor", "agency", "auditor", "admin", "operator", NULL};
    json_t *paths = json_object_get(*state, "paths");
    for (int i = 0; http_route_method(i); i++) {
        char m[16];
        lower(http_route_method(i), m, sizeof m);
        json_t *roles = json_object_get(json_object_get(json_object_get(paths, http_route_pattern(i)), m), "x-roles");
        if (!json_is_array(roles)) fail_msg("%s %s has no x-roles", http_route_method(i), http_route_pattern(i));
        for (const char *const *r = ROLES; *r; r++) {
            bool listed = false;
            size_t k;
            json_t *x;
            json_array_foreach(roles, k, x) listed = listed || !strcmp(json_string_value(x), *r);
            if (listed != http_route_allows(i, *r))
                fail_msg("%s %s: x-roles %s '%s' but the route table %s", http_route_method(i), http_route_pattern(i),
                         listed ? "lists" : "does not list", *r, listed ? "refuses it" : "lets it in");
        }
    }
    assert_false(http_route_allows(-1, "admin"));
    assert_false(http_route_allows(0, "nobody"));
}

static bool route_registered(const char *path, const char *method)
{
    for (int i = 0; http_route_method(i); i++) {
        char m[16];
        lower(http_route_method(i), m, sizeof m);
        if (!strcmp(m, method) && !strcmp(http_route_pattern(i), path)) return true;
    }
    return false;
}

static void test_spec_has_only_registered_routes(void **state)
{
    json_t *paths = json_object_get(*state, "paths");
    const char *path;
    json_t *item;
    int ops = 0;
    json_object_foreach(paths, path, item) {
        assert_true(json_is_object(item));
        const char *k;
        json_t *o;
        json_object_foreach(item, k, o) {
            if (!is_http_method(k)) continue;
            ops++;
            if (!route_registered(path, k)) fail_msg("the spec describes %s %s, which is not a route", k, path);
        }
    }
    /* Together with the test above: the two sets are the same. */
    assert_int_equal(ops, n_routes());
}

static json_t *resolve(json_t *spec, json_t *v)
{
    const char *r = json_string_value(json_object_get(v, "$ref"));
    if (!r) return v;
    assert_int_equal(strncmp(r, "#/components/", 13), 0);
    char kind[64], name[128];
    const char *slash = strchr(r + 13, '/');
    assert_non_null(slash);
    snprintf(kind, sizeof kind, "%.*s", (int)(slash - (r + 13)), r + 13);
    snprintf(name, sizeof name, "%s", slash + 1);
    json_t *target = json_object_get(json_object_get(json_object_get(spec, "components"), kind), name);
    if (!target) fail_msg("unresolved $ref %s", r);
    return target;
}

static void test_operations_complete(void **state)
{
    json_t *spec = *state;
    json_t *paths = json_object_get(spec, "paths");
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item) {
        const char *k;
        json_t *o;
        json_object_foreach(item, k, o) {
            if (!is_http_method(k)) continue;
            json_t *responses = json_object_get(o, "responses");
            if (!json_is_object(responses) || json_object_size(responses) == 0)
                fail_msg("%s %s has no responses object", k, path);
            bool success = false;
            const char *code;
            json_t *resp;
            json_object_foreach(responses, code, resp) {
                if (code[0] == '2') success = true;
                json_t *r = resolve(spec, resp);
                if (!json_string_value(json_object_get(r, "description")))
                    fail_msg("%s %s response %s has no description", k, path, code);
                if (code[0] == '4' || code[0] == '5') {
                    json_t *schema = json_object_get(
                        json_object_get(json_object_get(r, "content"), "application/json"), "schema");
                    const char *sr = json_string_value(json_object_get(schema, "$ref"));
                    if (!sr || strcmp(sr, "#/components/schemas/ApiError"))
                        fail_msg("%s %s error %s does not use the shared ApiError schema", k, path, code);
                }
                /* 429 and 503 say when to come back; a 201 that says where
                 * names the header. */
                if (!strcmp(code, "429") || !strcmp(code, "503")) {
                    json_t *ra = resolve(spec, json_object_get(json_object_get(r, "headers"), "Retry-After"));
                    if (!json_is_true(json_object_get(ra, "required")))
                        fail_msg("%s %s %s does not declare a required Retry-After", k, path, code);
                }
            }
            if (!success) fail_msg("%s %s declares no 2xx response", k, path);
            /* Every authenticated operation can be over its token's budget. */
            if (json_array_size(json_object_get(o, "security")) && !json_object_get(responses, "429"))
                fail_msg("%s %s is authenticated but declares no 429", k, path);
            if (!json_string_value(json_object_get(o, "summary"))) fail_msg("%s %s has no summary", k, path);

            json_t *sec = json_object_get(o, "security");
            bool v1 = !strncmp(path, "/v1/", 4);
            if (v1) {
                if (!json_is_array(sec) || json_array_size(sec) == 0)
                    fail_msg("%s %s (a /v1 operation) declares no security", k, path);
                json_t *req0 = json_array_get(sec, 0);
                if (!json_object_get(req0, "bearerAuth")) fail_msg("%s %s: security is not bearerAuth", k, path);
            } else if (!json_is_array(sec) || json_array_size(sec) != 0) {
                fail_msg("%s %s is public and must declare \"security\": []", k, path);
            }

            /* Every {param} of the path is a required path parameter. */
            for (const char *p = strchr(path, '{'); p; p = strchr(p + 1, '{')) {
                const char *close = strchr(p, '}');
                assert_non_null(close);
                char name[64];
                snprintf(name, sizeof name, "%.*s", (int)(close - p - 1), p + 1);
                bool found = false;
                size_t i;
                json_t *prm;
                json_array_foreach(json_object_get(o, "parameters"), i, prm) {
                    json_t *pr = resolve(spec, prm);
                    const char *in = json_string_value(json_object_get(pr, "in"));
                    const char *pn = json_string_value(json_object_get(pr, "name"));
                    if (in && pn && !strcmp(in, "path") && !strcmp(pn, name)) {
                        found = json_is_true(json_object_get(pr, "required"));
                    }
                }
                if (!found) fail_msg("%s %s: path parameter '%s' is not declared as required", k, path, name);
            }

            /* POSTs document Idempotency-Key. */
            if (!strcmp(k, "post")) {
                bool idem = false;
                size_t i;
                json_t *prm;
                json_array_foreach(json_object_get(o, "parameters"), i, prm) {
                    json_t *pr = resolve(spec, prm);
                    const char *pn = json_string_value(json_object_get(pr, "name"));
                    if (pn && !strcmp(pn, "Idempotency-Key")) idem = true;
                }
                if (!idem) fail_msg("POST %s does not declare the Idempotency-Key header", path);
            }
        }
    }
}

/* Walks v and checks every "$ref" resolves inside the document. */
static void check_refs(json_t *spec, json_t *v, int *n)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if (!strcmp(k, "$ref") && json_is_string(x)) {
                resolve(spec, v);
                (*n)++;
            } else {
                check_refs(spec, x, n);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) check_refs(spec, x, n);
    }
}

static void test_refs_resolve(void **state)
{
    int n = 0;
    check_refs(*state, *state, &n);
    assert_true(n > 0);
}

static void test_error_schema(void **state)
{
    json_t *schemas = json_object_get(json_object_get(*state, "components"), "schemas");
    /* Not "Error": that name shadows the built-in in generated clients. */
    assert_null(json_object_get(schemas, "Error"));
    json_t *err = json_object_get(schemas, "ApiError");
    assert_true(json_is_object(err));
    json_t *inner = json_object_get(json_object_get(err, "properties"), "error");
    assert_true(json_is_object(inner));
    json_t *props = json_object_get(inner, "properties");
    assert_true(json_is_object(json_object_get(props, "code")));
    assert_true(json_is_object(json_object_get(props, "message")));
    assert_true(json_is_object(json_object_get(props, "details")));
    static const char *const needed[] = {"Org", "Token", "Person", "Household", "Case", "Event",
                                         "PersonPage", "CasePage", "EventPage", NULL};
    for (const char *const *s = needed; *s; s++)
        if (!json_is_object(json_object_get(schemas, *s))) fail_msg("components.schemas.%s is missing", *s);
    /* A person's rrn is documented as masked, its age as an integer. */
    json_t *pp = json_object_get(json_object_get(schemas, "Person"), "properties");
    const char *pat = json_string_value(json_object_get(json_object_get(pp, "rrn"), "pattern"));
    assert_non_null(pat);
    assert_non_null(strstr(pat, "\\*{6}"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(pp, "age"), "type")), "integer");
    /* Pages are {items, next_cursor}. */
    json_t *page = json_object_get(json_object_get(schemas, "CasePage"), "properties");
    assert_true(json_is_object(json_object_get(page, "items")));
    assert_true(json_is_object(json_object_get(page, "next_cursor")));
}

/* The embedded copy is the file in the source tree (the build re-embeds it). */
static void test_embedded_matches_source(void **state)
{
    (void)state;
    const char *src = getenv("SOURCE_DIR");
    if (!src) skip();
    char path[4096];
    snprintf(path, sizeof path, "%s/core/http/openapi.json", src);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 1 << 20, len = 0, n;
    char *buf = malloc(cap);
    assert_non_null(buf);
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            assert_non_null(nb);
            buf = nb;
        }
    }
    fclose(f);
    buf[len] = 0;
    /* 2-space indentation, valid JSON, and identical to what is served. */
    assert_true(len > 2 && buf[0] == '{' && buf[1] == '\n' && !strncmp(buf + 2, "  \"", 3));
    assert_string_equal(buf, http_openapi_json());
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_document_header),
        cmocka_unit_test(test_routes_are_described),
        cmocka_unit_test(test_spec_has_only_registered_routes),
        cmocka_unit_test(test_roles_are_the_route_tables),
        cmocka_unit_test(test_operations_complete),
        cmocka_unit_test(test_refs_resolve),
        cmocka_unit_test(test_error_schema),
        cmocka_unit_test(test_embedded_matches_source),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
