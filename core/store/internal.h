/* internal.h: helpers shared by the store's resource files; not part of the
 * store's public header. */
#ifndef SARYE_STORE_INTERNAL_H
#define SARYE_STORE_INTERNAL_H

#include "store/records.h"

#define TEXT(st, i) ((const char *)sqlite3_column_text((st), (i)))
#define OPT(st, i) \
    (sqlite3_column_type((st), (i)) == SQLITE_NULL ? json_null() : json_string(TEXT(st, i)))

/* Binds text, or NULL for a NULL or empty string. */
void store_bind_opt(sqlite3_stmt *st, int i, const char *v);

/* Steps st into {"items": [...], "next_cursor"}: st must select limit+1
 * rows; row renders one; cursor_col is the column a next page starts after. */
int store_page(store_tx *tx, sqlite3_stmt *st, int limit, json_t *(*row)(sqlite3_stmt *),
               int cursor_col, json_t **out, err_t *e);

#endif
