/* libFuzzer: the configuration parser must refuse or accept any text
 * without crashing, and name the key of what it refuses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    config c;
    char err[600];
    config_defaults(&c);
    if (config_parse_text(&c, text, "fuzz", err, sizeof err) == 0) {
        /* whatever was accepted is within the documented ranges */
        if (c.threads < 1 || c.threads > 1024 || c.max_body_bytes < 64) abort();
    }
    free(text);
    return 0;
}
