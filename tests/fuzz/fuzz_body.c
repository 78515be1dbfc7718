/* libFuzzer: request bodies as the server reads them — the nesting bound,
 * the JSON parser, then the validation of a person, an RRN, a date and a
 * cursor. Nothing may crash, and an accepted person must be well formed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/rrn.h"
#include "http/internal.h"
#include "render/render.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return base_init();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char buf[256];
    size_t n = size < sizeof buf - 1 ? size : sizeof buf - 1;
    memcpy(buf, data, n);
    buf[n] = 0;
    char digits[14], birth[11], id[128];
    int y, m, d;
    rrn_info info;
    if (rrn_read(buf, "2026-12-01", &info) == RRN_OK &&
        (strlen(info.digits) != 13 || !date_parse(info.birth, &y, &m, &d) || strcmp(info.birth, "2026-12-01") > 0))
        abort();
    date_parse(buf, &y, &m, &d);
    cursor_decode(buf, id, sizeof id);
    utf8_valid(s, size);
    if (!json_depth_ok(s, size, 32)) return 0;
    json_t *j = json_loadb(s, size, JSON_REJECT_DUPLICATES, NULL);
    if (!j) return 0;
    person_in in;
    err_t e = {0};
    json_t *warnings = NULL;
    if (person_from_json(j, true, &in, digits, birth, &warnings, &e) == 0) {
        if (!in.name || !in.birth_date || !in.sex || !date_parse(in.birth_date, &y, &m, &d)) abort();
        if (warnings && (!in.rrn || !json_is_array(warnings))) abort(); /* only a number warns */
    } else if (e.status < 400 || e.status > 499 || warnings) {
        abort(); /* refusals are the caller's fault: a 4xx */
    }
    json_decref(warnings);
    err_clear(&e);
    json_decref(j);
    return 0;
}
