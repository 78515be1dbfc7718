/*
 * h_console.c: the operations console, static files compiled into the
 * binary from console/ (cmake/embed_dir.cmake). A file is found by exact
 * name in that table and nowhere else: no file system, so no traversal and
 * no listing; the route's {file} is one path segment. Every answer carries
 * a strict Content-Security-Policy: scripts and styles only from these
 * files, calls only to this server, no inline code, DOM sinks behind
 * Trusted Types (the console builds its pages with DOM calls only).
 */
#include <string.h>

#include "http/internal.h"

typedef struct {
    const char *name;
    const unsigned char *bytes;
    size_t len;
} embedded_file;
extern const embedded_file embedded_console[];

static const char SECURITY_HEADERS[] =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cross-Origin-Opener-Policy: same-origin\r\n"
    "Cross-Origin-Resource-Policy: same-origin\r\n"
    "Permissions-Policy: camera=(), microphone=(), geolocation=(), payment=()";

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
        {".png", "image/png"},                 {".ico", "image/x-icon"},
        {".json", "application/json; charset=utf-8"}, {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i].ext)) return types[i].type;
    return NULL; /* a file without a known type is not served */
}

static void serve(req *r, const char *name)
{
    for (const embedded_file *f = embedded_console; f->name; f++) {
        if (strcmp(f->name, name)) continue;
        const char *type = content_type(f->name);
        if (!type) break;
        respond_text_hdr(r, 200, type, (const char *)f->bytes, f->len, SECURITY_HEADERS);
        return;
    }
    respond_err(r, 404, "not_found", "no such console file: %s", name);
}

void h_console_index(req *r) { serve(r, "index.html"); }

void h_console_file(req *r) { serve(r, r->params[0]); }
