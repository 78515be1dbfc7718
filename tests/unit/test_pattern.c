/*
 * test_pattern.c: lua/pattern.c, the step-counted string.find, match,
 * gmatch and gsub of the plugin sandbox. Held against LuaJIT's own
 * functions on thousands of generated patterns and strings (same results,
 * or both an error), then shown to stop a pattern that backtracks without
 * end within the CPU budget, where LuaJIT's own would run for ever.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "base/base.h"
#include "lua/vm.h"

/* Generates patterns from the pieces of the pattern language and compares
 * every function's answers, native vs sarye's. Returns the number of
 * comparisons, or raises with the first difference. */
static const char DIFFERENTIAL[] =
    "local native, mine = ...\n"
    "math.randomseed(20261201)\n"
    "local atoms = { 'a', 'b', '.', '%a', '%d', '%s', '%w', '%p', '%l', '%u', '%x', '%c', '%A', '%D', '%S',\n"
    "  '[abc]', '[^a-c]', '[%d_]', '[%]]', '[a-]', '%%', '%(', '%.', '-', 'x', '1', ' ', '%z' }\n"
    "local quant = { '', '', '', '*', '+', '-', '?' }\n"
    "local function piece(depth)\n"
    "  local r = math.random(100)\n"
    "  if depth < 3 and r <= 8 then return '(' .. piece(depth + 1) .. piece(depth + 1) .. ')' end\n"
    "  if r <= 11 then return '()' end\n"
    "  if r <= 13 then return '%b()' end\n"
    "  if r <= 15 then return '%f[%w]' end\n"
    "  return atoms[math.random(#atoms)] .. quant[math.random(#quant)]\n"
    "end\n"
    "local function pattern()\n"
    "  local p = math.random(6) == 1 and '^' or ''\n"
    "  for i = 1, math.random(5) do p = p .. piece(0) end\n"
    "  if math.random(8) == 1 then p = p .. '$' end\n"
    "  if math.random(10) == 1 and p:find('%(', 1, true) then p = p .. '%1' end\n"
    "  return p\n"
    "end\n"
    "local alphabet = { 'a', 'a', 'b', 'c', '(', ')', 'd', '1', '2', ' ', '_', '-', 'x', '%', '.', 'A', ']', '\\0' }\n"
    "local function subject()\n"
    "  local t = {}\n"
    "  for i = 1, math.random(0, 14) do t[i] = alphabet[math.random(#alphabet)] end\n"
    "  return table.concat(t)\n"
    "end\n"
    "local function pack(ok, ...) return { ok = ok, n = select('#', ...), ... } end\n"
    "local function same(a, b, what)\n"
    "  if a.ok ~= b.ok then error(what .. ': native ' .. tostring(a.ok) .. ' ' .. tostring(a[1]) .. ', mine ' ..\n"
    "    tostring(b.ok) .. ' ' .. tostring(b[1]), 0) end\n"
    "  if not a.ok then return end\n"
    "  if a.n ~= b.n then error(what .. ': ' .. a.n .. ' results vs ' .. b.n, 0) end\n"
    "  for i = 1, a.n do\n"
    "    if a[i] ~= b[i] then error(what .. ': result ' .. i .. ' ' .. tostring(a[i]) .. ' vs ' .. tostring(b[i]), 0) end\n"
    "  end\n"
    "end\n"
    "local function all(f, s, p)\n"
    "  local out = { n = 0 }\n"
    "  local ok, err = pcall(function()\n"
    "    for a, b, c in f(s, p) do\n"
    "      out.n = out.n + 1; out[#out + 1] = tostring(a) .. '|' .. tostring(b) .. '|' .. tostring(c)\n"
    "      if out.n > 50 then break end\n"
    "    end\n"
    "  end)\n"
    "  return { ok = ok, n = 1, table.concat(out, ',') }\n"
    "end\n"
    "local count = 0\n"
    "for round = 1, 4000 do\n"
    "  local p, s = pattern(), subject()\n"
    "  local init = ({ nil, 1, 2, -1, -3, 0, 20 })[math.random(7)]\n"
    "  local what = string.format('%q on %q init %s', p, s, tostring(init))\n"
    "  same(pack(pcall(native.find, s, p, init)), pack(pcall(mine.find, s, p, init)), 'find ' .. what)\n"
    "  same(pack(pcall(native.find, s, p, init, true)), pack(pcall(mine.find, s, p, init, true)), 'plain find ' .. what)\n"
    "  same(pack(pcall(native.match, s, p, init)), pack(pcall(mine.match, s, p, init)), 'match ' .. what)\n"
    "  same(all(native.gmatch, s, p), all(mine.gmatch, s, p), 'gmatch ' .. what)\n"
    "  local repls = { '<%0>', '[%1]', '%%', function(a) return a and a:upper() end, { a = 'A', b = false } }\n"
    "  local r = repls[math.random(#repls)]\n"
    "  local n = ({ nil, 1, 2 })[math.random(3)]\n"
    "  same(pack(pcall(native.gsub, s, p, r, n)), pack(pcall(mine.gsub, s, p, r, n)), 'gsub ' .. what)\n"
    "  count = count + 5\n"
    "end\n"
    "return count\n";

static void test_same_answers_as_luajit(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    /* native: LuaJIT's own functions, kept before the sandbox's replace them */
    lua_newtable(L);
    lua_getglobal(L, "string");
    const char *const names[] = {"find", "match", "gmatch", "gsub"};
    for (int i = 0; i < 4; i++) {
        lua_getfield(L, -1, names[i]);
        lua_setfield(L, -3, names[i]);
    }
    lua_pop(L, 1);
    luavm_open_patterns(L);
    lua_getglobal(L, "string"); /* mine */
    if (luaL_loadstring(L, DIFFERENTIAL)) fail_msg("%s", lua_tostring(L, -1));
    lua_insert(L, -3);
    if (lua_pcall(L, 2, 1, 0)) fail_msg("a difference: %s", lua_tostring(L, -1));
    assert_int_equal((int)lua_tointeger(L, -1), 20000);
    lua_close(L);
}

static void test_known_answers(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luavm_open_patterns(L);
    const char *checks =
        "assert(select(2, ('2026-12-01'):find('^(%d+)-(%d+)-(%d+)$')) == 10)\n"
        "local y, m, d = ('2026-12-01'):match('^(%d+)-(%d+)-(%d+)$')\n"
        "assert(y == '2026' and m == '12' and d == '01')\n"
        "assert(('홍길동 님'):gsub('님', '씨') == '홍길동 씨')\n"
        "local n = 0 for w in ('a b  c'):gmatch('%S+') do n = n + 1 end assert(n == 3)\n"
        "assert(('f(a(b)c)d'):match('%b()') == '(a(b)c)')\n"
        "assert(('THE (quick) fox'):find('%f[%a]%a+', 5) == 6)\n"
        "assert(('hello'):find('l', 1, true) == 3)\n"
        "assert(('x'):rep(3):gsub('', '-') == '-x-x-x-')\n";
    if (luaL_dostring(L, checks)) fail_msg("%s", lua_tostring(L, -1));
    lua_close(L);
}

/* A pattern that backtracks without end is stopped at the CPU budget. */
static void test_runaway_pattern_is_stopped(void **state)
{
    (void)state;
    char err[300];
    luavm *vm = luavm_new(32 << 20, 100, err, sizeof err);
    assert_non_null(vm);
    const char *bombs[] = {
        "return (('a'):rep(40)):find(('a*'):rep(40) .. 'b')",
        "return (('a'):rep(40)):match(('a-'):rep(40) .. 'b')",
        "return (('a'):rep(40)):gsub(('a*'):rep(40) .. 'b', 'x')",
        "for x in (('a'):rep(40)):gmatch(('a*'):rep(40) .. 'b') do end",
        "return (('x'):rep(4000000)):find(('x'):rep(2000000) .. 'y', 1, true)", /* O(n m) memcmp */
    };
    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
        if (luaL_loadstring(vm->L, bombs[i])) fail_msg("%s", lua_tostring(vm->L, -1));
        err_t e = {0};
        if (luavm_pcall(vm, 0, 1, 100, &e) != -1) fail_msg("bomb %zu was not stopped: %s", i, bombs[i]);
        assert_string_equal(e.code, "plugin_timeout");
        err_clear(&e);
        lua_settop(vm->L, 0);
    }
    luavm_free(vm);
}

int main(void)
{
    base_init();
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_answers_as_luajit),
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_runaway_pattern_is_stopped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
