/* list.c: pages of rows and their opaque cursors. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "store/internal.h"

void store_bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v) sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, i);
}

void store_bind_viewer(sqlite3_stmt *st, const principal *p)
{
    sqlite3_bind_text(st, 20, p->org, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 21, !strcmp(p->org_type, "district"));
    sqlite3_bind_text(st, 22, p->region, -1, SQLITE_TRANSIENT);
}

int store_page(store_tx *tx, sqlite3_stmt *st, int limit, json_t *(*row)(sqlite3_stmt *),
               int cursor_col, json_t **out, err_t *e)
{
    json_t *items = json_array();
    char last[ID_MAX] = "";
    int rc, n = 0;
    bool more = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit) { more = true; break; }
        json_array_append_new(items, row(st));
        snprintf(last, sizeof last, "%s", TEXT(st, cursor_col));
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_decref(items);
        return store_fail(tx, e, "list");
    }
    char cur[96];
    if (more) cursor_encode(last, cur, sizeof cur);
    *out = json_pack("{s:o, s:o}", "items", items, "next_cursor", more ? json_string(cur) : json_null());
    return 0;
}

void cursor_encode(const char *last_id, char *out, size_t outlen)
{
    sodium_bin2base64(out, outlen, (const unsigned char *)last_id, strlen(last_id),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int cursor_decode(const char *cursor, char *id, size_t idlen)
{
    size_t n = 0;
    if (!cursor || !*cursor ||
        sodium_base642bin((unsigned char *)id, idlen - 1, cursor, strlen(cursor), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING))
        return -1;
    id[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (!(id[i] == '_' || (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'Z') ||
              (id[i] >= 'a' && id[i] <= 'z') || id[i] == '-' || id[i] == '.'))
            return -1;
    return n ? 0 : -1;
}
