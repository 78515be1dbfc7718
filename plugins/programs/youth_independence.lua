-- 보호아동 자립지원 (independence support for children in care and care
-- leavers), run by 아동복지시설·가정위탁지원센터 and the 자립지원전담기관.
-- Stage map: seed 003 (희망이음 표준 프로세스 표, row 보호아동 자립지원):
--   1 발굴 | 2–3 상담 | 4–5 조사 | 6 계획 수립 | 7 서비스 제공 |
--   8–9 보호 종료 점검 및 사후관리 계획 수립 | 10 사후관리 모니터링.
-- The table's empty cells are read as the step to their left spanning them
-- (as "서비스 제공 및 점검" spans 7–8 in the 통합사례관리 row): 보호 종료 is
-- the closure of the in-care phase, and 사후관리 모니터링 follows it.
--
-- Not in the seeds (they name the program only), from the brief /
-- 아동복지법 자립지원: 보호종료 후 5년 이내의 보호종료아동; 자립준비는 보호 중인
-- 만 15세 이상 아동부터 (자립수준평가 대상 연령).
--
-- person.eligibility keys read here:
--   in_care        보호조치 중 (아동복지시설, 공동생활가정, 가정위탁) (true)
--   care_ended_on  보호종료일 (YYYY-MM-DD)

local PREP_FROM = 15       -- 자립준비: 보호 중인 만 15세 이상
local SUPPORT_MONTHS = 60  -- 보호종료 후 5년
local CARE_ENDS_AT = 18    -- 보호종료 (연령 도래)

-- 자립 영역 (자립수준평가의 영역: 일상생활기술, 자기관리, 주거, 돈 관리, 진로·취업,
-- 학업, 건강, 사회관계)
local DOMAINS = { "daily_living", "self_care", "housing", "money", "employment", "education", "health",
                  "social_relations" }

-- 만 나이 (international age): the server's person.age, else from birth_date.
local age_of = sarye.lib.age

-- The day the 5 years after 보호종료 run out, or nil.
local function support_ends(ended_on)
  if type(ended_on) ~= "string" or not sarye.date.valid(ended_on) then return nil end
  return sarye.date.add_months(ended_on, SUPPORT_MONTHS)
end

---@type sarye.Program
return {
  id = "youth_independence",
  kind = "program",
  version = "1.1.0",
  api = 1,
  name = "보호아동 자립지원",

  stages = {
    { id = "discovery",          label = "발굴" },
    { id = "initial_counseling", label = "상담" },
    { id = "intake",             label = "상담" },
    { id = "assessment",         label = "조사" },
    { id = "selection",          label = "조사" },
    { id = "planning",           label = "계획 수립" },
    { id = "delivery",           label = "서비스 제공" },
    { id = "monitoring",         label = "보호 종료 점검 및 사후관리 계획 수립" },
    { id = "closure",            label = "보호 종료 점검 및 사후관리 계획 수립" },
    { id = "follow_up",          label = "사후관리 모니터링" },
  },

  -- 점검 may send the case back to 서비스 제공, 계획 or 조사; every open step
  -- may close (the core asks a reason); 보호 종료 → 사후관리 모니터링.
  transitions = {
    discovery          = { "initial_counseling", "closure" },
    initial_counseling = { "intake", "closure" },
    intake             = { "assessment", "closure" },
    assessment         = { "selection", "closure" },
    selection          = { "planning", "closure" },
    planning           = { "delivery", "closure" },
    delivery           = { "monitoring", "closure" },
    monitoring         = { "delivery", "planning", "assessment", "closure" },
    closure            = { "follow_up" },
  },

  -- 사후관리 중 자립에 어려움 → 다시 조사·계획
  reopen_to = { "assessment", "planning" },

  instruments = {
    needs = { domains = DOMAINS },
  },

  closure_reasons = {
    goal_achieved = "목표달성",
    death = "사망",
    moved = "전출",
    refused = "거부",
    lost_contact = "연락두절",
    transferred = "이관",
    protection_ended = "보호종료",
    support_period_ended = "자립지원 기간 경과 (보호종료 후 5년)",
  },

  -- The facts eligibility reads (person.eligibility[key]) and what each means:
  -- GET /v1/programs/youth_independence lists them, so a client can ask for them.
  facts = {
    in_care = "보호 중인 아동 (true/false): 만 15세부터 자립준비",
    care_ended_on = "보호종료일 (YYYY-MM-DD): 보호종료 후 5년 이내",
  },

  eligibility = function(person, case, ctx)
    local e = person.eligibility or {}
    if e.in_care == true then
      local age = age_of(person, ctx.today)
      if age and age >= PREP_FROM then return true end
      return false, string.format("보호 중인 아동의 자립준비는 만 15세부터입니다 (나이 %s세)", tostring(age))
    end
    local ended = e.care_ended_on
    local until_ = support_ends(ended)
    if not until_ then
      return false, "보호 중인 아동(eligibility.in_care) 또는 보호종료아동(eligibility.care_ended_on: 보호종료일)이 대상입니다"
    end
    if ended > ctx.today then return false, "보호종료일이 아직 오지 않았습니다 (" .. ended .. ")" end
    if until_ <= ctx.today then
      return false, string.format("보호종료 후 5년 이내의 보호종료아동이 대상입니다 (보호종료일 %s)", ended)
    end
    return true
  end,

  records = {
    closure = { required = { "reason", "evaluation" } },
  },

  guards = {
    -- 보호 종료 점검 및 사후관리 계획 수립 → 사후관리 모니터링: the care has
    -- ended (보호종료일) and a follow-up plan is written.
    ["closure->follow_up"] = function(case, input, ctx)
      local ended = input.data.care_ended_on
      if not support_ends(ended) or ended > ctx.today then
        return false, "사후관리는 보호종료 후에 합니다 (data.care_ended_on: 보호종료일 YYYY-MM-DD)"
      end
      if support_ends(ended) <= ctx.today then
        return false, string.format("보호종료 후 5년이 지나 사후관리 대상이 아닙니다 (보호종료일 %s)", ended)
      end
      local plan = input.data.follow_up_plan
      if type(plan) ~= "string" or plan == "" then
        return false, "사후관리 계획을 수립해 주세요 (data.follow_up_plan)"
      end
      return true
    end,
    -- 자립지원 기간 경과: only once 5 years have passed since 보호종료.
    ["*->closure"] = function(case, input, ctx)
      if input.data.reason ~= "support_period_ended" then return true end
      local e = (ctx.person() or {}).eligibility or {}
      local until_ = support_ends(input.data.care_ended_on or e.care_ended_on)
      if not until_ or until_ > ctx.today then
        return false, string.format("자립지원 기간(보호종료 후 5년)이 끝나지 않았습니다 (%s까지)", tostring(until_))
      end
      return true
    end,
  },

  hooks = {
    enter = {
      -- 보호 종료: the check due at 18 is done.
      closure = function(case, input, ctx) ctx.clear_deadline("care_end_check") end,
      -- 사후관리 모니터링 runs until 5 years after 보호종료.
      follow_up = function(case, input, ctx)
        local until_ = support_ends(input.data.care_ended_on)
        if until_ then ctx.set_deadline("support_period_end", until_, "자립지원 기간 종료 (보호종료 후 5년)") end
      end,
    },
    leave = {
      follow_up = function(case, input, ctx) ctx.clear_deadline("support_period_end") end,
    },
  },

  on_record = {
    -- A child still in care: the end of care at 18 is when 보호 종료 점검 is due.
    open = function(case, rec, ctx)
      local p = ctx.person() or {}
      local e = p.eligibility or {}
      if e.in_care ~= true or type(p.birth_date) ~= "string" or not sarye.date.valid(p.birth_date) then return end
      local due = sarye.date.add_months(p.birth_date, 12 * CARE_ENDS_AT)
      if due > ctx.today then ctx.set_deadline("care_end_check", due, "보호 종료 점검 (만 18세 보호종료 예정)") end
    end,
  },

  tests = {
    { name = "stage map from seed 003", run = function(t)
        local rules = t.rules("youth_independence")
        t.eq(rules.first_stage, "discovery")
        local labels = {}
        for i, s in ipairs(rules.stages) do labels[i] = s.label end
        t.eq(labels, { "발굴", "상담", "상담", "조사", "조사", "계획 수립", "서비스 제공",
                       "보호 종료 점검 및 사후관리 계획 수립", "보호 종료 점검 및 사후관리 계획 수립",
                       "사후관리 모니터링" })
      end },
    { name = "a child in care from 15 is eligible; 14 is not", run = function(t)
        local r = t.open { program = "youth_independence", today = "2026-03-01",
                           person = { birth_date = "2010-06-01", age = 15, eligibility = { in_care = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "youth_independence", today = "2026-03-01",
                     person = { birth_date = "2011-06-01", age = 14, eligibility = { in_care = true } } }
        t.eq(r.kind, "refused")
      end },
    { name = "a care leaver within 5 years is eligible; after 5 years or not yet left is not", run = function(t)
        local r = t.open { program = "youth_independence", today = "2026-03-01",
                           person = { birth_date = "2003-02-01", age = 23, eligibility = { care_ended_on = "2021-03-02" } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "youth_independence", today = "2026-03-01",
                     person = { birth_date = "2003-02-01", age = 23, eligibility = { care_ended_on = "2021-03-01" } } }
        t.eq(r.kind, "refused")
        r = t.open { program = "youth_independence", today = "2026-03-01",
                     person = { birth_date = "2008-02-01", age = 18, eligibility = { care_ended_on = "2026-04-01" } } }
        t.eq(r.kind, "refused")
        r = t.open { program = "youth_independence", today = "2026-03-01",
                     person = { birth_date = "2003-02-01", age = 23, eligibility = {} } }
        t.eq(r.kind, "refused")
      end },
    { name = "a child in care opens with the 보호 종료 점검 due at 18", run = function(t)
        local r = t.record { program = "youth_independence", kind = "open", today = "2026-03-01",
                             person = { birth_date = "2010-06-01", eligibility = { in_care = true } },
                             record = { source = "walk_in" } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.set[1].kind, "care_end_check")
        t.eq(r.effects.set[1].due_on, "2028-06-01")
        r = t.record { program = "youth_independence", kind = "open", today = "2026-03-01",
                       person = { birth_date = "2003-02-01", eligibility = { care_ended_on = "2023-01-01" } },
                       record = { source = "walk_in" } }
        t.eq(#r.effects.set, 0)
      end },
    { name = "steps in order, with the 점검 loops", run = function(t)
        local r = t.transition { program = "youth_independence", case = { stage = "discovery" }, to = "assessment" }
        t.eq(r.kind, "not_allowed")
        r = t.transition { program = "youth_independence", case = { stage = "monitoring" }, to = "planning" }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "youth_independence", case = { stage = "delivery" }, to = "monitoring" }
        t.eq(r.label, "보호 종료 점검 및 사후관리 계획 수립")
      end },
    { name = "every open step may close, ending the 보호 종료 점검 deadline", run = function(t)
        for _, s in ipairs({ "discovery", "initial_counseling", "intake", "assessment", "selection", "planning",
                             "delivery", "monitoring" }) do
          local r = t.transition { program = "youth_independence", case = { stage = s }, to = "closure",
                                   data = { reason = "protection_ended" } }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
          t.eq(r.effects.clear, { "care_end_check" })
        end
      end },
    { name = "사후관리 needs the care end date and a follow-up plan, and runs 5 years", run = function(t)
        local r = t.transition { program = "youth_independence", case = { stage = "closure" }, to = "follow_up",
                                 today = "2026-03-01", data = { follow_up_plan = "월 1회 연락" } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "youth_independence", case = { stage = "closure" }, to = "follow_up",
                           today = "2026-03-01", data = { care_ended_on = "2026-02-28" } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "youth_independence", case = { stage = "closure" }, to = "follow_up",
                           today = "2026-03-01", data = { care_ended_on = "2020-02-28", follow_up_plan = "월 1회 연락" } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "youth_independence", case = { stage = "closure" }, to = "follow_up",
                           today = "2026-03-01", data = { care_ended_on = "2026-02-28", follow_up_plan = "월 1회 연락" } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "사후관리 모니터링")
        t.eq(r.effects.set[1].kind, "support_period_end")
        t.eq(r.effects.set[1].due_on, "2031-02-28")
      end },
    { name = "자립지원 기간 경과 only after 5 years", run = function(t)
        local r = t.transition { program = "youth_independence", case = { stage = "monitoring" }, to = "closure",
                                 today = "2026-03-01", data = { reason = "support_period_ended" },
                                 person = { eligibility = { care_ended_on = "2022-01-01" } } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "youth_independence", case = { stage = "monitoring" }, to = "closure",
                           today = "2026-03-01", data = { reason = "support_period_ended" },
                           person = { eligibility = { care_ended_on = "2021-01-01" } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "reopening from follow-up clears the support deadline", run = function(t)
        local r = t.transition { program = "youth_independence", case = { stage = "follow_up", status = "follow_up" },
                                 to = "planning", reopen = true }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.clear, { "support_period_end" })
        r = t.transition { program = "youth_independence", case = { stage = "follow_up", status = "follow_up" },
                           to = "delivery", reopen = true }
        t.eq(r.kind, "not_allowed")
      end },
    { name = "closure reasons and independence domains", run = function(t)
        local r = t.record { program = "youth_independence", kind = "closure",
                             record = { reason = "support_period_ended", evaluation = "5년 경과" } }
        t.eq(r.result.reason_label, "자립지원 기간 경과 (보호종료 후 5년)")
        r = t.record { program = "youth_independence", kind = "closure", record = { reason = "bored", evaluation = "x" } }
        t.eq(r.field, "reason")
        r = t.record { program = "youth_independence", kind = "assessment", subkind = "needs",
                       record = { domains = { housing = { note = "LH 임대 신청" }, money = { note = "자립정착금 관리" } } } }
        t.ok(r.ok, r.reason)
      end },
  },
}
