/*
 * http: the HTTP/JSON API on CivetWeb. Routing, authentication, body limits,
 * idempotency, request ids, metrics, structured access logs and graceful
 * draining live here; handlers parse, authorise, call one core function and
 * render. Nothing in the core below includes this header.
 */
#ifndef SARYE_HTTP_H
#define SARYE_HTTP_H

#include <stdbool.h>

#include "config/config.h"

/* Starts serving per cfg. Returns 0, or -1 with a message in err. The bound
 * address (with the real port when cfg->listen asked for port 0) is logged
 * as `msg="listening" addr=HOST:PORT`. */
int http_start(const config *cfg, char *err, size_t errlen);
/* Stops accepting work: new requests get 503 while requests in flight
 * finish (up to drain_timeout_ms), then the server stops. */
void http_stop(void);

/* The registered routes, for the OpenAPI cross-check: method and pattern of
 * route i, or NULL past the end. */
const char *http_route_method(int i);
const char *http_route_pattern(int i);
/* Whether route i lets role call it (false for a public route: no role
 * is asked) — the spec's x-roles must say the same. */
bool http_route_allows(int i, const char *role);

/* The route a request would take: its index, -1 for no such path, -2 for a
 * known path with another method. */
int http_route_find(const char *method, const char *path);

/* The embedded OpenAPI 3.1 description. */
const char *http_openapi_json(void);

#endif
