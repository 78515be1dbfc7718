/* migrations: the schema, as an ordered list of versions compiled into the
 * binary. Never edit a released version; append a new one. */
#ifndef SARYE_MIGRATIONS_H
#define SARYE_MIGRATIONS_H

extern const char *const migrations[];
extern const int migrations_count;

#endif
