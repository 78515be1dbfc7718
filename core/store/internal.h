/* internal.h: helpers shared by the store's resource files; not part of the
 * store's public header. */
#ifndef SARYE_STORE_INTERNAL_H
#define SARYE_STORE_INTERNAL_H

#include "store/records.h"

#define TEXT(st, i) ((const char *)sqlite3_column_text((st), (i)))
#define OPT(st, i) \
    (sqlite3_column_type((st), (i)) == SQLITE_NULL ? json_null() : json_string(TEXT(st, i)))

/* Whose records a principal sees: its own organisation's; a district's
 * (시·군·구 희망복지지원단) also those of the dong centres of its region. In
 * SQL write VISIBLE_TO("org_id") and bind with store_bind_viewer (it takes
 * the parameters ?20 to ?22). */
#define VISIBLE_TO(col) \
    "(" col " = ?20 OR (?21 = 1 AND " col " IN (SELECT id FROM orgs WHERE type = 'emd' AND region = ?22)))"
void store_bind_viewer(sqlite3_stmt *st, const principal *p);

/* Binds text, or NULL for a NULL or empty string. */
void store_bind_opt(sqlite3_stmt *st, int i, const char *v);

/* Steps st into {"items": [...], "next_cursor"}: st must select limit+1
 * rows; row renders one; cursor_col is the column a next page starts after. */
int store_page(store_tx *tx, sqlite3_stmt *st, int limit, json_t *(*row)(sqlite3_stmt *),
               int cursor_col, json_t **out, err_t *e);

#endif
