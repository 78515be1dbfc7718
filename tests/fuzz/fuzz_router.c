/* libFuzzer: routing any method and path. A match must be a registered
 * route of that method whose pattern fits the path segment by segment. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[1024];
    size_t n = size < sizeof buf - 1 ? size : sizeof buf - 1;
    memcpy(buf, data, n);
    buf[n] = 0;
    char *space = strchr(buf, ' ');
    const char *method = "GET", *path = buf;
    if (space) {
        *space = 0;
        method = buf;
        path = space + 1;
    }
    int i = http_route_find(method, path);
    if (i >= 0) {
        if (strcmp(http_route_method(i), method)) abort();
        /* as many segments as the pattern, none of them empty where a {param} stands */
        const char *p = http_route_pattern(i);
        size_t sp = 0, ss = 0;
        for (const char *c = p; *c; c++) sp += *c == '/';
        for (const char *c = path; *c; c++) ss += *c == '/';
        if (sp != ss) abort();
    }
    return 0;
}
