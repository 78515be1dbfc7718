/* internal.h: what rules.c shares with views.c; not part of rules.h. */
#ifndef SARYE_RULES_INTERNAL_H
#define SARYE_RULES_INTERNAL_H

#include <lua.h>

#include "lua/vm.h"
#include "rules/rules.h"

/* What the views of one question read: the facts it was given. */
typedef struct {
    const rules_facts *f;
} view_ctx;

/* The views the VM's host functions read through (views.c). */
extern const luavm_views rules_views;

/* Pushes a case row as the Lua table plugins see. */
void rules_push_case(lua_State *L, const case_row *c);
/* What look-ups (agencies, before any transaction) may take: half the
 * request timeout. */
int rules_lookup_budget_ms(void);

#endif
