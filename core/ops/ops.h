/*
 * ops: what an operator runs beside the server — online backups, restores
 * (with the server stopped), and checking a configuration file. Each
 * prints what it did for a person on stdout, problems on stderr, and
 * returns the exit status.
 */
#ifndef SARYE_OPS_H
#define SARYE_OPS_H

#include <stddef.h>

#include "config/config.h"

/* The master key file of cfg: key_file, or sarye.key beside the database. */
void ops_key_path(const config *cfg, char *out, size_t outlen);

/* sarye backup FILE: a consistent copy of the database (a server may be
 * running and writing) into the new file FILE, without the key; says
 * where the key is and that it must be kept, separately. */
int ops_backup(const config *cfg, const char *file);

/* sarye restore FILE: refuses a file that is damaged, not a sarye
 * database, of a newer schema, or whose sealed numbers the configured key
 * cannot open; refuses while a server uses the database; keeps the
 * replaced database as DB.before-restore. */
int ops_restore(const config *cfg, const char *file);

/* sarye config check [FILE]: every line of FILE (default: what serve
 * would read) and the SARYE_* environment; unknown keys with a
 * suggestion. 0 valid, 1 problems. */
int ops_config_check(const char *file);

/* Held by sarye serve for its whole life (a shared lock on the database
 * file), so that a restore refuses to replace a database in use; -1 with
 * err when a restore holds it. Called before the store opens (an existing
 * database) and after (a new one); a second call once held does nothing. */
int ops_serve_lock(const config *cfg, char *err, size_t errlen);

#endif
