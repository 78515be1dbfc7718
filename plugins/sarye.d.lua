---@meta
-- LuaLS annotations of the sarye plugin host (api = 1). Not loaded by the
-- server: it is here so that an editor completes and checks plugin code.
-- Point LuaLS at this folder (see .luarc.json at the repository root).

---@alias sarye.Stage "discovery"|"initial_counseling"|"intake"|"assessment"|"selection"|"planning"|"delivery"|"monitoring"|"closure"|"follow_up"
---@alias sarye.Date string  # "YYYY-MM-DD"

---@class sarye.Case
---@field id string
---@field person_id string
---@field program string
---@field org string
---@field region string
---@field stage sarye.Stage
---@field status "open"|"follow_up"|"ended"
---@field version integer
---@field source "walk_in"|"outreach"|"referral"|"gov_referral"|"data_match"
---@field referral_id string|nil
---@field opened_at string
---@field lead_org string   the organisation that leads the case (seed 004 주 사례기관); `org` unless handed over

---@class sarye.Input
---@field data table     the transition's `data` object
---@field note string|nil
---@field reopen boolean

---@class sarye.Ctx
---@field today sarye.Date
---@field program string
---@field region string
---@field person fun(): table|nil                      the case's person
---@field history fun(): table[]                      the case's events
---@field query fun(name: "cases_of_person"|"plans_of_case"|"records_of_case"|"meetings_of_case"|"deadlines_of_case"|"orgs", params: table): table[]   orgs: {region, type?}
---@field label fun(stage: sarye.Stage): string|nil
---@field set_deadline fun(kind: string, due: sarye.Date, label?: string)   hooks only
---@field clear_deadline fun(kind: string)                                 hooks only
---@field enqueue fun(agency: string, payload: table)                      hooks only: a message to an agency

---@class sarye.RecordCtx: sarye.Ctx
---@field result table                      what earlier on_record hooks answered
---@field move fun(stage: sarye.Stage)      move the case after the record (a transition, with its rules)
---@field end_case fun()                    end the case after the record
---@field set_lead fun(org: string|{org: string?, type: string?, reason: string?}, reason?: string)  hand the case to another lead organisation

---@alias sarye.Guard fun(case: sarye.Case, input: sarye.Input, ctx: sarye.Ctx): boolean, string?
---@alias sarye.Eligibility fun(person: table, case: sarye.Case, ctx: sarye.Ctx): boolean, string?
---@alias sarye.RecordHook fun(case: sarye.Case, record: table, ctx: sarye.RecordCtx): table?
---@alias sarye.RecordKind "open"|"counseling"|"assessment"|"plan"|"plan_approval"|"service"|"check"|"closure"|"follow_up"|"meeting"|"consultation"
---@alias sarye.WaitlistPriority fun(case: sarye.Case, entry: {resource: table?, need: string, domain: string, kind: string?, target: string?}, ctx: sarye.Ctx): integer?, string?

---@class sarye.Instrument
---@field domains string[]
---@field scale? {min: integer, max: integer}
---@field all_domains? boolean
---@alias sarye.Hook fun(case: sarye.Case, input: sarye.Input, ctx: sarye.Ctx)

---@class sarye.StageDef
---@field id sarye.Stage
---@field label string

---@class sarye.Deadline
---@field start sarye.Stage
---@field offset {days: integer?, months: integer?}
---@field stop? sarye.Stage|sarye.Stage[]
---@field label? string

---@class sarye.Rules
---@field labels? table<sarye.Stage, string>
---@field transitions? table<sarye.Stage, sarye.Stage[]>
---@field guards? table<string, sarye.Guard>            "from->to" or "*->to"
---@field hooks? {enter: table<sarye.Stage, sarye.Hook>?, leave: table<sarye.Stage, sarye.Hook>?}
---@field deadlines? table<string, sarye.Deadline>
---@field prepare? table<sarye.Stage, fun(case: sarye.Case, input: sarye.Input, ctx: sarye.Ctx): any>  before the transaction
---@field eligibility? sarye.Eligibility
---@field lookup? fun(person: table, case: sarye.Case, ctx: {today: sarye.Date, program: string, region: string, consent_allows: fun(party: string): boolean}): table?
---@field extends? string
---@field referral? {answer_days: integer?, accepts_from: string[]?}
---@field instruments? table<string, sarye.Instrument>
---@field records? table<sarye.RecordKind, {required: string[]?, validate: (fun(case: sarye.Case, record: table, ctx: sarye.Ctx): boolean, string?)?}>
---@field on_record? table<sarye.RecordKind, sarye.RecordHook>
---@field closure_reasons? table<string, string>
---@field case_types? table<string, {label: string, lead: string}>
---@field facts? table<string, string>          the eligibility facts read (person.eligibility[key]) -> what each means
---@field waitlist? {priority: sarye.WaitlistPriority?, offer_days: integer?}  a resource waitlist: who goes first, days to answer an offer


---@class sarye.TestResult
---@field ok boolean
---@field kind? "not_allowed"|"refused"|"stage_unused"|"plugin_error"|"plugin_memory"|"unknown_program"
---@field allowed? sarye.Stage[]
---@field plugin? string
---@field reason? string
---@field label? string
---@field effects? {set: {kind: string, due_on: sarye.Date, label: string, plugin: string}[], clear: string[]}

---@class sarye.T
---@field transition fun(spec: {program: string, region?: string, case?: table, to: sarye.Stage, data?: table, today?: sarye.Date, reopen?: boolean}): sarye.TestResult
---@field rules fun(program: string, region?: string): table
---@field record fun(spec: {program: string, region?: string, kind: sarye.RecordKind, subkind?: string, case?: table, record?: table, today?: sarye.Date, queries?: table}): table
---@field open fun(spec: {program: string, region?: string, person?: table, today?: sarye.Date, queries?: table}): table
---@field waitlist fun(spec: {program: string, region?: string, case?: table, entry?: table, queries?: table}): table  {ok, result = {priority, reasons, offer_days}}
---@field case fun(spec?: {stage?: sarye.Stage, program?: string, region?: string, id?: string, status?: string, version?: integer, source?: string, org?: string, opened_at?: string, today?: sarye.Date}): sarye.Case
---@field guard fun(spec: {plugin: string, on: string, program: string, region?: string, case?: table, data?: table, note?: string, today?: sarye.Date, queries?: table, person?: table, history?: table, actor?: table}): sarye.TestResult  one plugin's guard alone
---@field message fun(spec: {agency: string, kind: "referral"|"answer"|"progress", data?: table}): {ok: boolean, payload: table?}
---@field eq fun(actual: any, expected: any, msg?: string)  a failure reads "FILE:LINE: msg: expected X, got Y"
---@field ok fun(v: any, msg?: string)

---@class sarye.Test
---@field name string
---@field run fun(t: sarye.T)

---@class sarye.Plugin
---@field id string
---@field kind "program"|"region"|"agency"
---@field version string
---@field api 1
---@field name string
---@field tests? sarye.Test[]

---@class sarye.Program: sarye.Plugin, sarye.Rules
---@field stages sarye.StageDef[]
---@field reopen_to? sarye.Stage[]
---@field covers? {name: string, why: string}[]   programs of seed 003's overview this one serves, and why

---@class sarye.Region: sarye.Plugin
---@field regions string[]
---@field programs? table<string, sarye.Rules>

---@class sarye.Agency: sarye.Plugin
---@field direction "two_way"|"inbound"
---@field messages? table<"referral"|"answer"|"progress", fun(data: table): table>
---@field statuses? table<string, "received"|"in_progress"|"rejected"|"completed">

---@class sarye.module
sarye = {
  api = 1,
  ---@type sarye.Stage[]
  stages = {},
  date = {
    ---@return sarye.Date
    today = function() end,
    ---@param s any
    ---@return boolean
    valid = function(s) end,
    ---@param d sarye.Date
    ---@param n integer
    ---@return sarye.Date
    add_days = function(d, n) end,
    ---@param d sarye.Date
    ---@param n integer
    ---@return sarye.Date
    add_months = function(d, n) end,
    ---@param a sarye.Date
    ---@param b sarye.Date
    ---@return integer
    diff_days = function(a, b) end,
  },
  json = {
    ---@return string
    encode = function(v) end,
    ---@param s string
    ---@return any, string?
    decode = function(s) end,
  },
  --- One line of the server's log (cut at 2000 bytes, 20 lines a call); while a
  --- test runs, a line of the test's own log instead (`plugin test --verbose`,
  --- and with a failing test), never the server's.
  ---@param level "debug"|"info"|"warn"|"error"
  ---@param message string
  log = function(level, message) end,
  http = {
    --- A look-up of a configured agency (agency.<id>.url), only in prepare and lookup functions.
    ---@param agency string
    ---@param path string
    ---@param body table?
    ---@return table
    post = function(agency, path, body) end,
  },
}

---@class sarye.Lib
---@field age fun(person: table|nil, today: sarye.Date): integer|nil          만 나이: person.age, else from birth_date
---@field age_on fun(birth_date: sarye.Date, date: sarye.Date): integer|nil   full years from birth_date to date
---@field weekday fun(date: sarye.Date): integer                             1 Monday ... 7 Sunday
---@field add_business_days fun(date: sarye.Date, n: integer, holidays?: table<sarye.Date, boolean>): sarye.Date  Monday-Friday, not holidays
---@field due fun(from: sarye.Date, offset: {days: integer?, months: integer?}): sarye.Date  a deadline's due date
---@field months_between fun(a: sarye.Date, b: sarye.Date): number|nil      30.44 days a month
---@field fact fun(facts: table|nil, key: string): boolean                   a recorded fact says yes ("없음", "no", 0, "" ... say no)
---@field has_approved_plan fun(ctx: sarye.Ctx, case: sarye.Case): boolean
---@field latest_record fun(ctx: sarye.Ctx, case: sarye.Case, kind: sarye.RecordKind): table|nil
---@field deadline fun(ctx: sarye.Ctx, case: sarye.Case, kind: string): sarye.Date|nil  the open deadline's due date
---@field decisions fun(ctx: sarye.Ctx, case: sarye.Case, key?: string): {meeting: table, decision: table}[]  conference decisions about the case (holding key)
---@field org fun(ctx: sarye.Ctx, region: string, id: string): table|nil   an organisation of a region {id, name, type, region, area, programs}

--- As Lua's print: its arguments through tostring, tab-separated. In a test
--- (and the rules a test runs) a line of the test's log; elsewhere a debug
--- line of the server's log.
---@param ... any
function print(...) end
