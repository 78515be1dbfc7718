-- host.lua: the trusted half of the plugin host, compiled into sarye and run
-- in every plugin VM before any plugin. It builds the sandbox plugins run in,
-- loads and validates a plugin set, merges program rules with region
-- overlays, and evaluates them. It knows no program or region: that
-- knowledge comes only from the plugin files it is handed.
--
-- It is one module: it defines no globals, and returns the table of its
-- entry points (M), which C keeps by reference (core/rules/ is the only C
-- that calls them; core/lua/plugins.c loads and tests sets through them).
-- Every entry point takes plain Lua values and returns a plain table: a
-- verdict {ok, kind, plugin, version, reason, field, allowed, label,
-- effects, result, move, end_case ...} that core/rules/ reads field by field.
--
-- It relies on the C side (core/lua/vm.c), handed in as C: C.load_text
-- (text-only chunks), C.set_current (which plugin runs, for errors, logs
-- and budget kills), date arithmetic, JSON, logging, and the views of the
-- store a rules call is given (person, history, named queries, consents,
-- agency look-ups), valid only during that call.

local C = ...
local M = {}
local API_VERSION = 1

local STAGES = { "discovery", "initial_counseling", "intake", "assessment", "selection",
                 "planning", "delivery", "monitoring", "closure", "follow_up" }
local STAGE_INDEX = {}
for i, s in ipairs(STAGES) do STAGE_INDEX[s] = i end

local array = C.array -- marks a table as a JSON array (even when empty)

-- Everything below is captured now: plugins cannot reach or change it.
local pairs, ipairs, type, tostring, tonumber, setfenv, pcall, error, select, next, setmetatable, unpack, rawset =
      pairs, ipairs, type, tostring, tonumber, setfenv, pcall, error, select, next, setmetatable, unpack, rawset
local sort, concat, maxn = table.sort, table.concat, table.maxn
local fmt, match, gmatch, find = string.format, string.match, string.gmatch, string.find
local cpu_clock = os.clock

---------------------------------------------------------------------------
-- Phases: what plugin code is doing when it calls the host. Every host
-- function a plugin can call names the phases it works in, here and
-- nowhere else; a call anywhere else is the same error in `plugin check`,
-- `plugin test` and the server.
---------------------------------------------------------------------------

local PHASE_TEXT = {
  load = "a plugin file's top-level code", eligibility = "eligibility", lookup = "lookup",
  prepare = "prepare", guard = "a guard", hook = "a hook", validate = "records.<kind>.validate",
  on_record = "on_record", message = "an agency message", test = "a test body",
}
local function set_of(...)
  local s = {}
  for _, k in ipairs({ ... }) do s[k] = true end
  return s
end
local READS = set_of("eligibility", "guard", "hook", "validate", "on_record")
-- Everything but a file's top-level code: that code runs again in every VM
-- the server builds, so it must come out the same each time.
local RUNTIME = set_of("eligibility", "lookup", "prepare", "guard", "hook", "validate", "on_record", "message", "test")
local EFFECTS = set_of("hook", "on_record")
local HOST_CALLS = {
  ["ctx.person"] = READS, ["ctx.history"] = READS, ["ctx.query"] = READS,
  ["ctx.set_deadline"] = EFFECTS, ["ctx.clear_deadline"] = EFFECTS, ["ctx.enqueue"] = EFFECTS,
  ["ctx.move"] = set_of("on_record"), ["ctx.end_case"] = set_of("on_record"), ["ctx.set_lead"] = set_of("on_record"),
  ["ctx.consent_allows"] = set_of("lookup", "prepare"),
  ["sarye.http.post"] = set_of("lookup", "prepare"),
  ["os.time"] = RUNTIME, ["os.date"] = RUNTIME, ["os.clock"] = RUNTIME, ["sarye.date.today"] = RUNTIME,
  ["math.random"] = RUNTIME, ["math.randomseed"] = RUNTIME,
}
local phase = "load"

local function phases_of(name)
  local list = {}
  for p in pairs(HOST_CALLS[name]) do list[#list + 1] = PHASE_TEXT[p] end
  sort(list)
  return concat(list, ", ")
end

-- Raises, at the plugin's own line, when name may not be called now.
local function host_call(name)
  if HOST_CALLS[name][phase] then return end
  error(fmt("%s cannot be called in %s (only in: %s)", name, PHASE_TEXT[phase] or phase, phases_of(name)), 3)
end

-- The named read-only queries: the only way a plugin reads beyond its case.
local QUERIES = {
  cases_of_person = "person_id", plans_of_case = "case_id", records_of_case = "case_id",
  meetings_of_case = "case_id", deadlines_of_case = "case_id", orgs = "region",
}
local function query_names()
  local l = {}
  for k in pairs(QUERIES) do l[#l + 1] = k end
  sort(l)
  return concat(l, ", ")
end
local function unknown_query(name)
  return fmt("unknown query '%s' (known: %s)", tostring(name), query_names())
end

---------------------------------------------------------------------------
-- The sandbox: an allow-list of globals; shared tables are read-only.
---------------------------------------------------------------------------

local function readonly(t, name)
  local proxy = {}
  local mt = {
    __index = t,
    __newindex = function(_, k)
      error(fmt("%s is read-only (cannot set '%s')", name, tostring(k)), 2)
    end,
    __metatable = false,
  }
  return setmetatable(proxy, mt)
end

local function copy_shallow(t, except)
  local c = {}
  for k, v in pairs(t) do if not (except and except[k]) then c[k] = v end end
  return c
end

local function frozen_copy(t, name)
  local c = {}
  for k, v in pairs(t) do
    if type(v) == "table" then c[k] = frozen_copy(v, name .. "." .. tostring(k)) else c[k] = v end
  end
  return readonly(c, name)
end

-- pcall and xpcall as plugins get them. A budget kill cannot be swallowed
-- by either (the watchdog raises again at the next instruction), and an
-- xpcall handler runs as ordinary code after the failed call unwinds, so
-- the watchdog stops a handler that never returns too (LuaJIT runs a real
-- message handler with hooks off).
local function safe_xpcall(f, handler, ...)
  local r = { pcall(f, ...) }
  if r[1] then return unpack(r, 1, maxn(r)) end
  local ok, h = pcall(handler, r[2])
  return false, ok and h or "error in error handling"
end

-- A library function that is a host call: checked for its phase first.
local function guarded(name, fn)
  return function(...) host_call(name) return fn(...) end
end

-- The host module plugins see as `sarye`.
local date = {
  today = guarded("sarye.date.today", C.today), -- "YYYY-MM-DD" in Korea (UTC+9)
  valid = C.date_valid,            -- (s) -> bool
  add_days = C.date_add_days,      -- (date, n) -> date
  add_months = C.date_add_months,  -- (date, n) -> date (end of month clamps)
  diff_days = C.date_diff_days,    -- (a, b) -> b - a in days
}
-- sarye.lib: helpers every program needs, written once (ages and dates in
-- Korea, business days, facts recorded about a person, the case's plans,
-- records and deadlines). Plain Lua over the rest of the sandbox: nothing a
-- plugin could not write itself, only the same everywhere.
local lib = {}

local function ymd(d)
  local y, m, dd = match(tostring(d), "^(%d%d%d%d)-(%d%d)-(%d%d)$")
  if not y or not C.date_valid(d) then return nil end
  return tonumber(y), tonumber(m), tonumber(dd)
end

-- Full years (만 나이) from birth_date to date, or nil when either is not a date.
function lib.age_on(birth_date, date)
  local by, bm, bd = ymd(birth_date)
  local ty, tm, td = ymd(date)
  if not by or not ty then return nil end
  local age = ty - by
  if tm * 100 + td < bm * 100 + bd then age = age - 1 end
  return age
end

-- A person's age as of today (the server's person.age when it gave one).
function lib.age(person, today)
  if type(person) ~= "table" then return nil end
  if type(person.age) == "number" then return person.age end
  return lib.age_on(person.birth_date, today)
end

-- 1 Monday ... 7 Sunday.
function lib.weekday(date)
  if not ymd(date) then error("sarye.lib.weekday: expected a date YYYY-MM-DD", 2) end
  return (C.date_diff_days("1970-01-01", date) + 3) % 7 + 1 -- 1970-01-01 was a Thursday
end

-- date moved by n working days (Monday to Friday, and not a day listed in
-- holidays = {["YYYY-MM-DD"] = true}); n may be negative. Korea's public
-- holidays move with the lunar calendar: a region lists the ones it needs.
function lib.add_business_days(date, n, holidays)
  if not ymd(date) then error("sarye.lib.add_business_days: expected a date YYYY-MM-DD", 2) end
  if type(n) ~= "number" or n % 1 ~= 0 or n < -3650 or n > 3650 then
    error("sarye.lib.add_business_days: n must be a whole number of days (within ten years)", 2)
  end
  holidays = holidays or {}
  local step, d = n < 0 and -1 or 1, date
  while n ~= 0 do
    d = C.date_add_days(d, step)
    if lib.weekday(d) <= 5 and not holidays[d] then n = n - step end
  end
  return d
end

-- The due date of a deadline declared as an offset {days = n} or {months = n}.
function lib.due(from, offset)
  if not ymd(from) then error("sarye.lib.due: expected a date YYYY-MM-DD", 2) end
  if type(offset) ~= "table" then error("sarye.lib.due: offset must be {days = n} or {months = n}", 2) end
  local d = from
  if offset.months then d = C.date_add_months(d, offset.months) end
  if offset.days then d = C.date_add_days(d, offset.days) end
  return d
end

-- Months between two dates, as a number (30.44 days a month).
function lib.months_between(a, b)
  if not ymd(a) or not ymd(b) then return nil end
  return C.date_diff_days(a, b) / 30.44
end

-- Whether a fact recorded about a person (person.eligibility[key]) says
-- yes: absent, false, 0, "", "no", "none", "false", "없음", "해당없음" and
-- an empty table all say no.
local NO_WORDS = { [""] = true, no = true, none = true, ["false"] = true, ["없음"] = true, ["해당없음"] = true }
function lib.fact(facts, key)
  local v = type(facts) == "table" and facts[key] or nil
  if v == nil or v == false or v == 0 then return false end
  if type(v) == "string" and NO_WORDS[v:lower()] then return false end
  if type(v) == "table" and next(v) == nil then return false end
  return true
end

-- The case's work, through ctx.query (so a guard's fixtures answer in tests).
function lib.has_approved_plan(ctx, case)
  for _, p in ipairs(ctx.query("plans_of_case", { case_id = case.id })) do
    if p.status == "approved" then return true end
  end
  return false
end

-- The newest record of kind on the case (recorded last), or nil.
function lib.latest_record(ctx, case, kind)
  local last
  for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = kind })) do last = r end
  return last
end

-- The decisions case conferences took about the case, oldest first: each
-- {meeting = <the meeting>, decision = <the decision>} for every decision
-- (an object) of a meeting of the case that names this case (case_id) or
-- no case, and that holds key when one is given (selection, lead_org ...).
function lib.decisions(ctx, case, key)
  local out = {}
  for _, m in ipairs(ctx.query("meetings_of_case", { case_id = case.id })) do
    for _, d in ipairs(type(m.decisions) == "table" and m.decisions or {}) do
      if type(d) == "table" and (d.case_id == nil or d.case_id == case.id) and (key == nil or d[key] ~= nil) then
        out[#out + 1] = { meeting = m, decision = d }
      end
    end
  end
  return out
end

-- An organisation of a region ({id, name, type, region, area, programs}), or nil.
function lib.org(ctx, region, id)
  for _, o in ipairs(ctx.query("orgs", { region = region })) do
    if o.id == id then return o end
  end
  return nil
end

-- The due date of the case's open deadline of kind, or nil.
function lib.deadline(ctx, case, kind)
  for _, d in ipairs(ctx.query("deadlines_of_case", { case_id = case.id })) do
    if d.kind == kind then return d.due_on end
  end
  return nil
end

-- Logs of plugin code: the server's log, except while a test runs, when
-- sarye.log and print write to the test's own log instead (shown by
-- `sarye plugin test --verbose` and with a failing test, never in the
-- server's log).
local test_log -- the lines of the test running, or nil
local TEST_LOG_LINES, TEST_LOG_BYTES = 200, 2000
local function test_log_add(line)
  local n = #test_log
  if n > TEST_LOG_LINES then return end
  if n == TEST_LOG_LINES then test_log[n + 1] = "... (further lines of this test dropped)" return end
  if #line > TEST_LOG_BYTES then
    local k = TEST_LOG_BYTES
    while k > 0 and find(line:sub(k + 1, k + 1), "^[\128-\191]") do k = k - 1 end -- not inside a character
    line = fmt("%s ...[%d bytes]", line:sub(1, k), #line)
  end
  test_log[n + 1] = line
end

local LOG_LEVELS = { debug = true, info = true, warn = true, error = true }
local function plugin_log(level, message)
  if not LOG_LEVELS[level] then error("sarye.log: level must be debug, info, warn or error", 2) end
  if type(message) ~= "string" and type(message) ~= "number" then
    error("sarye.log: message must be a string", 2)
  end
  if test_log then test_log_add(fmt("[%s] %s", level, tostring(message))) return end
  C.log(level, message)
end

-- print(...) as in Lua: its arguments through tostring, tab-separated; a
-- debug line in the server's log, a line of the test's log in tests.
local function plugin_print(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  local line = concat(parts, "\t")
  if test_log then test_log_add(line) return end
  C.log("debug", line)
end

local sarye_api = {
  api = API_VERSION,
  stages = STAGES,
  date = date,
  lib = lib,
  json = { encode = C.json_encode, decode = C.json_decode },
  -- look-ups of configured agencies, in lookup and prepare functions only:
  -- sarye.http.post(agency_id, "/path", body) -> decoded JSON answer
  http = { post = function(agency, path, body) host_call("sarye.http.post") return C.http_post(agency, path, body) end },
  log = plugin_log,                -- (level, message)
}

local safe_os = { time = guarded("os.time", os.time), date = guarded("os.date", os.date),
                  clock = guarded("os.clock", os.clock) }
local safe_math = copy_shallow(math)
safe_math.random = guarded("math.random", math.random)
safe_math.randomseed = guarded("math.randomseed", math.randomseed)

local globals = readonly({
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
  select = select, tonumber = tonumber, tostring = tostring, type = type, unpack = unpack,
  xpcall = safe_xpcall, rawequal = rawequal, rawget = rawget, setmetatable = setmetatable,
  getmetatable = getmetatable, print = plugin_print,
  string = readonly(copy_shallow(string, { dump = true }), "string"),
  table = readonly(copy_shallow(table), "table"),
  math = readonly(safe_math, "math"),
  os = readonly(safe_os, "os"),
  sarye = frozen_copy(sarye_api, "sarye"),
  _VERSION = _VERSION,
}, "the global environment")

-- A fresh environment per plugin: its own globals, everything else read-only.
local function plugin_env()
  return setmetatable({}, { __index = globals, __metatable = false })
end

---------------------------------------------------------------------------
-- Loading and validating a plugin set.
---------------------------------------------------------------------------

local programs, regions, region_of_code, plugin_list, agencies = {}, {}, {}, {}, {}
local errors = {}

-- The text of each file being loaded, to give structural errors a line.
local texts = {}

-- The line where a key is written: the first `key =`, `["key"] =` or
-- `['key'] =` (after line `after`, when given).
local function line_of_key(text, key, after)
  if not text or type(key) ~= "string" then return nil end
  local n, esc = 1, key:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
  for l in gmatch(text .. "\n", "([^\n]*)\n") do
    if n > (after or 0) and (match(l, "%f[%w_]" .. esc .. "%s*=") or match(l, "%[%s*[\"']" .. esc .. "[\"']%s*%]%s*=")) then
      return n
    end
    n = n + 1
  end
  return nil
end

-- The line an error is about: its message starts with the path of the key
-- at fault (records.plan.validate, guards['a->b'], stages[2] ...).
local function line_of_message(text, message)
  local line
  local rest = tostring(message)
  local first = 1
  for _ = 1, 4 do
    local key, tail = match(rest, "^([%a_][%w_]*)(.*)$")
    if not key then key, tail = match(rest, "^%[%s*[\"']([^\"']+)[\"']%s*%](.*)$") end
    if not key then
      local idx, t2 = match(rest, "^%[(%d+)%](.*)$")
      if not idx then break end
      rest = t2
    else
      local l = line_of_key(text, key, line)
      if not l then break end
      line = l
      rest = tail
    end
    if first == 1 and not match(rest, "^[%.%[]") then break end
    first = 0
    rest = match(rest, "^%.?(.*)$")
  end
  return line
end

local function add_error(plugin, file, message, line)
  local l, m = match(tostring(message), "^[^:]*:(%d+): (.*)$")
  if l then line, message = line or tonumber(l), m end
  line = line or line_of_message(texts[file], message)
  errors[#errors + 1] = { plugin = plugin, file = file, line = line, message = tostring(message) }
end

---------------------------------------------------------------------------
-- The contract as data: every key a plugin may write, where, and its type
-- ("any" where several shapes are allowed; the checks below look closer).
-- A key that is not here is an error, with the nearest known key offered.
---------------------------------------------------------------------------

local RULE_KEYS = {
  labels = "table", transitions = "table", guards = "table", hooks = "table", deadlines = "table",
  prepare = "table", eligibility = "function", lookup = "function", instruments = "table", records = "table",
  on_record = "table", closure_reasons = "table", case_types = "table", referral = "table",
  waitlist = "table", facts = "table",
}
local function with(base, extra)
  local t = {}
  for k, v in pairs(base) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end
local HEAD = { id = "string", kind = "string", version = "string", api = "number", name = "string", tests = "table" }
local SCHEMA = {
  program = with(with(HEAD, RULE_KEYS), { stages = "table", extends = "string", reopen_to = "table", covers = "table" }),
  region = with(HEAD, { regions = "table", programs = "table" }),
  agency = with(HEAD, { direction = "string", messages = "table", statuses = "table" }),
  overlay = RULE_KEYS,
  stage = { id = "string", label = "string" },
  deadline = { start = "string", offset = "table", stop = "any", label = "string" },
  offset = { days = "number", months = "number" },
  instrument = { domains = "table", scale = "table", all_domains = "boolean" },
  scale = { min = "number", max = "number" },
  record = { required = "table", validate = "function" },
  case_type = { label = "string", lead = "string" },
  referral = { answer_days = "number", accepts_from = "table" },
  waitlist = { priority = "function", offer_days = "number" },
  cover = { name = "string", why = "string" },
  hooks = { enter = "table", leave = "table" },
  test = { name = "string", run = "function" },
}

-- Edit distance, for "did you mean".
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

local function nearest(key, shape)
  local best, bd
  for k in pairs(shape) do
    local d = distance(key, k)
    if d < (bd or math.huge) then best, bd = k, d end
  end
  if best and bd <= math.max(2, math.floor(#key / 3)) then return best end
  return nil
end

-- Checks the keys of t against shape; path names t in messages.
local function check_keys(pid, file, t, shape, path)
  if type(t) ~= "table" then return true end
  local ok = true
  for k, v in pairs(t) do
    local want = type(k) == "string" and shape[k]
    local where = path and (path .. "." .. tostring(k)) or tostring(k)
    if not want then
      if type(k) == "string" then
        local near = nearest(k, shape)
        add_error(pid, file, fmt("%s: unknown key%s", where, near and fmt(" (did you mean '%s'?)", near) or ""),
                  line_of_key(texts[file], k))
      else
        add_error(pid, file, fmt("%s: unknown key %s", path or "the plugin", tostring(k)))
      end
      ok = false
    elseif want ~= "any" and type(v) ~= want then
      add_error(pid, file, fmt("%s must be a %s, not a %s", where, want, type(v)), line_of_key(texts[file], k))
      ok = false
    end
  end
  return ok
end

-- The nested shapes of a program's or an overlay's rules.
local function check_rule_shapes(pid, file, r, path)
  local ok = true
  local function each(name, shape)
    if type(r[name]) ~= "table" then return end
    for k, v in pairs(r[name]) do
      ok = check_keys(pid, file, v, shape, fmt("%s%s.%s", path or "", name, tostring(k))) and ok
    end
  end
  each("deadlines", SCHEMA.deadline)
  each("instruments", SCHEMA.instrument)
  each("records", SCHEMA.record)
  each("case_types", SCHEMA.case_type)
  for k, d in pairs(type(r.deadlines) == "table" and r.deadlines or {}) do
    if type(d) == "table" then ok = check_keys(pid, file, d.offset, SCHEMA.offset, fmt("%sdeadlines.%s.offset", path or "", tostring(k))) and ok end
  end
  for k, i in pairs(type(r.instruments) == "table" and r.instruments or {}) do
    if type(i) == "table" then ok = check_keys(pid, file, i.scale, SCHEMA.scale, fmt("%sinstruments.%s.scale", path or "", tostring(k))) and ok end
  end
  ok = check_keys(pid, file, r.referral, SCHEMA.referral, (path or "") .. "referral") and ok
  ok = check_keys(pid, file, r.waitlist, SCHEMA.waitlist, (path or "") .. "waitlist") and ok
  ok = check_keys(pid, file, r.hooks, SCHEMA.hooks, (path or "") .. "hooks") and ok
  return ok
end

-- The whole contract of plugin p (of its kind).
local function check_contract(p, file)
  local shape = SCHEMA[p.kind]
  if not shape then return true end
  local ok = check_keys(p.id, file, p, shape, nil)
  if p.kind == "program" then
    ok = check_rule_shapes(p.id, file, p, nil) and ok
    if type(p.stages) == "table" then
      for i, st in ipairs(p.stages) do ok = check_keys(p.id, file, st, SCHEMA.stage, fmt("stages[%d]", i)) and ok end
    end
    if type(p.covers) == "table" then
      for i, c in ipairs(p.covers) do ok = check_keys(p.id, file, c, SCHEMA.cover, fmt("covers[%d]", i)) and ok end
    end
  elseif p.kind == "region" and type(p.programs) == "table" then
    for pid, ov in pairs(p.programs) do
      ok = check_keys(p.id, file, ov, SCHEMA.overlay, "programs." .. tostring(pid)) and ok
      if type(ov) == "table" then ok = check_rule_shapes(p.id, file, ov, "programs." .. tostring(pid) .. ".") and ok end
    end
  end
  if type(p.tests) == "table" then
    for i, t in ipairs(p.tests) do ok = check_keys(p.id, file, t, SCHEMA.test, fmt("tests[%d]", i)) and ok end
  end
  return ok
end

local function is_semver(v)
  return type(v) == "string" and match(v, "^%d+%.%d+%.%d+[%-+%w%.]*$") ~= nil
end

local function check_fn(p, file, what, v)
  if type(v) ~= "function" then
    add_error(p, file, fmt("%s must be a function, not %s", what, type(v)))
    return false
  end
  return true
end

-- The kinds of case-work record the core posts (and plugins may rule on).
local RECORD_KINDS = { open = true, counseling = true, assessment = true, plan = true, plan_approval = true,
                       service = true, check = true, closure = true, follow_up = true, meeting = true,
                       consultation = true }

local function is_string_list(t)
  if type(t) ~= "table" then return false end
  for _, v in ipairs(t) do if type(v) ~= "string" then return false end end
  return true
end

-- An optional table field of rules: r[name] nil is fine, anything but a
-- table is one error ("<name> must be <shape>"), and each entry goes to fn.
local function each_entry(r, name, shape, bad, fn)
  local t = r[name]
  if t == nil then return end
  if type(t) ~= "table" then bad("%s must be %s", name, shape) return end
  for k, v in pairs(t) do fn(k, v) end
end

-- records, instruments, on_record, closure_reasons, case_types.
local function check_casework(pid, file, r)
  local ok = true
  local function bad(msg, ...) add_error(pid, file, fmt(msg, ...)); ok = false end
  local function kind_ok(k, what)
    if not RECORD_KINDS[k] then bad("%s: '%s' is not a record kind (open, counseling, assessment, plan, plan_approval, service, check, closure, follow_up, meeting, consultation)", what, tostring(k)) return false end
    return true
  end
  each_entry(r, "records", "a table of kind -> {required, validate}", bad, function(k, spec)
    if not kind_ok(k, "records") then return end
    if type(spec) ~= "table" then bad("records.%s must be a table", k) return end
    if spec.required ~= nil and not is_string_list(spec.required) then bad("records.%s.required must be a list of field names", k) end
    if spec.validate ~= nil and type(spec.validate) ~= "function" then bad("records.%s.validate must be a function", k) end
  end)
  each_entry(r, "instruments", "a table of kind -> {domains, scale}", bad, function(k, inst)
    if type(k) ~= "string" or not match(k, "^[a-z][a-z0-9_]*$") then bad("instruments: '%s' is not an instrument id", tostring(k))
    elseif type(inst) ~= "table" or not is_string_list(inst.domains) or #inst.domains == 0 then
      bad("instruments.%s.domains must be a non-empty list of domain ids", k)
    elseif inst.scale ~= nil and (type(inst.scale) ~= "table" or type(inst.scale.min) ~= "number"
                                  or type(inst.scale.max) ~= "number" or inst.scale.min > inst.scale.max) then
      bad("instruments.%s.scale must be {min = n, max = m}", k)
    end
  end)
  each_entry(r, "on_record", "a table of kind -> function", bad, function(k, fn)
    if kind_ok(k, "on_record") then ok = check_fn(pid, file, "on_record." .. k, fn) and ok end
  end)
  each_entry(r, "closure_reasons", "a table of id -> label", bad, function(k, l)
    if type(k) ~= "string" or type(l) ~= "string" then bad("closure_reasons: id and label must be strings") end
  end)
  if r.referral ~= nil and (type(r.referral) ~= "table" or (r.referral.answer_days ~= nil and
      (type(r.referral.answer_days) ~= "number" or r.referral.answer_days < 1))
      or (r.referral.accepts_from ~= nil and not is_string_list(r.referral.accepts_from))) then
    bad("referral must be {answer_days = n, accepts_from = {program ids}}: how this program receives referrals")
  end
  if r.lookup ~= nil and type(r.lookup) ~= "function" then
    bad("lookup must be a function(person, case, ctx) run before a case opens (sarye.http allowed)")
  end
  if r.eligibility ~= nil and type(r.eligibility) ~= "function" then
    bad("eligibility must be a function(person, case, ctx) returning true or false, reason")
  end
  each_entry(r, "case_types", "a table of id -> {label, lead}", bad, function(k, t)
    if type(t) ~= "table" or type(t.label) ~= "string" or type(t.lead) ~= "string" then
      bad("case_types.%s must be {label = string, lead = org type}", tostring(k))
    end
  end)
  -- The eligibility facts a program reads (person.eligibility[key]), each
  -- with what it means, so that a client can ask for them.
  each_entry(r, "facts", "a table of fact key -> meaning", bad, function(k, m)
    if type(k) ~= "string" or not match(k, "^[a-z][a-z0-9_]*$") or type(m) ~= "string" then
      bad("facts: '%s' must be a lower_snake_case key with its meaning as a string", tostring(k))
    end
  end)
  if r.waitlist ~= nil and (type(r.waitlist) ~= "table"
      or (r.waitlist.priority ~= nil and type(r.waitlist.priority) ~= "function")
      or (r.waitlist.offer_days ~= nil and (type(r.waitlist.offer_days) ~= "number" or r.waitlist.offer_days < 1
                                            or r.waitlist.offer_days % 1 ~= 0))) then
    bad("waitlist must be {priority = function(case, entry, ctx) -> number, reason; offer_days = n}")
  end
  return ok
end

-- Validates the parts shared by a program and a region overlay. `uses` is
-- the program's set of stages.
local function check_rules(pid, file, where, r, uses)
  local ok = true
  local function bad(msg, ...) add_error(pid, file, fmt(msg, ...)); ok = false end
  local function stage_ok(s, what)
    if not STAGE_INDEX[s] then
      bad("%s: '%s' is not a standard stage", what, tostring(s))
    elseif uses and not uses[s] then
      bad("%s: stage '%s' is not used by program '%s'", what, s, where)
    end
  end
  each_entry(r, "labels", "a table", bad, function(s, l)
    stage_ok(s, "labels")
    if type(l) ~= "string" then bad("labels.%s must be a string", tostring(s)) end
  end)
  each_entry(r, "transitions", "a table", bad, function(from, tos)
    stage_ok(from, "transitions")
    if type(tos) ~= "table" then bad("transitions.%s must be a list", tostring(from)) return end
    for _, to in ipairs(tos) do stage_ok(to, "transitions." .. tostring(from)) end
  end)
  each_entry(r, "guards", "a table", bad, function(key, fn)
    local from, to = match(tostring(key), "^([%w_*]+)%->([%w_]+)$")
    if not from then bad("guards: key '%s' must be 'from->to' or '*->to'", tostring(key)) return end
    if from ~= "*" then stage_ok(from, "guards") end
    stage_ok(to, "guards")
    ok = check_fn(pid, file, "guards['" .. key .. "']", fn) and ok
  end)
  each_entry(r, "hooks", "a table", bad, function(phase, list)
    if phase ~= "enter" and phase ~= "leave" then
      bad("hooks.%s: only 'enter' and 'leave' hooks exist", tostring(phase))
    elseif type(list) ~= "table" then bad("hooks.%s must be a table", phase)
    else
      for s, fn in pairs(list) do
        stage_ok(s, "hooks." .. phase)
        ok = check_fn(pid, file, fmt("hooks.%s.%s", phase, tostring(s)), fn) and ok
      end
    end
  end)
  each_entry(r, "prepare", "a table of stage -> function", bad, function(s, fn)
    stage_ok(s, "prepare")
    ok = check_fn(pid, file, "prepare." .. tostring(s), fn) and ok
  end)
  each_entry(r, "deadlines", "a table", bad, function(kind, d)
    if type(kind) ~= "string" or not match(kind, "^[a-z][a-z0-9_]*$") then
      bad("deadlines: '%s' is not a deadline kind (lower_snake_case)", tostring(kind)) return
    end
    if type(d) ~= "table" then bad("deadlines.%s must be a table", kind) return end
    stage_ok(d.start, "deadlines." .. kind .. ".start")
    local off = d.offset
    if type(off) ~= "table" or (type(off.days) ~= "number" and type(off.months) ~= "number") then
      bad("deadlines.%s.offset must be {days = n} or {months = n}", kind)
    end
    local stop = d.stop
    if type(stop) == "string" then stop = { stop } end
    if stop ~= nil then
      if type(stop) ~= "table" then bad("deadlines.%s.stop must be a stage or a list", kind)
      else for _, s in ipairs(stop) do stage_ok(s, "deadlines." .. kind .. ".stop") end end
    end
    if d.label ~= nil and type(d.label) ~= "string" then bad("deadlines.%s.label must be a string", kind) end
  end)
  ok = check_casework(pid, file, r) and ok
  return ok
end

local function check_tests(pid, file, tests)
  if tests == nil then return true end
  if type(tests) ~= "table" then add_error(pid, file, "tests must be a list"); return false end
  for i, t in ipairs(tests) do
    if type(t) ~= "table" or type(t.name) ~= "string" or type(t.run) ~= "function" then
      add_error(pid, file, fmt("tests[%d] must be {name = string, run = function(t) ... end}", i))
      return false
    end
  end
  return true
end

local function check_program(p, file)
  local ok = true
  if type(p.name) ~= "string" then add_error(p.id, file, "name must be a string (the program's Korean name)"); ok = false end
  if type(p.stages) ~= "table" or #p.stages == 0 then
    add_error(p.id, file, "stages must be a non-empty list of {id = standard stage, label = local name}")
    return false
  end
  local uses, order, last = {}, {}, 0
  for i, s in ipairs(p.stages) do
    if type(s) ~= "table" or type(s.id) ~= "string" or type(s.label) ~= "string" then
      add_error(p.id, file, fmt("stages[%d] must be {id = standard stage, label = string}", i)); ok = false
    elseif not STAGE_INDEX[s.id] then
      add_error(p.id, file, fmt("stages[%d]: '%s' is not a standard stage", i, s.id)); ok = false
    elseif uses[s.id] then
      add_error(p.id, file, fmt("stages[%d]: '%s' is listed twice", i, s.id)); ok = false
    elseif STAGE_INDEX[s.id] < last then
      add_error(p.id, file, fmt("stages[%d]: '%s' comes before '%s' in the standard process", i, s.id, STAGES[last])); ok = false
    else
      uses[s.id] = s; order[#order + 1] = s.id; last = STAGE_INDEX[s.id]
    end
  end
  if not ok then return false end
  if type(p.transitions) ~= "table" then add_error(p.id, file, "transitions must be a table"); return false end
  ok = check_rules(p.id, file, p.id, p, uses) and ok
  if p.covers ~= nil then
    local good = type(p.covers) == "table"
    for _, c in ipairs(good and p.covers or {}) do
      if type(c) ~= "table" or type(c.name) ~= "string" or type(c.why) ~= "string" then good = false end
    end
    if not good then
      add_error(p.id, file, "covers must be a list of {name = \"<program of the overview>\", why = \"...\"}: what this program serves besides its own name, and why"); ok = false
    end
  end
  if p.reopen_to ~= nil then
    if type(p.reopen_to) ~= "table" then add_error(p.id, file, "reopen_to must be a list of stages"); ok = false
    else for _, s in ipairs(p.reopen_to) do
      if not uses[s] then add_error(p.id, file, fmt("reopen_to: stage '%s' is not used by the program", tostring(s))); ok = false end
    end end
  end
  p._uses, p._order = uses, order
  return ok
end

local function check_region(r, file)
  local ok = true
  if type(r.name) ~= "string" then add_error(r.id, file, "name must be a string (the authority's Korean name)"); ok = false end
  if type(r.regions) ~= "table" or #r.regions == 0 then
    add_error(r.id, file, "regions must be a non-empty list of region codes, e.g. {'11590'}"); ok = false
  else
    for _, code in ipairs(r.regions) do
      if type(code) ~= "string" or not match(code, "^%d+$") then
        add_error(r.id, file, fmt("regions: '%s' is not a numeric region code", tostring(code))); ok = false
      end
    end
  end
  if r.programs ~= nil and type(r.programs) ~= "table" then
    add_error(r.id, file, "programs must be a table of program id -> overlay"); ok = false
  end
  return ok
end

-- A plugin's rules are what it returned while loading: a deep copy (without
-- metatables) is kept, so code that later changes its own tables cannot
-- register or alter guards and hooks at run time.
local function snapshot(v, depth, seen)
  if type(v) ~= "table" then return v end
  depth, seen = depth or 0, seen or {}
  if depth > 16 then error("plugin table nested too deeply (or cyclic)", 0) end
  if seen[v] then error("plugin table is cyclic", 0) end
  seen[v] = true
  local c = {}
  for k, x in next, v do c[k] = snapshot(x, depth + 1, seen) end
  seen[v] = nil
  return c
end

-- An agency connector: how messages to it look, and what its answers mean.
local AGENCY_MESSAGES = { referral = true, answer = true, progress = true }
local AGENCY_STATUSES = { received = true, in_progress = true, rejected = true, completed = true }
local function check_agency(p, file)
  local ok = true
  if type(p.name) ~= "string" then add_error(p.id, file, "name must be a string (the agency's Korean name)"); ok = false end
  if p.direction ~= "two_way" and p.direction ~= "inbound" then
    add_error(p.id, file, "direction must be 'two_way' or 'inbound' (one-way agencies only refer to local government)"); ok = false
  end
  if p.messages ~= nil then
    if type(p.messages) ~= "table" then add_error(p.id, file, "messages must be a table of kind -> function"); ok = false
    else for k, fn in pairs(p.messages) do
      if not AGENCY_MESSAGES[k] then add_error(p.id, file, fmt("messages.%s: kinds are referral, answer, progress", tostring(k))); ok = false
      else ok = check_fn(p.id, file, "messages." .. k, fn) and ok end
    end end
  end
  if p.statuses ~= nil then
    if type(p.statuses) ~= "table" then add_error(p.id, file, "statuses must map the agency's codes to received, in_progress, rejected, completed"); ok = false
    else for code, st in pairs(p.statuses) do
      if not AGENCY_STATUSES[st] then add_error(p.id, file, fmt("statuses.%s: '%s' is not received, in_progress, rejected or completed", tostring(code), tostring(st))); ok = false end
    end end
  end
  return ok
end


local function sorted_keys(t)
  local ks = array({})
  for k in pairs(t) do ks[#ks + 1] = k end
  sort(ks)
  return ks
end

-- Declared here, defined below: the effective rules of a (program, region).
local effective, effective_cache = nil, {}

local FOLDER_OF = { program = "programs", region = "regions", agency = "agencies" }
local LOAD_ALLOWANCE_MS = 100 -- CPU for one file's top-level code
local TOP_LEVEL_ADVICE = "it runs again in every VM the server builds; build tables and functions there, do the work inside rules"

-- A program built on another (extends = "integrated"): maps of rules merge
-- key by key, the extending program's keys winning; anything else it
-- defines replaces the base's. Tests are the extending program's own.
local MERGED_MAPS = { labels = true, transitions = true, guards = true, records = true, instruments = true,
                      on_record = true, closure_reasons = true, case_types = true, deadlines = true,
                      prepare = true, facts = true }
local OWN = { id = true, kind = true, version = true, api = true, name = true, tests = true, extends = true,
              _file = true, _uses = true, _order = true }
local function extend_program(base, child)
  local m = {}
  for k, v in pairs(base) do if not OWN[k] then m[k] = v end end
  for k, v in pairs(child) do
    if MERGED_MAPS[k] and type(v) == "table" and type(m[k]) == "table" then
      local t = copy_shallow(m[k])
      for kk, vv in pairs(v) do t[kk] = vv end
      m[k] = t
    elseif k == "hooks" and type(v) == "table" and type(m.hooks) == "table" then
      m.hooks = { enter = copy_shallow(m.hooks.enter or {}), leave = copy_shallow(m.hooks.leave or {}) }
      for ph, hs in pairs(v) do
        if type(hs) == "table" and m.hooks[ph] then for st, fn in pairs(hs) do m.hooks[ph][st] = fn end
        else m.hooks[ph] = hs end
      end
    else
      m[k] = v
    end
  end
  m.extends = child.extends
  return m
end

-- Query names are known when the set loads: every ctx.query("name" ...)
-- written in a file is checked against the host's queries, at its line.
local function check_query_names(plugin, file, text)
  local line = 1
  for l in gmatch(text .. "\n", "([^\n]*)\n") do
    for name in gmatch(l, "[%.:]query%s*%(%s*[\"']([^\"']*)[\"']") do
      if not QUERIES[name] then add_error(plugin, file, unknown_query(name), line) end
    end
    line = line + 1
  end
end

local function base_name(path) return match(path, "([^/]+)%.lua$") end

-- Loads the files { {path=, text=}, ... }: the chunks of precompiled
-- (path -> function compiled by the validating VM from this same text) or
-- the text itself. Fills programs/regions/agencies; returns the errors
-- (empty when the set is valid, tests not yet run) and the compiled chunks.
function M.load_set(files, precompiled)
  programs, regions, region_of_code, plugin_list, errors, agencies = {}, {}, {}, {}, array({}), {}
  effective_cache = {}
  texts = {}
  for _, f in ipairs(files) do texts[f.path] = f.text end
  local compiled = {}
  local seen, extending = {}, {}
  for _, f in ipairs(files) do
    local fn, lerr = precompiled and precompiled[f.path]
    local checked = fn ~= nil -- compiled (and its text checked) by the validating VM
    if not fn then fn, lerr = C.load_text(f.text, "=" .. f.path) end
    compiled[f.path] = fn
    if not fn then
      add_error(base_name(f.path), f.path, lerr)
    else
      setfenv(fn, plugin_env())
      C.set_current(f.path, "?")
      phase = "load"
      -- Top-level code runs again in every VM the server builds (on a
      -- request's thread): it must be cheap, whatever the machine. Past
      -- its allowance it is stopped (an error caught here), so it is this
      -- file that is refused, not the set's whole load killed later on.
      C.top_level(LOAD_ALLOWANCE_MS)
      local ok, p = pcall(fn)
      local spent, stopped = C.top_level()
      C.set_current(nil, nil)
      if stopped then
        ok, p = false, fmt("the file's top-level code took more than %d ms of CPU, its CPU budget at load: %s",
                           LOAD_ALLOWANCE_MS, TOP_LEVEL_ADVICE)
      elseif ok and spent > LOAD_ALLOWANCE_MS then
        ok, p = false, fmt("the file's top-level code took %d ms of CPU (at most %d): %s", spent, LOAD_ALLOWANCE_MS,
                           TOP_LEVEL_ADVICE)
      end
      if ok and type(p) == "table" then ok, p = pcall(snapshot, p) end
      if not ok then add_error(base_name(f.path), f.path, p)
      elseif type(p) ~= "table" then add_error(base_name(f.path), f.path, "the file must return a table (the plugin)")
      else
        local id = p.id
        local expected_kind = match(f.path, "^(%w+)/") -- programs/, regions/, agencies/
        if type(id) ~= "string" or not match(id, "^[%w][%w_%-]*$") then
          add_error(tostring(id), f.path, "id must be a string of letters, digits, '_' or '-'")
        elseif not is_semver(p.version) then
          add_error(id, f.path, fmt("version must be semver (e.g. '1.0.0'), not '%s'", tostring(p.version)))
        elseif p.api ~= API_VERSION then
          add_error(id, f.path, fmt("api must be %d (the host contract version), not %s", API_VERSION, tostring(p.api)))
        elseif p.kind ~= "program" and p.kind ~= "region" and p.kind ~= "agency" then
          add_error(id, f.path, "kind must be 'program', 'region' or 'agency'")
        elseif expected_kind and expected_kind ~= FOLDER_OF[p.kind] then
          add_error(id, f.path, fmt("a %s plugin belongs under %s/, not %s/", p.kind, FOLDER_OF[p.kind], expected_kind))
        elseif seen[p.kind .. ":" .. id] then
          add_error(id, f.path, fmt("duplicate %s id '%s' (also in %s)", p.kind, id, seen[p.kind .. ":" .. id]))
        else
          seen[p.kind .. ":" .. id] = f.path
          local contract_ok = check_contract(p, f.path) -- before the host marks the table
          p._file = f.path
          -- A serving VM loads chunks the validating VM compiled from this
          -- same text, and checked: scanning every line again in every
          -- thread's VM cost most of its build.
          if not checked then check_query_names(id, f.path, f.text) end
          local valid
          if p.kind == "program" and p.extends ~= nil then
            -- checked once merged with the program it extends (below)
            valid = check_tests(id, f.path, p.tests)
            if valid then extending[#extending + 1] = p end
            valid = false
          elseif p.kind == "program" then valid = check_program(p, f.path) and check_tests(id, f.path, p.tests)
          elseif p.kind == "region" then valid = check_region(p, f.path) and check_tests(id, f.path, p.tests)
          else valid = check_agency(p, f.path) and check_tests(id, f.path, p.tests) end
          if valid and contract_ok then
            if p.kind == "program" then programs[id] = p elseif p.kind == "region" then regions[id] = p
            else agencies[id] = p end
            plugin_list[#plugin_list + 1] = p
          end
        end
      end
    end
  end
  -- Programs that extend another: the base's rules, overridden key by key.
  for _, p in ipairs(extending) do
    local base = programs[p.extends]
    if type(p.extends) ~= "string" or not base then
      add_error(p.id, p._file, fmt("extends: '%s' is not a loaded program (a program extends one that does not extend another)",
                                   tostring(p.extends)))
    else
      local merged = extend_program(base, p)
      if check_program(merged, p._file) then
        programs[p.id] = merged
        plugin_list[#plugin_list + 1] = merged
      end
    end
  end
  -- Region overlays: known programs only, stages the program uses, one
  -- region plugin per code.
  for rid, r in pairs(regions) do
    for _, code in ipairs(r.regions) do
      if region_of_code[code] then
        add_error(rid, r._file, fmt("region code %s is also claimed by '%s'", code, region_of_code[code].id))
      else region_of_code[code] = r end
    end
    for pid, ov in pairs(r.programs or {}) do
      local prog = programs[pid]
      if not prog then
        add_error(rid, r._file, fmt("programs.%s: overlay of an unknown program", tostring(pid)))
      elseif type(ov) ~= "table" then
        add_error(rid, r._file, fmt("programs.%s must be a table", pid))
      else
        check_rules(rid, r._file, pid, ov, prog._uses)
      end
    end
  end
  return errors, compiled
end

---------------------------------------------------------------------------
-- Effective rules: core < program < region.
---------------------------------------------------------------------------

local function layer_list(prog, region)
  local l = { { plugin = prog.id, version = prog.version, rules = prog } }
  local ov = region and region.programs and region.programs[prog.id]
  if ov then l[2] = { plugin = region.id, version = region.version, rules = ov } end
  return l
end

effective = function(pid, code)
  local key = tostring(pid) .. "@" .. tostring(code)
  local e = effective_cache[key]
  if e ~= nil then return e or nil end
  local prog = programs[pid]
  if not prog then effective_cache[key] = false; return nil end
  local region = code and region_of_code[code] or nil
  e = { program = prog, region = region, uses = prog._uses, order = prog._order,
        labels = {}, transitions = {}, guards = {}, hooks = { enter = {}, leave = {} }, prepare = {},
        records = {}, instruments = {}, on_record = {}, closure_reasons = {}, case_types = {}, eligibility = {},
        lookup = {}, facts = {}, waitlist = { priority = {}, offer_days = nil },
        deadlines = {}, layers = layer_list(prog, region) }
  for _, s in ipairs(prog.stages) do e.labels[s.id] = s.label end
  for _, layer in ipairs(e.layers) do
    local r = layer.rules
    for s, l in pairs(r.labels or {}) do e.labels[s] = l end
    for from, tos in pairs(r.transitions or {}) do
      local set = e.transitions[from] or {}
      e.transitions[from] = set
      for _, to in ipairs(tos) do set[to] = true end
    end
    for key2, fn in pairs(r.guards or {}) do
      local list = e.guards[key2] or {}
      e.guards[key2] = list
      list[#list + 1] = { plugin = layer.plugin, version = layer.version, fn = fn }
    end
    for ph, hs in pairs(r.hooks or {}) do
      for s, fn in pairs(hs) do
        local list = e.hooks[ph][s] or {}
        e.hooks[ph][s] = list
        list[#list + 1] = { plugin = layer.plugin, version = layer.version, fn = fn }
      end
    end
    for k, spec in pairs(r.records or {}) do
      local m = e.records[k] or { required = {}, validate = {} }
      e.records[k] = m
      for _, f in ipairs(spec.required or {}) do m.required[#m.required + 1] = { field = f, plugin = layer.plugin } end
      if spec.validate then m.validate[#m.validate + 1] = { plugin = layer.plugin, version = layer.version, fn = spec.validate } end
    end
    for k, inst in pairs(r.instruments or {}) do e.instruments[k] = inst end
    for k, fn in pairs(r.on_record or {}) do
      local list = e.on_record[k] or {}
      e.on_record[k] = list
      list[#list + 1] = { plugin = layer.plugin, version = layer.version, fn = fn }
    end
    for k, l in pairs(r.closure_reasons or {}) do e.closure_reasons[k] = l end
    for k, t in pairs(r.case_types or {}) do e.case_types[k] = t end
    for k, m in pairs(r.facts or {}) do e.facts[k] = m end
    if r.waitlist then
      if r.waitlist.priority then
        local list = e.waitlist.priority
        list[#list + 1] = { plugin = layer.plugin, version = layer.version, fn = r.waitlist.priority }
      end
      if r.waitlist.offer_days then e.waitlist.offer_days = r.waitlist.offer_days; e.waitlist.offer_plugin = layer.plugin end
    end
    if r.referral then e.referral = r.referral end
    if r.eligibility then
      e.eligibility[#e.eligibility + 1] = { plugin = layer.plugin, version = layer.version, fn = r.eligibility }
    end
    if r.lookup then
      e.lookup[#e.lookup + 1] = { plugin = layer.plugin, version = layer.version, fn = r.lookup }
    end
    for st, fn in pairs(r.prepare or {}) do
      local list = e.prepare[st] or {}
      e.prepare[st] = list
      list[#list + 1] = { plugin = layer.plugin, version = layer.version, fn = fn }
    end
    for kind, d in pairs(r.deadlines or {}) do
      e.deadlines[kind] = { plugin = layer.plugin, start = d.start, offset = d.offset,
                            stop = type(d.stop) == "string" and { d.stop } or d.stop or {},
                            label = d.label or kind }
    end
  end
  e.deadline_kinds = sorted_keys(e.deadlines)
  effective_cache[key] = e
  return e
end

local function allowed_from(e, from)
  local list = {}
  for _, s in ipairs(e.order) do if e.transitions[from] and e.transitions[from][s] then list[#list + 1] = s end end
  return array(list)
end

-- Public description of the effective rules (GET /v1/programs/{id}).
function M.describe(pid, code)
  local e = effective(pid, code)
  if not e then return nil end
  local stages = array({})
  for _, s in ipairs(e.order) do
    stages[#stages + 1] = { id = s, label = e.labels[s], standard_index = STAGE_INDEX[s] }
  end
  local transitions = {}
  for _, s in ipairs(e.order) do transitions[s] = allowed_from(e, s) end
  local deadlines = array({})
  for _, k in ipairs(sorted_keys(e.deadlines)) do
    local d = e.deadlines[k]
    deadlines[#deadlines + 1] = { kind = k, label = d.label, start = d.start, stop = array(copy_shallow(d.stop)),
                                  offset = copy_shallow(d.offset), plugin = d.plugin }
  end
  local guards = array({})
  for _, k in ipairs(sorted_keys(e.guards)) do
    for _, g in ipairs(e.guards[k]) do guards[#guards + 1] = { on = k, plugin = g.plugin } end
  end
  local layers = array({})
  for _, l in ipairs(e.layers) do layers[#layers + 1] = { plugin = l.plugin, version = l.version } end
  -- What a client builds its forms from: the facts eligibility reads (with
  -- their meaning), the instruments, closure reasons and case types, what
  -- each record must hold, and how the waitlist treats the program's cases.
  local facts = array({})
  for _, k in ipairs(sorted_keys(e.facts)) do facts[#facts + 1] = { key = k, meaning = e.facts[k] } end
  local instruments = array({})
  for _, k in ipairs(sorted_keys(e.instruments)) do
    local i = e.instruments[k]
    instruments[#instruments + 1] = { id = k, domains = array(copy_shallow(i.domains)),
                                      scale = i.scale and { min = i.scale.min, max = i.scale.max } or nil,
                                      all_domains = i.all_domains or false }
  end
  local reasons = array({})
  for _, k in ipairs(sorted_keys(e.closure_reasons)) do reasons[#reasons + 1] = { id = k, label = e.closure_reasons[k] } end
  local case_types = array({})
  for _, k in ipairs(sorted_keys(e.case_types)) do
    local t = e.case_types[k]
    case_types[#case_types + 1] = { id = k, label = t.label, lead = t.lead }
  end
  local records = array({})
  for _, k in ipairs(sorted_keys(e.records)) do
    local req = array({})
    for _, r in ipairs(e.records[k].required) do req[#req + 1] = r.field end
    records[#records + 1] = { kind = k, required = req, validated = #e.records[k].validate > 0 }
  end
  local wl_plugins = array({})
  for _, g in ipairs(e.waitlist.priority) do wl_plugins[#wl_plugins + 1] = g.plugin end
  local covers = array({})
  for _, c in ipairs(e.program.covers or {}) do covers[#covers + 1] = { name = c.name, why = c.why } end
  return {
    id = e.program.id, name = e.program.name, version = e.program.version, extends = e.program.extends,
    region = code, region_plugin = e.region and e.region.id or nil,
    first_stage = e.order[1], stages = stages, transitions = transitions,
    guards = guards, deadlines = deadlines, layers = layers,
    eligibility = { rules = #e.eligibility > 0, facts = facts },
    instruments = instruments, closure_reasons = reasons, case_types = case_types, records = records,
    waitlist = { offer_days = e.waitlist.offer_days or 7, priority_plugins = wl_plugins },
    covers = covers,
  }
end

-- Summary of the loaded set (GET /v1/programs, GET /v1/admin/plugins).
function M.summary()
  local out = { programs = array({}), plugins = array({}) }
  for _, id in ipairs(sorted_keys(programs)) do out.programs[#out.programs + 1] = M.describe(id, nil) end
  for _, p in ipairs(plugin_list) do
    local entry = { id = p.id, kind = p.kind, version = p.version, file = p._file, name = p.name }
    if p.kind == "region" then entry.regions = array(copy_shallow(p.regions)) end
    out.plugins[#out.plugins + 1] = entry
  end
  out.decls = M.decls()
  return out
end

-- The labels of a program's stages under a region's overlay.
function M.labels(pid, code)
  local e = effective(pid, code)
  return e and e.labels or nil
end

---------------------------------------------------------------------------
-- Evaluating rules: what guards, hooks and record rules are called with.
---------------------------------------------------------------------------

local function copy_deep(v, depth)
  if type(v) ~= "table" then return v end
  depth = (depth or 0) + 1
  if depth > 32 then error("value nested too deeply", 0) end
  local c = {}
  for k, x in pairs(v) do c[k] = copy_deep(x, depth) end
  return c
end

-- ctx: what plugin functions get besides their arguments. Every function
-- of it says which phases it works in (HOST_CALLS); tests answer the views
-- from fixtures (a.person, a.history, a.queries). A ctx function is made
-- the first time a plugin reads it (most rules read one or two): CTX_FUNS
-- makes each from the call's state, kept beside the ctx, never in it.
local CTX_STATE = setmetatable({}, { __mode = "k" })
local CTX_FUNS = {
  person = function(a)
    return function()
      host_call("ctx.person")
      if a.person ~= nil then return copy_deep(a.person) end
      return C.person(a.case.person_id)
    end
  end,
  history = function(a)
    return function()
      host_call("ctx.history")
      if a.history ~= nil then return copy_deep(a.history) end
      return C.history(a.case.id)
    end
  end,
  query = function(a)
    return function(name, params)
      host_call("ctx.query")
      if not QUERIES[name] then error(unknown_query(name), 2) end
      if params ~= nil and type(params) ~= "table" then error("ctx.query: params must be a table", 2) end
      if a.queries then return copy_deep(a.queries[name] or {}) end -- test fixtures
      return C.query(name, params or {})
    end
  end,
  label = function(a, e) return function(stage) return e.labels[stage] end end,
  set_deadline = function(a, e, effects)
    return function(kind, due, label)
      host_call("ctx.set_deadline")
      if type(kind) ~= "string" or not match(kind, "^[a-z][a-z0-9_]*$") then error("deadline kind must be lower_snake_case", 2) end
      if not C.date_valid(due) then error("deadline due date must be YYYY-MM-DD", 2) end
      if #effects.set >= C.max_deadlines then
        error("ctx.set_deadline: a decision sets at most " .. C.max_deadlines .. " deadlines", 2)
      end
      effects.set[#effects.set + 1] = { kind = kind, due_on = due, label = label and tostring(label) or kind,
                                        plugin = C.current() }
    end
  end,
  clear_deadline = function(a, e, effects)
    return function(kind)
      host_call("ctx.clear_deadline")
      if #effects.clear >= C.max_deadlines then
        error("ctx.clear_deadline: a decision clears at most " .. C.max_deadlines .. " deadlines", 2)
      end
      effects.clear[#effects.clear + 1] = tostring(kind)
    end
  end,
  -- A message to an agency, written to the outbox in the write that applies
  -- the verdict, and delivered after it.
  enqueue = function(a, e, effects)
    return function(agency, payload)
      host_call("ctx.enqueue")
      if type(agency) ~= "string" or not agencies[agency] then
        error("ctx.enqueue: '" .. tostring(agency) .. "' is not an agency with a plugin", 2)
      end
      if type(payload) ~= "table" then error("ctx.enqueue: the payload must be a table", 2) end
      if #effects.outbox >= C.max_messages then
        error("ctx.enqueue: a decision writes at most " .. C.max_messages .. " messages", 2)
      end
      local plugin, version = C.current()
      effects.outbox[#effects.outbox + 1] = { agency = agency, payload = copy_deep(payload),
                                              plugin = plugin, version = version }
    end
  end,
  move = function(a, e, effects)
    return function(stage)
      host_call("ctx.move")
      if not STAGE_INDEX[stage] then error("ctx.move: '" .. tostring(stage) .. "' is not a standard stage", 2) end
      effects.move = stage
    end
  end,
  end_case = function(a, e, effects)
    return function()
      host_call("ctx.end_case")
      effects.end_case = true
    end
  end,
  -- Hands the case to another organisation, which then leads it (sees and
  -- works it): ctx.set_lead(org_id, reason), or ctx.set_lead{org = id?,
  -- type = org type?, reason = "..."} (type alone: the one organisation of
  -- that type in the case's region, if there is exactly one).
  set_lead = function(a, e, effects)
    return function(org, reason)
      host_call("ctx.set_lead")
      local spec = type(org) == "table" and org or { org = org, reason = reason }
      if spec.org ~= nil and (type(spec.org) ~= "string" or spec.org == "") then
        error("ctx.set_lead: org must be an organisation id", 2)
      end
      if spec.type ~= nil and type(spec.type) ~= "string" then error("ctx.set_lead: type must be an org type", 2) end
      if spec.org == nil and spec.type == nil then error("ctx.set_lead: give an organisation or an org type", 2) end
      effects.lead = { org = spec.org, type = spec.type, reason = spec.reason and tostring(spec.reason) or nil,
                       plugin = C.current() }
    end
  end,
  consent_allows = function(a)
    return function(party)
      host_call("ctx.consent_allows")
      if a.consents ~= nil then return a.consents[tostring(party)] == true end -- test fixtures
      return C.consent_allows(a.case.person_id, tostring(party))
    end
  end,
}
local CTX_MT = {
  __index = function(ctx, k)
    local make, st = CTX_FUNS[k], CTX_STATE[ctx]
    if not make or not st then return nil end
    local f = make(st[1], st[2], st[3])
    rawset(ctx, k, f)
    return f
  end,
  __metatable = false, -- shared by every ctx: no plugin may reach it
}

local function new_ctx(a, e, effects)
  local c = a.case
  local ctx = setmetatable({ today = a.today, region = c.region, program = c.program,
                             actor = copy_deep(a.actor or {}) }, CTX_MT)
  CTX_STATE[ctx] = { a, e, effects }
  return ctx
end

local function new_effects() return { set = array({}), clear = array({}), outbox = array({}) } end

-- Calls one plugin function in a phase; a plugin error becomes a result,
-- not a crash.
-- The stack of a failed plugin call is taken where it failed, by a message
-- handler that runs with the hooks off: it only keeps the error object and
-- asks C for the traceback (it never calls tostring, which could run a
-- plugin's __tostring with nothing to stop it).
local failed_with
local function on_plugin_error(err)
  failed_with = err
  return C.traceback(type(err) == "string" and err or nil)
end

local function call_plugin(g, ph, ...)
  local before = phase
  phase = ph
  C.set_current(g.plugin, g.version)
  failed_with = nil
  local res = { xpcall(g.fn, on_plugin_error, ...) }
  C.set_current(nil, nil)
  phase = before
  if not res[1] then -- the error as raised, and the stack (for the log) apart
    local trace = res[2]
    res = { false, failed_with ~= nil and failed_with or trace }
    res.trace = type(trace) == "string" and trace or nil
  end
  failed_with = nil
  return res
end

-- Where plugin code failed: the position in the message, unless that is
-- the host's (an error raised inside host.lua), then the innermost frame of
-- plugin code on the stack.
local function plugin_position(msg, trace)
  local file, line, text = match(msg, "^([^:\n]+%.lua):(%d+): (.*)$")
  if file == "host.lua" then file, line = nil, nil end
  if not file and trace then
    for f, l in gmatch(trace, "\n%s*([^:\n%s]+%.lua):(%d+):") do
      if f ~= "host.lua" then file, line = f, l break end
    end
  end
  return file, tonumber(line), text or msg
end

-- A failed plugin function: which plugin, where in its file, and why, on
-- one line. The stack (`trace`) is for the server's log, never a client.
-- r is call_plugin's result, or a message of the host's about a plugin.
local function plugin_failure(g, r)
  local kind = C.memory_exceeded() and "plugin_memory" or "plugin_error"
  local err, trace = r, nil
  if type(r) == "table" and r[1] == false then err, trace = r[2], r.trace end
  local file, line, text = plugin_position(tostring(err), trace)
  text = match(text, "^([^\n]*)") -- its first line: a multi-line message is cut here
  return { ok = false, kind = kind, plugin = g.plugin, version = g.version, message = text,
           file = file, line = line, trace = trace }
end

local function refused(g, reason, rule)
  return { ok = false, kind = "refused", plugin = g.plugin, version = g.version, rule = rule,
           reason = reason ~= nil and tostring(reason) or "refused by a rule" }
end

-- Declared deadlines of a move into `to`: started on entering `start`,
-- stopped on entering a `stop` stage.
local function declared_deadlines(e, to, today, effects)
  for _, k in ipairs(e.deadline_kinds) do
    local d = e.deadlines[k]
    for _, s in ipairs(d.stop) do if s == to then effects.clear[#effects.clear + 1] = k end end
    if d.start == to then
      local due = today
      if d.offset.months then due = C.date_add_months(due, d.offset.months) end
      if d.offset.days then due = C.date_add_days(due, d.offset.days) end
      effects.set[#effects.set + 1] = { kind = k, due_on = due, label = d.label, plugin = d.plugin }
    end
  end
end

-- A move: a = { case, to, reopen, data, note, prepared, today, actor }
-- (tests add person, history, queries fixtures).
function M.transition(a)
  local c = a.case
  local e = effective(c.program, c.region)
  if not e then return { ok = false, kind = "unknown_program" } end
  local from, to = c.stage, a.to
  if not e.uses[to] then
    return { ok = false, kind = "stage_unused", allowed = allowed_from(e, from) }
  end
  if a.reopen then
    local targets = e.program.reopen_to or {}
    local okto = false
    if #targets == 0 then okto = STAGE_INDEX[to] < STAGE_INDEX.closure
    else for _, s in ipairs(targets) do if s == to then okto = true end end end
    if not okto then
      local list = array({})
      if #targets == 0 then
        for _, s in ipairs(e.order) do if STAGE_INDEX[s] < STAGE_INDEX.closure then list[#list + 1] = s end end
      else for _, s in ipairs(targets) do list[#list + 1] = s end end
      return { ok = false, kind = "not_allowed", allowed = list }
    end
  elseif not (e.transitions[from] and e.transitions[from][to]) then
    return { ok = false, kind = "not_allowed", allowed = allowed_from(e, from) }
  end

  local effects = new_effects()
  local input = { data = copy_deep(a.data or {}), note = a.note, reopen = a.reopen or false,
                  prepared = copy_deep(a.prepared or {}) }
  local ctx = new_ctx(a, e, effects)
  for _, key in ipairs({ from .. "->" .. to, "*->" .. to }) do
    for _, g in ipairs(e.guards[key] or {}) do
      local r = call_plugin(g, "guard", copy_deep(c), input, ctx)
      if not r[1] then return plugin_failure(g, r) end
      if r[2] ~= true then
        if r[2] ~= false then
          return plugin_failure(g, fmt("guards['%s'] must return true, or false and a reason (it returned %s)",
                                       key, tostring(r[2])))
        end
        return refused(g, r[3], "guard")
      end
    end
  end

  local calls = {}
  for _, h in ipairs(e.hooks.leave[from] or {}) do calls[#calls + 1] = h end
  for _, h in ipairs(e.hooks.enter[to] or {}) do calls[#calls + 1] = h end
  for _, h in ipairs(calls) do
    local r = call_plugin(h, "hook", copy_deep(c), input, ctx)
    if not r[1] then return plugin_failure(h, r) end
  end
  declared_deadlines(e, to, a.today, effects)
  return { ok = true, label = e.labels[to], effects = effects }
end

local function invalid(field, reason, plugin, allowed)
  return { ok = false, kind = "invalid", field = field, reason = reason, plugin = plugin or "core", allowed = allowed }
end

local function check_instrument(e, subkind, rec)
  local inst = e.instruments[subkind]
  if not inst then return invalid("kind", fmt("'%s' is not an assessment instrument of this program", tostring(subkind)),
                                   nil, sorted_keys(e.instruments)) end
  local domains = rec.domains
  if type(domains) ~= "table" then return invalid("domains", "domains must be an object of domain -> {score, note}") end
  local known = {}
  for _, d in ipairs(inst.domains) do known[d] = true end
  for d, v in pairs(domains) do
    if not known[d] then
      return invalid("domains." .. tostring(d), fmt("'%s' is not a domain of %s", tostring(d), subkind), nil, array(copy_shallow(inst.domains)))
    end
    if type(v) ~= "table" then return invalid("domains." .. d, "each domain is an object {score?, note?}") end
    if inst.scale then
      local sc = v.score
      if type(sc) ~= "number" or sc % 1 ~= 0 or sc < inst.scale.min or sc > inst.scale.max then
        return invalid("domains." .. d .. ".score", fmt("score must be an integer from %d to %d", inst.scale.min, inst.scale.max))
      end
    elseif v.score ~= nil then
      return invalid("domains." .. d .. ".score", fmt("%s is not scored", subkind))
    end
  end
  if inst.all_domains then
    for _, d in ipairs(inst.domains) do
      if domains[d] == nil then return invalid("domains." .. d, fmt("%s needs every domain; '%s' is missing", subkind, d)) end
    end
  end
  return nil
end

-- Case-work records: counseling, assessments, plans, services, checks,
-- closure, follow-ups, conferences (and "open"). The core stores them; the
-- rules say what a record must hold, may refuse it, and may answer (a
-- recommendation, the lead organisation), set deadlines, move or end the
-- case. a = { case, kind, subkind?, record, today, actor }
local function evaluate_record(a, e)
  local c = a.case
  local rec = a.record or {}
  local spec = e.records[a.kind]
  for _, req in ipairs(spec and spec.required or {}) do
    local v = rec[req.field]
    if v == nil or v == "" or (type(v) == "table" and next(v) == nil) then
      return invalid(req.field, fmt("%s is required", req.field), req.plugin)
    end
  end
  if a.kind == "assessment" then
    local bad = check_instrument(e, a.subkind, rec)
    if bad then return bad end
  elseif a.kind == "counseling" and rec.case_type ~= nil and next(e.case_types) and not e.case_types[rec.case_type] then
    return invalid("case_type", fmt("'%s' is not a case type", tostring(rec.case_type)), nil, sorted_keys(e.case_types))
  elseif a.kind == "closure" and next(e.closure_reasons) and not e.closure_reasons[rec.reason] then
    return invalid("reason", fmt("'%s' is not a closure reason of this program", tostring(rec.reason)), nil,
                   sorted_keys(e.closure_reasons))
  end
  local effects = new_effects()
  local result = {}
  local ctx = new_ctx(a, e, effects)
  for _, v in ipairs(spec and spec.validate or {}) do
    local r = call_plugin(v, "validate", copy_deep(c), copy_deep(rec), ctx)
    if not r[1] then return plugin_failure(v, r) end
    if r[2] ~= true then
      if r[2] ~= false then
        return plugin_failure(v, fmt("records.%s.validate must return true, or false and a reason (it returned %s)",
                                     a.kind, tostring(r[2])))
      end
      return refused(v, r[3], "validate")
    end
  end
  if a.kind == "counseling" and rec.case_type and e.case_types[rec.case_type] then
    local t = e.case_types[rec.case_type]
    result.case_type = { id = rec.case_type, label = t.label, lead = t.lead }
  elseif a.kind == "closure" then
    result.reason_label = e.closure_reasons[rec.reason]
  end
  if a.kind == "open" then -- deadlines declared to start at the first stage start when the case opens
    for _, k in ipairs(e.deadline_kinds) do
      local d = e.deadlines[k]
      if d.start == e.order[1] then
        local due = a.today
        if d.offset.months then due = C.date_add_months(due, d.offset.months) end
        if d.offset.days then due = C.date_add_days(due, d.offset.days) end
        effects.set[#effects.set + 1] = { kind = k, due_on = due, label = d.label, plugin = d.plugin }
      end
    end
  end
  ctx.result = result
  for _, h in ipairs(e.on_record[a.kind] or {}) do
    local r = call_plugin(h, "on_record", copy_deep(c), copy_deep(rec), ctx)
    if not r[1] then return plugin_failure(h, r) end
    if type(r[2]) == "table" then for k, v in pairs(r[2]) do result[k] = v end end
  end
  local move, end_case = effects.move, effects.end_case or false
  effects.move, effects.end_case = nil, nil
  return { ok = true, result = result, effects = effects, move = move, end_case = end_case }
end

function M.record(a)
  local e = effective(a.case.program, a.case.region)
  if not e then return { ok = false, kind = "unknown_program" } end
  return evaluate_record(a, e)
end

-- Opening a case: who the program is for (each layer's eligibility must
-- answer true), the first stage, and what the rules say on opening (the
-- "open" record: its validation, on_record.open, deadlines that start at
-- the first stage). a = { case, person, lookups, today, actor }
function M.open(a)
  local c = a.case
  local e = effective(c.program, c.region)
  if not e then return { ok = false, kind = "unknown_program" } end
  local ctx = new_ctx(a, e, new_effects())
  ctx.lookups = copy_deep(a.lookups or {})
  for _, g in ipairs(e.eligibility) do
    local r = call_plugin(g, "eligibility", copy_deep(a.person or {}), copy_deep(c), ctx)
    if not r[1] then return plugin_failure(g, r) end
    if r[2] ~= true then
      if r[2] ~= false then
        return plugin_failure(g, fmt("eligibility must return true, or false and a reason (it returned %s)", tostring(r[2])))
      end
      local v = refused(g, r[3], "eligibility")
      if r[3] == nil then v.reason = "not eligible" end
      return v
    end
  end
  c.stage = e.order[1]
  local v = evaluate_record({ case = c, kind = "open", record = a.record or {}, today = a.today, actor = a.actor,
                              person = a.person, history = a.history, queries = a.queries }, e)
  if v.ok then
    v.first_stage = e.order[1]
    v.label = e.labels[e.order[1]]
  end
  return v
end

function M.closure_reasons(pid, code)
  local e = effective(pid, code)
  return e and e.closure_reasons or {}
end

-- How a program receives referrals: { answer_days = n } (core default 14).
function M.referral_rules(pid, code)
  local e = effective(pid, code)
  local r = e and e.referral or {}
  local out = { answer_days = r.answer_days }
  if r.accepts_from then
    out.accepts_from = array(copy_shallow(r.accepts_from))
    out.plugin = e.program.id
  end
  return out
end

-- Where a case waits on a resource's waitlist (seed 003 자원 대기자):
-- each layer's waitlist.priority(case, entry, ctx) answers a number
-- (higher is offered first) and a reason; the numbers add up. offer_days:
-- how long the worker has to answer an offer (the last layer that says).
-- a = { case, entry, today, actor }
function M.waitlist(a)
  local c = a.case
  local e = effective(c.program, c.region)
  if not e then return { ok = false, kind = "unknown_program" } end
  local ctx = new_ctx(a, e, new_effects())
  local total, reasons, plugins = 0, array({}), array({})
  for _, g in ipairs(e.waitlist.priority) do
    local r = call_plugin(g, "validate", copy_deep(c), copy_deep(a.entry or {}), ctx)
    if not r[1] then return plugin_failure(g, r[2]) end
    local n = r[2]
    if n ~= nil and (type(n) ~= "number" or n ~= n or n % 1 ~= 0 or n < -1000 or n > 1000) then
      return plugin_failure(g, fmt("waitlist.priority must return a whole number from -1000 to 1000 (and a reason), not %s",
                                   tostring(n)))
    end
    if n and n ~= 0 then
      total = total + n
      reasons[#reasons + 1] = r[3] ~= nil and tostring(r[3]) or fmt("%s: %+d", g.plugin, n)
      plugins[#plugins + 1] = g.plugin
    end
  end
  return { ok = true, result = { priority = total, reasons = reasons, plugins = plugins,
                                 offer_days = e.waitlist.offer_days or 7 } }
end

-- The phase before the transaction: `prepare[to]` functions may look
-- things up (sarye.http) and return a value that guards and hooks then
-- find in input.prepared[plugin id]. They run before any snapshot, so the
-- store views are not theirs.
local any_prepare_cache
function M.any_prepare()
  if any_prepare_cache == nil then
    any_prepare_cache = false
    for _, p in pairs(programs) do if p.prepare and next(p.prepare) then any_prepare_cache = true end end
    for _, r in pairs(regions) do
      for _, ov in pairs(r.programs or {}) do if ov.prepare and next(ov.prepare) then any_prepare_cache = true end end
    end
  end
  return any_prepare_cache
end

function M.prepare(a)
  local c = a.case
  local e = effective(c.program, c.region)
  local out = {}
  if not e then return { ok = true, prepared = out } end
  local ctx = new_ctx(a, e, new_effects())
  local input = { data = copy_deep(a.data or {}), note = a.note, reopen = a.reopen or false }
  for _, h in ipairs(e.prepare[a.to] or {}) do
    local r = call_plugin(h, "prepare", copy_deep(c), input, ctx)
    if not r[1] then return plugin_failure(h, r) end
    out[h.plugin] = r[2]
  end
  return { ok = true, prepared = out }
end

-- Before a case opens, outside any transaction: each layer's lookup(person,
-- case, ctx) may ask an agency (sarye.http) when ctx.consent_allows(agency).
-- Its answer reaches eligibility as ctx.lookups[plugin]; an answer
-- {facts = {...}, cache_as = "ssis"} is also kept on the person, with its time.
function M.needs_lookup(pid, code)
  local e = effective(pid, code)
  return e ~= nil and #e.lookup > 0
end

function M.lookup(a)
  local c = a.case
  local e = effective(c.program, c.region)
  local out, cache = {}, array({})
  if not e or #e.lookup == 0 then return { ok = true, lookups = out, cache = cache } end
  local ctx = new_ctx(a, e, new_effects())
  for _, g in ipairs(e.lookup) do
    local r = call_plugin(g, "lookup", copy_deep(a.person or {}), copy_deep(c), ctx)
    if not r[1] then return plugin_failure(g, r) end
    if type(r[2]) == "table" then
      out[g.plugin] = r[2]
      if type(r[2].cache_as) == "string" and type(r[2].facts) == "table" then
        cache[#cache + 1] = { key = r[2].cache_as, facts = r[2].facts }
      end
    end
  end
  return { ok = true, lookups = out, cache = cache }
end

---------------------------------------------------------------------------
-- Agencies: the message for a kind (referral, answer, progress) built by
-- the agency's plugin, and an agency's status code read back.
---------------------------------------------------------------------------

-- The messages of the government-wide service referral system (범정부
-- 서비스 의뢰, seed 001 부록3), the same for every agency on it: 서비스 의뢰
-- (who, why, the referrer's opinion; the RRN stays masked), 접수·반려 의견,
-- and 처리단계별 처리내용. An agency plugin replaces one only when its
-- agency differs.
local STANDARD_MESSAGES = {
  referral = function(r)
    local p = r.person and r.person.person or {}
    return { type = "service_referral", referral_id = r.id, from_org = r.from_org,
             person = { name = p.name, birth_date = p.birth_date, sex = p.sex, phone = p.phone,
                        address = p.address, rrn_masked = p.rrn },
             reason = r.reason, opinion = r.opinion }
  end,
  answer = function(r)
    return { type = "referral_answer", referral_id = r.id, agency_ref = r.agency_ref,
             result = r.status == "accepted" and "접수" or "반려", opinion = r.answer_note, case_id = r.case_id }
  end,
  -- 처리단계별 처리내용: the step reached, and once the case is closed 완료
  -- with the time it closed (its first contact is a step too)
  progress = function(s)
    return { type = "referral_progress", referral_id = s.referral_id, agency_ref = s.agency_ref,
             stage = s.stage, status = s.status, closed_at = s.closed_at,
             result = s.closed_at and "완료" or "진행", contacted_on = s.contacted_on }
  end,
}
-- The system's status codes (접수, 진행, 반려, 완료), which an agency's own may extend.
local STANDARD_STATUSES = { RECEIVED = "received", IN_PROGRESS = "in_progress", REJECTED = "rejected",
                            COMPLETED = "completed", ["접수"] = "received", ["진행"] = "in_progress",
                            ["반려"] = "rejected", ["완료"] = "completed" }

-- a = { agency, kind, data } -> { ok, payload } or a failure
function M.agency_message(a)
  local p = agencies[a.agency]
  if not p then return { ok = false, kind = "unknown_agency" } end
  if p.direction == "inbound" and a.kind == "referral" then return { ok = false, kind = "inbound_only" } end
  local fn = p.messages and p.messages[a.kind] or STANDARD_MESSAGES[a.kind]
  if not fn then return { ok = true, payload = { type = a.kind, data = a.data } } end
  local g = { plugin = p.id, version = p.version, fn = fn }
  local r = call_plugin(g, "message", copy_deep(a.data or {}))
  if not r[1] then return plugin_failure(g, r) end
  if type(r[2]) ~= "table" then return plugin_failure(g, "messages." .. a.kind .. " must return a table") end
  return { ok = true, payload = r[2] }
end

-- An agency's status code -> received|in_progress|rejected|completed, or nil.
function M.agency_status(agency, status)
  local p = agencies[agency]
  if not p then return nil end
  local st = (p.statuses or {})[status] or STANDARD_STATUSES[status]
  if not st and AGENCY_STATUSES[status] then st = status end
  return st
end

function M.agency_known(agency)
  local p = agencies[agency]
  return { known = p ~= nil, direction = p and p.direction or nil, name = p and p.name or nil }
end

---------------------------------------------------------------------------
-- Shadow replay and migration: a recorded decision asked again of this set,
-- and the declarations open cases are moved by.
---------------------------------------------------------------------------

-- One recorded decision, asked again: a = { step = "open" | "move" |
-- "record", case, to, reopen, data, note, kind, subkind, record, person,
-- today, actor }. The verdict is the server's, plus `offered`: the moves
-- the rules offer from the case's stage (for a move).
function M.replay_step(a)
  local v
  if a.step == "open" then
    v = M.open(a)
  elseif a.step == "record" then
    v = M.record(a)
  else
    v = M.transition(a)
    local e = effective(a.case.program, a.case.region)
    if e then v.offered = allowed_from(e, a.case.stage) end
  end
  return v
end

-- What migrating open cases reads of a set: for each program, and for each
-- program under a region that overlays it ("program@code"), the moves from
-- each stage and the declared deadlines.
function M.decls()
  local out = {}
  local function decl(pid, code)
    local e = effective(pid, code)
    local tr = {}
    for _, s in ipairs(e.order) do tr[s] = allowed_from(e, s) end
    local dl = {}
    for _, k in ipairs(e.deadline_kinds) do
      local d = e.deadlines[k]
      local stop = array(copy_shallow(d.stop))
      sort(stop)
      dl[k] = { start = d.start, offset = copy_shallow(d.offset), stop = stop, label = d.label, plugin = d.plugin }
    end
    return { transitions = tr, deadlines = dl }
  end
  for pid in pairs(programs) do
    out[pid] = decl(pid, nil)
    for _, r in pairs(regions) do
      if r.programs and r.programs[pid] then
        for _, code in ipairs(r.regions) do
          if region_of_code[code] == r then out[pid .. "@" .. code] = decl(pid, code) end
        end
      end
    end
  end
  return out
end

---------------------------------------------------------------------------
-- Scaffolds (`sarye plugin new`): a working plugin with its tests, built
-- from the loaded set (which program a region overlays, its stages) so
-- that it passes `plugin check` and `plugin test` as written.
---------------------------------------------------------------------------

local function stage_after(e, s)
  for i, x in ipairs(e.order) do if x == s then return e.order[i + 1] end end
  return nil
end

-- The program a new region most likely overlays: the one most regions
-- overlay, then the one most programs extend, then the first by id.
local function likely_program()
  local score = {}
  for pid in pairs(programs) do score[pid] = 0 end
  for _, r in pairs(regions) do
    for pid in pairs(r.programs or {}) do if score[pid] then score[pid] = score[pid] + 1000 end end
  end
  for _, p in pairs(programs) do if p.extends and score[p.extends] then score[p.extends] = score[p.extends] + 1 end end
  local best
  for _, pid in ipairs(sorted_keys(score)) do
    if not best or score[pid] > score[best] then best = pid end
  end
  return best
end

local function region_scaffold(id, opts)
  local code = opts.region or match(id, "(%d+)$")
  if type(code) ~= "string" or not match(code, "^%d+$") then
    return nil, "give the region code with --region CODE (the id has no trailing digits to take it from)"
  end
  if region_of_code[code] then
    return nil, fmt("region code %s is claimed by '%s' (%s)", code, region_of_code[code].id, region_of_code[code]._file)
  end
  local pid = opts.program or likely_program()
  if not pid then return nil, "the plugin set has no program for a region to overlay" end
  local e = effective(pid, nil)
  if not e then return nil, fmt("no program '%s' in the plugin set", pid) end
  local from, to
  for _, s in ipairs(e.order) do
    for _, t in ipairs(allowed_from(e, s)) do
      if not from and STAGE_INDEX[t] > STAGE_INDEX[s] then from, to = s, t end
    end
  end
  if not from then return nil, fmt("program '%s' has no forward move for a region guard", pid) end
  local stop = stage_after(e, to)
  local guard_msg = fmt("%s: %s에서 %s(으)로 옮길 때는 사유(note)를 적어 주세요", id, e.labels[from], e.labels[to])
  local text = fmt([=[
-- %s: a local authority's own rules (region code %s) over the bundled
-- programs. Written by `sarye plugin new region %s`: the contract is in
-- plugins/README.md, the host API (for your editor) in plugins/sarye.d.lua.
--
--   sarye plugin test FILE      its tests, with the bundled set loaded
--   sarye plugin lint FILE      luacheck with the sandbox's globals
--   sarye plugin replay DIR     what a set with it would decide differently on recorded cases

---@type sarye.Region
return {
  id = %q,
  kind = "region",
  version = "0.1.0",
  api = 1,
  name = %q, -- the authority's Korean name, e.g. "서울특별시 ○○구"
  regions = { %q },

  programs = {
    %s = {
      -- A deadline of this authority: due 14 days after a case enters %s.
      deadlines = {
        region_review_due = { start = %q, offset = { days = 14 },%s label = "검토 기한 (14일)" },
      },
      -- A move this authority asks a reason for.
      guards = {
        [%q] = function(case, input, ctx)
          if type(input.note) ~= "string" or input.note == "" then
            return false, %q
          end
          return true
        end,
      },
    },
  },

  tests = {
    { name = %q, run = function(t)
        local v = t.guard { plugin = %q, on = %q, program = %q, region = %q }
        t.eq(v.ok, false)
        t.eq(v.plugin, %q)
        v = t.guard { plugin = %q, on = %q, program = %q, region = %q, note = "주민 요청" }
        t.ok(v.ok, v.reason)
      end },
    { name = "the review deadline is this region's", run = function(t)
        local due
        for _, d in ipairs(t.rules(%q, %q).deadlines) do
          if d.kind == "region_review_due" then due = d end
        end
        t.ok(due, "region_review_due is not in the effective rules")
        t.eq(due.plugin, %q)
        t.eq(due.start, %q)
        t.eq(due.offset.days, 14)
      end },
  },
}
]=], id, code, id, id, id, code, match(pid, "^[%a_][%w_]*$") and pid or fmt("[%q]", pid), to, to, stop and fmt(" stop = { %q },", stop) or "", from .. "->" .. to, guard_msg,
    fmt("%s->%s needs a reason", from, to), id, from .. "->" .. to, pid, code, id, id, from .. "->" .. to, pid, code,
    pid, code, id, to)
  return "regions/" .. id .. ".lua", text
end

local function program_scaffold(id)
  local text = fmt([=[
-- %s: a case-management program over the standard process. Written by
-- `sarye plugin new program %s`: the contract is in plugins/README.md, the
-- host API (for your editor) in plugins/sarye.d.lua.
--
--   sarye plugin test FILE      its tests, with the bundled set loaded
--   sarye plugin lint FILE      luacheck with the sandbox's globals

---@type sarye.Program
return {
  id = %q,
  kind = "program",
  version = "0.1.0",
  api = 1,
  name = %q, -- the program's Korean name

  -- The standard stages it uses, in order, with its own names for them.
  stages = {
    { id = "discovery", label = "발굴" },
    { id = "intake", label = "접수" },
    { id = "assessment", label = "조사·사정" },
    { id = "planning", label = "계획 수립" },
    { id = "delivery", label = "서비스 제공" },
    { id = "monitoring", label = "점검" },
    { id = "closure", label = "종결" },
  },
  transitions = {
    discovery = { "intake", "closure" },
    intake = { "assessment", "closure" },
    assessment = { "planning", "closure" },
    planning = { "delivery", "closure" },
    delivery = { "monitoring", "closure" },
    monitoring = { "delivery", "closure" },
  },
  closure_reasons = { goal_achieved = "목표달성", refused = "거부", moved = "전출" },
  deadlines = {
    plan_due = { start = "intake", offset = { days = 30 }, stop = { "delivery", "closure" },
                 label = "계획 수립 기한 (접수일로부터 30일)" },
  },
  guards = {
    ["planning->delivery"] = function(case, input, ctx)
      if not sarye.lib.has_approved_plan(ctx, case) then
        return false, %q
      end
      return true
    end,
  },

  tests = {
    { name = "intake starts the 30-day planning deadline", run = function(t)
        local v = t.transition { program = %q, case = t.case { stage = "discovery" }, to = "intake",
                                 today = "2026-03-02" }
        t.ok(v.ok, v.reason)
        t.eq(v.effects.set[1].kind, "plan_due")
        t.eq(v.effects.set[1].due_on, "2026-04-01")
      end },
    { name = "a stage cannot be skipped", run = function(t)
        local v = t.transition { program = %q, case = t.case { stage = "discovery" }, to = "planning" }
        t.eq(v.kind, "not_allowed")
        t.eq(v.allowed, { "intake", "closure" })
      end },
    { name = "delivery needs an approved plan", run = function(t)
        local v = t.guard { plugin = %q, on = "planning->delivery", program = %q,
                            queries = { plans_of_case = {} } }
        t.eq(v.ok, false)
        v = t.guard { plugin = %q, on = "planning->delivery", program = %q,
                      queries = { plans_of_case = { { id = "rec_1", kind = "plan", status = "approved" } } } }
        t.ok(v.ok, v.reason)
      end },
  },
}
]=], id, id, id, id, id .. ": 승인된 서비스 제공계획이 있어야 서비스를 제공합니다", id, id, id, id, id, id)
  return "programs/" .. id .. ".lua", text
end

local function agency_scaffold(id)
  local text = fmt([=[
-- %s: a connector to an agency of the government-wide service referral
-- system (범정부 서비스 의뢰). Written by `sarye plugin new agency %s`: the
-- contract is in plugins/README.md. Its endpoint is configuration:
-- agency.%s.url (SARYE_AGENCY_%s_URL).
--
--   sarye plugin test FILE      its tests, with the bundled set loaded

---@type sarye.Agency
return {
  id = %q,
  kind = "agency",
  version = "0.1.0",
  api = 1,
  name = %q, -- the agency's Korean name
  direction = "two_way",
  -- The agency's own status codes, beyond the system's standard ones.
  statuses = { ACCEPTED = "received", CLOSED = "completed" },
  -- Without messages the system's standard ones are sent; this one adds
  -- the agency's own field to the standard referral.
  messages = {
    referral = function(r)
      return { type = "service_referral", referral_id = r.id, from_org = r.from_org, reason = r.reason,
               opinion = r.opinion, channel = "sarye" }
    end,
  },

  tests = {
    { name = "a referral names itself and its reason", run = function(t)
        local m = t.message { agency = %q, kind = "referral", data = { id = "ref_1", reason = "주거 위기" } }
        t.ok(m.ok, m.message)
        t.eq(m.payload.referral_id, "ref_1")
        t.eq(m.payload.reason, "주거 위기")
      end },
  },
}
]=], id, id, id, id:upper():gsub("[^%w]", "_"), id, id, id)
  return "agencies/" .. id .. ".lua", text
end

-- kind, id, opts = {region, program} -> {ok, path, text} or {ok = false, message}.
function M.scaffold(kind, id, opts)
  opts = opts or {}
  if type(id) ~= "string" or not match(id, "^[%w][%w_%-]*$") or #id > 64 then
    return { ok = false, message = "an id is letters, digits, '_' or '-' (at most 64), starting with a letter or digit" }
  end
  local FOLDER = { program = "programs", region = "regions", agency = "agencies" }
  if not FOLDER[kind] then return { ok = false, message = "a plugin is a program, a region or an agency" } end
  for _, p in ipairs(plugin_list) do
    if p.kind == kind and p.id == id then
      return { ok = false, message = fmt("the set has a %s '%s' already (%s)", kind, id, p._file) }
    end
  end
  local path, text
  if kind == "region" then path, text = region_scaffold(id, opts)
  elseif kind == "program" then path, text = program_scaffold(id)
  else path, text = agency_scaffold(id) end
  if not path then return { ok = false, message = text } end
  return { ok = true, path = path, text = text }
end

---------------------------------------------------------------------------
-- Plugins' own tests, run in this sandbox exactly as a reload runs them.
---------------------------------------------------------------------------

local function describe_value(v)
  if type(v) == "string" then return fmt("%q", v) end
  return tostring(v)
end

local function deep_equal(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- A test's fixtures for ctx.query are checked like the plugin's own calls.
local function check_fixtures(queries)
  for name in pairs(queries or {}) do
    if not QUERIES[name] then error(unknown_query(name), 3) end
  end
end

local function fixture_case(spec, default_stage)
  local c = copy_deep(spec.case or {})
  c.id = c.id or "cas_TEST"
  c.person_id = c.person_id or "per_TEST"
  c.program = c.program or spec.program
  c.region = c.region or spec.region
  c.status = c.status or "open"
  c.stage = c.stage or default_stage
  return c
end

local function test_api(today)
  local t = {}
  function t.eq(actual, expected, msg)
    if not deep_equal(actual, expected) then
      error(fmt("%sexpected %s, got %s", msg and (msg .. ": ") or "", describe_value(expected), describe_value(actual)), 2)
    end
  end
  function t.ok(v, msg) if not v then error(msg or "expected a true value", 2) end end
  -- Evaluates a transition against the loaded set, as the server would.
  function t.transition(spec)
    check_fixtures(spec.queries)
    return M.transition({ case = fixture_case(spec), to = spec.to, reopen = spec.reopen, data = spec.data,
                          note = spec.note, today = spec.today or today, person = spec.person or {},
                          history = spec.history or {}, queries = spec.queries, actor = spec.actor,
                          prepared = spec.prepared })
  end
  function t.rules(pid, code) return M.describe(pid, code) end
  -- The message an agency plugin builds.
  function t.message(spec) return M.agency_message({ agency = spec.agency, kind = spec.kind, data = spec.data or {} }) end
  -- Whether a case may open for a person, as the server checks it.
  function t.open(spec)
    check_fixtures(spec.queries)
    local c = { id = "cas_TEST", person_id = "per_TEST", program = spec.program, region = spec.region,
                stage = "discovery", status = "open", source = spec.source or "walk_in" }
    return M.open({ case = c, person = spec.person or {}, today = spec.today or today, queries = spec.queries,
                    lookups = spec.lookups, actor = spec.actor, history = spec.history or {},
                    record = { source = spec.source or "walk_in" } })
  end
  -- Evaluates a case-work record (assessment, follow-up ...) as the server would.
  function t.record(spec)
    check_fixtures(spec.queries)
    return M.record({ case = fixture_case(spec, "assessment"), kind = spec.kind, subkind = spec.subkind,
                      record = spec.record or {}, today = spec.today or today, person = spec.person or {},
                      history = spec.history or {}, queries = spec.queries, actor = spec.actor })
  end
  -- Where a case would wait on a resource's waitlist: {program, region,
  -- case, entry = {resource, need, domain ...}, queries ...} -> {ok,
  -- result = {priority, reasons, offer_days}}.
  function t.waitlist(spec)
    check_fixtures(spec.queries)
    return M.waitlist({ case = fixture_case(spec, "delivery"), entry = spec.entry or {}, today = spec.today or today,
                        person = spec.person or {}, history = spec.history or {}, queries = spec.queries,
                        actor = spec.actor })
  end
  -- A case at any stage, as the server would hand it to rules: the fields
  -- a rule reads, with defaults (spec may set any of them).
  function t.case(spec)
    spec = spec or {}
    local c = fixture_case(spec, spec.stage or "discovery")
    for _, k in ipairs({ "id", "person_id", "org", "status", "version", "source", "referral_id", "assigned_to",
                         "opened_at" }) do
      if spec[k] ~= nil then c[k] = spec[k] end
    end
    c.version = c.version or 1
    c.source = c.source or "walk_in"
    c.org = c.org or "test-org"
    c.opened_at = c.opened_at or ((spec.today or today) .. "T00:00:00.000Z")
    return c
  end
  -- One plugin's guard alone (a region's, without the program's before it):
  -- spec = {plugin, on = "from->to" or "*->to", program, region, case, data,
  -- note, queries, person, history, actor}. Answers as t.transition does.
  function t.guard(spec)
    check_fixtures(spec.queries)
    local c = fixture_case(spec, match(tostring(spec.on), "^([%w_]+)%->") or "discovery")
    local e = effective(c.program, c.region)
    if not e then return { ok = false, kind = "unknown_program" } end
    for _, g in ipairs(e.guards[spec.on] or {}) do
      if g.plugin == spec.plugin then
        local a = { case = c, today = spec.today or today, person = spec.person or {}, history = spec.history or {},
                    queries = spec.queries, actor = spec.actor }
        local input = { data = copy_deep(spec.data or {}), note = spec.note, reopen = spec.reopen or false,
                        prepared = copy_deep(spec.prepared or {}) }
        local r = call_plugin(g, "guard", copy_deep(c), input, new_ctx(a, e, new_effects()))
        if not r[1] then return plugin_failure(g, r) end
        if r[2] == true then return { ok = true } end
        if r[2] ~= false then
          return plugin_failure(g, fmt("guards['%s'] must return true, or false and a reason (it returned %s)",
                                       spec.on, tostring(r[2])))
        end
        return refused(g, r[3], "guard")
      end
    end
    error(fmt("t.guard: %s has no guard on '%s' for program %s in region %s", tostring(spec.plugin),
              tostring(spec.on), tostring(c.program), tostring(c.region)), 2)
  end
  -- A lookup before opening, with the agency's answer given (consents =
  -- {[agency] = true}; sarye.http answers come from the test's agency).
  function t.lookup(spec)
    local c = { id = "cas_TEST", person_id = "per_TEST", program = spec.program, region = spec.region,
                stage = "discovery", status = "open", source = spec.source or "walk_in" }
    return M.lookup({ case = c, person = spec.person or {}, today = spec.today or today,
                      consents = spec.consents or {}, actor = spec.actor })
  end
  t.date = date
  return readonly(t, "t")
end

-- Runs the tests of every plugin (or of the one whose file is `only`), of
-- those whose name contains `filter` (plain text) when given. Returns a list
-- of {plugin, file, name, ok, message, line, ms, log}: a failing test's
-- message and the line it failed at, the CPU time it took, and what it
-- logged (sarye.log and print).
function M.run_tests(only, today, filter)
  test_log = nil
  local results = array({})
  for _, p in ipairs(plugin_list) do
    if (not only or p._file == only) and p.tests then
      for _, tc in ipairs(p.tests) do
        if not filter or find(tc.name, filter, 1, true) then
          C.set_current(p.id, p.version)
          phase = "test"
          test_log = {}
          local t0 = cpu_clock()
          local ok, err = pcall(tc.run, test_api(today))
          local ms = (cpu_clock() - t0) * 1000
          local log = test_log
          test_log = nil
          phase = "load"
          C.set_current(nil, nil)
          local r = { plugin = p.id, file = p._file, name = tc.name, ok = ok, ms = math.floor(ms * 100 + 0.5) / 100 }
          if #log > 0 then r.log = array(log) end
          if not ok then
            local l, m = match(tostring(err), "^[^:]*:(%d+): (.*)$")
            r.line = tonumber(l)
            r.message = m or tostring(err)
          end
          results[#results + 1] = r
        end
      end
    end
  end
  return results
end

return M
