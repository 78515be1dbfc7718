/*
 * pattern.c: string.find, string.match, string.gmatch and string.gsub for
 * the plugin sandbox, with Lua 5.1's pattern language and results, and one
 * difference: the matcher counts its steps. A pattern that backtracks
 * without end (("a*"):rep(20) .. "b" against a string of a's) runs in C,
 * where the watchdog's instruction hook never fires; here it is stopped
 * like any other plugin code that runs past its CPU budget.
 *
 * The matcher follows the structure of Lua 5.1's lstrlib.c (MIT licence,
 * (c) 1994-2012 Lua.org, PUC-Rio), which LuaJIT's own string functions
 * implement too, with a step counter added and the recursion bounded;
 * tests/unit/test_pattern.c holds it against LuaJIT's functions on many
 * patterns and strings.
 */
#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "base/base.h"
#include "lua/vm.h"

#define ESC '%'
#define SPECIALS "^$*+?.([%-"
#define MAX_CAPTURES 32
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
#define MAX_DEPTH 200           /* nested matches (C recursion) */
#define CHECK_EVERY 4096        /* steps between budget checks */

typedef struct {
    const char *src_init, *src_end;
    lua_State *L;
    luavm *vm;                  /* NULL outside a sarye VM (tests): no budget */
    unsigned long steps;
    int depth;
    int level;                  /* captures in use */
    struct {
        const char *init;
        ptrdiff_t len;
    } capture[MAX_CAPTURES];
} match_state;

/* Every CHECK_EVERY steps: is the call past its CPU budget? Then this is
 * the watchdog's kill, raised from here. */
static void step_n(match_state *ms, unsigned long n)
{
    unsigned long before = ms->steps;
    ms->steps += n;
    if (ms->steps / CHECK_EVERY == before / CHECK_EVERY) return;
    if (ms->vm) luavm_check_budget(ms->vm);
}

static void step(match_state *ms) { step_n(ms, 1); }

static int check_capture(match_state *ms, int l)
{
    l -= '1';
    if (l < 0 || l >= ms->level || ms->capture[l].len == CAP_UNFINISHED)
        return luaL_error(ms->L, "invalid capture index");
    return l;
}

static int capture_to_close(match_state *ms)
{
    int level = ms->level;
    for (level--; level >= 0; level--)
        if (ms->capture[level].len == CAP_UNFINISHED) return level;
    return luaL_error(ms->L, "invalid pattern capture");
}

/* The end of the single-character class starting at p. */
static const char *class_end(match_state *ms, const char *p)
{
    switch (*p++) {
    case ESC:
        if (*p == '\0') luaL_error(ms->L, "malformed pattern (ends with '%%')");
        return p + 1;
    case '[':
        if (*p == '^') p++;
        do { /* look for a ']' */
            if (*p == '\0') luaL_error(ms->L, "malformed pattern (missing ']')");
            if (*(p++) == ESC && *p != '\0') p++; /* skip escapes (e.g. '%]') */
        } while (*p != ']');
        return p + 1;
    default:
        return p;
    }
}

static int class_match(int c, int cl)
{
    int res;
    switch (tolower(cl)) {
    case 'a': res = isalpha(c); break;
    case 'c': res = iscntrl(c); break;
    case 'd': res = isdigit(c); break;
    case 'l': res = islower(c); break;
    case 'p': res = ispunct(c); break;
    case 's': res = isspace(c); break;
    case 'u': res = isupper(c); break;
    case 'w': res = isalnum(c); break;
    case 'x': res = isxdigit(c); break;
    case 'z': res = (c == 0); break;
    default: return cl == c;
    }
    if (isupper(cl)) res = !res;
    return res != 0;
}

/* [set]: p at '[', ec at its closing ']'. */
static int set_match(int c, const char *p, const char *ec)
{
    int sig = 1;
    if (*(p + 1) == '^') {
        sig = 0;
        p++;
    }
    while (++p < ec) {
        if (*p == ESC) {
            p++;
            if (class_match(c, (unsigned char)*p)) return sig;
        } else if (*(p + 1) == '-' && p + 2 < ec) {
            p += 2;
            if ((unsigned char)*(p - 2) <= c && c <= (unsigned char)*p) return sig;
        } else if ((unsigned char)*p == c) {
            return sig;
        }
    }
    return !sig;
}

static int single_match(int c, const char *p, const char *ep)
{
    switch (*p) {
    case '.': return 1;
    case ESC: return class_match(c, (unsigned char)*(p + 1));
    case '[': return set_match(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

static const char *do_match(match_state *ms, const char *s, const char *p);

static const char *match_balance(match_state *ms, const char *s, const char *p)
{
    if (*p == 0 || *(p + 1) == 0) luaL_error(ms->L, "unbalanced pattern");
    if (*s != *p) return NULL;
    int b = *p, e = *(p + 1), cont = 1;
    while (++s < ms->src_end) {
        step(ms);
        if (*s == e) {
            if (--cont == 0) return s + 1;
        } else if (*s == b) {
            cont++;
        }
    }
    return NULL;
}

static const char *max_expand(match_state *ms, const char *s, const char *p, const char *ep)
{
    ptrdiff_t i = 0;
    while (s + i < ms->src_end && single_match((unsigned char)*(s + i), p, ep)) {
        step(ms);
        i++;
    }
    while (i >= 0) { /* try with the longest run first, then shorter */
        step(ms);
        const char *res = do_match(ms, s + i, ep + 1);
        if (res) return res;
        i--;
    }
    return NULL;
}

static const char *min_expand(match_state *ms, const char *s, const char *p, const char *ep)
{
    for (;;) {
        step(ms);
        const char *res = do_match(ms, s, ep + 1);
        if (res) return res;
        if (s < ms->src_end && single_match((unsigned char)*s, p, ep)) s++;
        else return NULL;
    }
}

static const char *start_capture(match_state *ms, const char *s, const char *p, int what)
{
    if (ms->level >= MAX_CAPTURES) luaL_error(ms->L, "too many captures");
    ms->capture[ms->level].init = s;
    ms->capture[ms->level].len = what;
    ms->level++;
    const char *res = do_match(ms, s, p);
    if (!res) ms->level--; /* undo */
    return res;
}

static const char *end_capture(match_state *ms, const char *s, const char *p)
{
    int l = capture_to_close(ms);
    ms->capture[l].len = s - ms->capture[l].init;
    const char *res = do_match(ms, s, p);
    if (!res) ms->capture[l].len = CAP_UNFINISHED;
    return res;
}

static const char *match_capture(match_state *ms, const char *s, int l)
{
    l = check_capture(ms, l);
    size_t len = (size_t)ms->capture[l].len;
    if ((size_t)(ms->src_end - s) >= len && memcmp(ms->capture[l].init, s, len) == 0) return s + len;
    return NULL;
}

static const char *do_match_body(match_state *ms, const char *s, const char *p)
{
    for (;;) {
        step(ms);
        switch (*p) {
        case '(':
            if (*(p + 1) == ')') return start_capture(ms, s, p + 2, CAP_POSITION);
            return start_capture(ms, s, p + 1, CAP_UNFINISHED);
        case ')':
            return end_capture(ms, s, p + 1);
        case ESC:
            switch (*(p + 1)) {
            case 'b':
                s = match_balance(ms, s, p + 2);
                if (!s) return NULL;
                p += 4;
                continue;
            case 'f': {
                p += 2;
                if (*p != '[') luaL_error(ms->L, "missing '[' after '%%f' in pattern");
                const char *ep = class_end(ms, p);
                int prev = (s == ms->src_init) ? '\0' : (unsigned char)*(s - 1);
                int cur = s < ms->src_end ? (unsigned char)*s : '\0';
                if (!set_match(prev, p, ep - 1) && set_match(cur, p, ep - 1)) {
                    p = ep;
                    continue;
                }
                return NULL;
            }
            default:
                if (isdigit((unsigned char)*(p + 1))) {
                    s = match_capture(ms, s, (unsigned char)*(p + 1));
                    if (!s) return NULL;
                    p += 2;
                    continue;
                }
                goto dflt;
            }
        case '\0':
            return s; /* end of pattern */
        case '$':
            if (*(p + 1) == '\0') return (s == ms->src_end) ? s : NULL;
            goto dflt;
        default:
        dflt: {
            const char *ep = class_end(ms, p);
            int m = s < ms->src_end && single_match((unsigned char)*s, p, ep);
            switch (*ep) {
            case '?': {
                if (m) {
                    const char *res = do_match(ms, s + 1, ep + 1);
                    if (res) return res;
                }
                p = ep + 1;
                continue;
            }
            case '*': return max_expand(ms, s, p, ep);
            case '+': return m ? max_expand(ms, s + 1, p, ep) : NULL;
            case '-': return min_expand(ms, s, p, ep);
            default:
                if (!m) return NULL;
                s++;
                p = ep;
                continue;
            }
        }
        }
    }
}

static const char *do_match(match_state *ms, const char *s, const char *p)
{
    if (++ms->depth > MAX_DEPTH) luaL_error(ms->L, "pattern too complex (nested too deeply)");
    const char *res = do_match_body(ms, s, p);
    ms->depth--;
    return res;
}

static void push_onecapture(match_state *ms, int i, const char *s, const char *e)
{
    if (i >= ms->level) {
        if (i == 0) lua_pushlstring(ms->L, s, (size_t)(e - s)); /* the whole match */
        else luaL_error(ms->L, "invalid capture index");
        return;
    }
    ptrdiff_t l = ms->capture[i].len;
    if (l == CAP_UNFINISHED) luaL_error(ms->L, "unfinished capture");
    if (l == CAP_POSITION) lua_pushinteger(ms->L, ms->capture[i].init - ms->src_init + 1);
    else lua_pushlstring(ms->L, ms->capture[i].init, (size_t)l);
}

static int push_captures(match_state *ms, const char *s, const char *e)
{
    int nlevels = (ms->level == 0 && s) ? 1 : ms->level;
    luaL_checkstack(ms->L, nlevels, "too many captures");
    for (int i = 0; i < nlevels; i++) push_onecapture(ms, i, s, e);
    return nlevels;
}

static void init_state(match_state *ms, lua_State *L, const char *s, size_t ls)
{
    memset(ms, 0, sizeof *ms);
    ms->L = L;
    ms->src_init = s;
    ms->src_end = s + ls;
    ms->vm = luavm_of_state(L);
}

static ptrdiff_t posrelat(ptrdiff_t pos, size_t len)
{
    if (pos < 0) pos += (ptrdiff_t)len + 1;
    return pos >= 0 ? pos : 0;
}

/* A plain search for p in s (no specials), bounded like the matcher. */
static const char *plain_find(match_state *ms, const char *s, size_t ls, const char *p, size_t lp)
{
    if (lp == 0) return s;
    if (lp > ls) return NULL;
    const char *last = s + ls - lp;
    for (const char *q = s; q <= last; q++) {
        step_n(ms, 1 + lp / 64); /* a comparison costs up to lp bytes */
        if (*q == *p && memcmp(q, p, lp) == 0) return q;
    }
    return NULL;
}

static int str_find_aux(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    ptrdiff_t init = posrelat(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init < 0) init = 0;
    else if ((size_t)init > ls) init = (ptrdiff_t)ls;
    match_state ms;
    init_state(&ms, L, s, ls);
    if (find && (lua_toboolean(L, 4) || strpbrk(p, SPECIALS) == NULL)) {
        const char *s2 = plain_find(&ms, s + init, ls - (size_t)init, p, lp);
        if (s2) {
            lua_pushinteger(L, s2 - s + 1);
            lua_pushinteger(L, s2 - s + (ptrdiff_t)lp);
            return 2;
        }
    } else {
        int anchor = (*p == '^') ? (p++, 1) : 0;
        const char *s1 = s + init;
        do {
            ms.level = 0;
            ms.depth = 0;
            const char *e = do_match(&ms, s1, p);
            if (e) {
                if (find) {
                    lua_pushinteger(L, s1 - s + 1);
                    lua_pushinteger(L, e - s);
                    return push_captures(&ms, NULL, NULL) + 2;
                }
                return push_captures(&ms, s1, e);
            }
        } while (s1++ < ms.src_end && !anchor);
    }
    lua_pushnil(L);
    return 1;
}

static int str_find(lua_State *L) { return str_find_aux(L, 1); }
static int str_match(lua_State *L) { return str_find_aux(L, 0); }

static int gmatch_aux(lua_State *L)
{
    size_t ls;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    const char *p = lua_tostring(L, lua_upvalueindex(2));
    match_state ms;
    init_state(&ms, L, s, ls);
    for (const char *src = s + (size_t)lua_tointeger(L, lua_upvalueindex(3)); src <= ms.src_end; src++) {
        ms.level = 0;
        ms.depth = 0;
        const char *e = do_match(&ms, src, p);
        if (e) {
            ptrdiff_t newstart = e - s;
            if (e == src) newstart++; /* empty match: go at least one position */
            lua_pushinteger(L, newstart);
            lua_replace(L, lua_upvalueindex(3));
            return push_captures(&ms, src, e);
        }
    }
    return 0;
}

static int str_gmatch(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, gmatch_aux, 3);
    return 1;
}

static void add_s(match_state *ms, luaL_Buffer *b, const char *s, const char *e)
{
    size_t l;
    const char *news = lua_tolstring(ms->L, 3, &l);
    for (size_t i = 0; i < l; i++) {
        step(ms);
        if (news[i] != ESC) {
            luaL_addchar(b, news[i]);
        } else {
            i++; /* skip ESC */
            if (!isdigit((unsigned char)news[i])) {
                luaL_addchar(b, news[i]);
            } else if (news[i] == '0') {
                luaL_addlstring(b, s, (size_t)(e - s));
            } else {
                push_onecapture(ms, news[i] - '1', s, e);
                luaL_addvalue(b); /* the capture */
            }
        }
    }
}

static void add_value(match_state *ms, luaL_Buffer *b, const char *s, const char *e)
{
    lua_State *L = ms->L;
    switch (lua_type(L, 3)) {
    case LUA_TNUMBER:
    case LUA_TSTRING: add_s(ms, b, s, e); return;
    case LUA_TFUNCTION: {
        lua_pushvalue(L, 3);
        int n = push_captures(ms, s, e);
        lua_call(L, n, 1);
        break;
    }
    case LUA_TTABLE:
        push_onecapture(ms, 0, s, e);
        lua_gettable(L, 3);
        break;
    }
    if (!lua_toboolean(L, -1)) { /* nil or false: keep the original text */
        lua_pop(L, 1);
        lua_pushlstring(L, s, (size_t)(e - s));
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    }
    luaL_addvalue(b);
}

static int str_gsub(lua_State *L)
{
    size_t srcl;
    const char *src = luaL_checklstring(L, 1, &srcl);
    const char *p = luaL_checkstring(L, 2);
    int tr = lua_type(L, 3);
    int max_s = luaL_optint(L, 4, (int)srcl + 1);
    int anchor = (*p == '^') ? (p++, 1) : 0;
    int n = 0;
    luaL_argcheck(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                  "string/function/table expected");
    match_state ms;
    init_state(&ms, L, src, srcl);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    while (n < max_s) {
        ms.level = 0;
        ms.depth = 0;
        const char *e = do_match(&ms, src, p);
        if (e) {
            n++;
            add_value(&ms, &b, src, e);
        }
        if (e && e > src) src = e; /* non-empty match */
        else if (src < ms.src_end) luaL_addchar(&b, *src++);
        else break;
        if (anchor) break;
    }
    luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
    luaL_pushresult(&b);
    lua_pushinteger(L, n);
    return 2;
}

void luavm_open_patterns(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch}, {"gsub", str_gsub}, {NULL, NULL}};
    lua_getglobal(L, "string");
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, -2, f->name);
    }
    lua_pop(L, 1);
}
