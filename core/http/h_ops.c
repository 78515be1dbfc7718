/* h_ops.c: liveness, readiness, metrics and the API description. */
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/internal.h"
#include "process/process.h"

void h_healthz(req *r) { respond_json(r, 200, json_pack("{s:s}", "status", "ok")); }

void h_readyz(req *r)
{
    if (http_draining()) {
        respond_err(r, 503, "shutting_down", "the server is shutting down");
        return;
    }
    if (!process_ready()) {
        respond_err(r, 503, "not_ready", "the store or the plugins are not loaded yet");
        return;
    }
    respond_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

void h_metrics(req *r)
{
    char *text = metrics_render();
    if (!text) {
        respond_err(r, 500, "internal_error", "out of memory");
        return;
    }
    respond_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
}

void h_openapi(req *r)
{
    const char *spec = http_openapi_json();
    respond_text(r, 200, "application/json; charset=utf-8", spec, strlen(spec));
}
