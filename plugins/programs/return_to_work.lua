-- 내일찾기서비스 (return-to-work case management for injured workers),
-- run by the 근로복지공단's 잡코디네이터 as part of 맞춤형통합서비스.
-- Source: seed 000 (맞춤형통합서비스 개요): "내일찾기서비스 대상자 선정 기준",
-- "재활계획 수립 및 변경", "재활서비스 제공", "사후관리", "종결기준".
-- Seed 003's 표준 프로세스 table has no row for it; DOMAIN.md's order is
-- 상담 → 대상자 선정 → 재활계획 수립·변경 → 재활서비스 제공 → 사후관리 → 종결.
--
-- Note the order of the last two steps: here 사후관리 (3 months after the
-- return to the original job) comes *before* 종결, and 사후관리기간 경과 is
-- one of the 종결기준. The stage list keeps the standard order (closure 9,
-- follow_up 10), but the transitions walk the program's own order:
-- delivery → follow_up → closure, and the case ends from closure.
--
-- person.eligibility keys read here (recorded by the worker after 상담):
--   injured_worker       산재근로자 (true)
--   employer_employees   원직장의 상시근로자수 (number; must be under 300)
--   wants_original_job   원직장 복귀를 희망함 (true)

local MAX_EMPLOYEES = 300 -- 원직장의 상시근로자수가 300인 미만

-- 선정순위 (seed 000 "대상자 선정 기준"): 중증도 1. 극도 2. 고도 3. 중등도 4. 경도·경미.
-- The instrument scores expected severity 1 (경도·경미) … 4 (극도).
local SEVERITY = {
  [4] = { id = "extreme", priority = 1, label = "극도로 중증도가 예상되는 사람" },
  [3] = { id = "high", priority = 2, label = "고도로 중증도가 예상되는 사람" },
  [2] = { id = "moderate", priority = 3, label = "중등도로 중증도가 예상되는 사람" },
  [1] = { id = "mild", priority = 4, label = "경도, 경미로 중증도가 예상되는 사람" },
}
-- "overall" is the 중증도 judgement the seed ranks by; the other domains are
-- its parts (의료, 사회심리, 원직장 복귀), used when no overall score is given.
local SEVERITY_DOMAINS = { "overall", "medical", "psychosocial", "job_return" }

-- 재활계획에는 의료, 사회심리, 원직장 복귀 등에 필요한 서비스가 반영되어야 (seed 000
-- "재활계획 수립 및 변경"); 재활서비스: 의료재활 지원, 사회생활 지원, 생활지원
-- ("재활서비스 제공"). A plan service's `type` names its area.
local SERVICE_TYPES = {
  medical = "의료재활 지원",
  psychosocial = "사회심리 지원",
  social_life = "사회생활 지원",
  living = "생활지원",
  return_to_work = "원직장 복귀 지원",
}
local COVERS = { medical = "medical", psychosocial = "psychosocial", social_life = "psychosocial",
                 return_to_work = "return_to_work" }
local REQUIRED_AREAS = { { "medical", "의료" }, { "psychosocial", "사회심리" }, { "return_to_work", "원직장 복귀" } }

local FOLLOW_UP_MONTHS = 3 -- 사후관리는 복귀 후 3개월간

-- 대상자 선정 기준 (seed 000): 상담 후, 원직장의 상시근로자수 300인 미만이고
-- 원직장 복귀를 희망하는 산재근로자.
local function selection_criteria(person)
  local e = person and person.eligibility or {}
  if e.injured_worker ~= true then
    return false, "내일찾기서비스는 산재근로자를 위한 서비스입니다 (eligibility.injured_worker)"
  end
  local n = e.employer_employees
  if type(n) ~= "number" then
    return false, "원직장의 상시근로자수를 기록해 주세요 (eligibility.employer_employees)"
  end
  if n >= MAX_EMPLOYEES then
    return false, string.format("원직장의 상시근로자수가 300인 미만이어야 합니다 (%d인)", n)
  end
  if e.wants_original_job ~= true then
    return false, "원직장 복귀를 희망하는 산재근로자가 대상입니다 (eligibility.wants_original_job)"
  end
  return true
end

local function severity_of(domains)
  local o = domains.overall and domains.overall.score
  if o then return SEVERITY[o], "overall" end
  local worst, from = 0, nil
  for _, d in ipairs(SEVERITY_DOMAINS) do
    local v = domains[d]
    if v and v.score and v.score > worst then worst, from = v.score, d end
  end
  return SEVERITY[worst], from
end

local function has_priority(ctx, case)
  for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })) do
    if r.result and r.result.priority then return true end
  end
  return false
end

local has_approved_plan = sarye.lib.has_approved_plan

local function follow_up_due(ctx, case)
  for _, d in ipairs(ctx.query("deadlines_of_case", { case_id = case.id })) do
    if d.kind == "follow_up_period" then return d.due_on end
  end
  return nil
end

---@type sarye.Program
return {
  id = "return_to_work",
  kind = "program",
  version = "1.1.0",
  api = 1,
  name = "내일찾기서비스",

  -- 상담 (상담·접수) → 대상자 선정 (중증도 판단·선정) → 재활계획 수립·변경 →
  -- 재활서비스 제공 (제공·점검) → 사후관리 → 종결
  stages = {
    { id = "initial_counseling", label = "상담" },
    { id = "intake",             label = "상담" },
    { id = "assessment",         label = "대상자 선정" },
    { id = "selection",          label = "대상자 선정" },
    { id = "planning",           label = "재활계획 수립·변경" },
    { id = "delivery",           label = "재활서비스 제공" },
    { id = "monitoring",         label = "재활서비스 제공" },
    { id = "closure",            label = "종결" },
    { id = "follow_up",          label = "사후관리" },
  },

  transitions = {
    initial_counseling = { "intake", "closure" },
    intake             = { "assessment", "closure" },
    assessment         = { "selection", "closure" },
    selection          = { "planning", "closure" },
    planning           = { "delivery", "closure" },
    -- 필요한 경우 재활계획을 변경할 수 있습니다; 원직장에 복귀하면 사후관리
    delivery           = { "monitoring", "planning", "follow_up", "closure" },
    monitoring         = { "delivery", "planning", "follow_up", "closure" },
    -- 사후관리 중 적응이 어려우면 재활계획 변경; 사후관리기간 경과 → 종결
    follow_up          = { "planning", "closure" },
  },

  -- An ended case (e.g. closed on 원직장 복귀 without 사후관리) may resume
  -- with a changed 재활계획.
  reopen_to = { "planning" },

  instruments = {
    severity = { domains = SEVERITY_DOMAINS, scale = { min = 1, max = 4 } },
  },

  -- 종결기준 (seed 000): 사망, 사후관리기간 경과, 원직장 복귀, 서비스 불희망; and
  -- 재활서비스 제공: 서비스의 신청과 이용에 따라 종결될 수 있음.
  closure_reasons = {
    goal_achieved = "목표달성",
    death = "사망",
    moved = "전출",
    refused = "거부",
    lost_contact = "연락두절",
    transferred = "이관",
    returned_to_work = "원직장 복귀",
    follow_up_ended = "사후관리기간 경과",
    no_longer_wanted = "서비스 불희망",
    other_service = "재활서비스 신청·이용에 따른 종결",
  },

  -- The facts eligibility reads (person.eligibility[key]) and what each means:
  -- GET /v1/programs/return_to_work lists them, so a client can ask for them.
  facts = {
    injured_worker = "산재근로자 (true/false)",
    employer_employees = "원직장의 상시근로자수 (숫자: 300인 미만이 대상)",
    wants_original_job = "원직장 복귀 희망 (true/false)",
  },

  eligibility = function(person, case, ctx)
    return selection_criteria(person)
  end,

  records = {
    closure = { required = { "reason", "evaluation" } },
    plan = {
      validate = function(case, plan, ctx)
        local covered = {}
        for i, goal in ipairs(plan.goals or {}) do
          for j, svc in ipairs(goal.services or {}) do
            if not SERVICE_TYPES[svc.type] then
              return false, string.format(
                "목표 %d 서비스 %d: 재활서비스 유형은 medical(의료재활), psychosocial(사회심리), social_life(사회생활), " ..
                "living(생활지원), return_to_work(원직장 복귀) 중 하나입니다 ('%s')", i, j, tostring(svc.type))
            end
            if COVERS[svc.type] then covered[COVERS[svc.type]] = true end
          end
        end
        local missing = {}
        for _, a in ipairs(REQUIRED_AREAS) do
          if not covered[a[1]] then missing[#missing + 1] = a[2] end
        end
        if #missing > 0 then
          return false, "재활계획에는 의료, 사회심리, 원직장 복귀에 필요한 서비스가 반영되어야 합니다 (빠진 영역: " ..
                        table.concat(missing, ", ") .. ")"
        end
        return true
      end,
    },
  },

  on_record = {
    -- 선정순위는 산재근로자의 중증도에 따라 결정 (1 극도 … 4 경도·경미).
    assessment = function(case, a, ctx)
      local sev, from = severity_of(a.domains or {})
      if not sev then
        return { recommendation = { selection = "not_selected", reasons = { "중증도가 평가되지 않았습니다" } } }
      end
      return { priority = sev.priority, severity = sev.id,
               recommendation = { selection = "case_management", reasons = {
                 string.format("선정순위 %d: %s (%s)", sev.priority, sev.label, from) } } }
    end,
    -- 사후관리 상담에서 부적응 (새 욕구)이 보이면 재활계획 변경을 검토
    follow_up = function(case, f, ctx)
      if f.new_needs then
        return { recommendation = { reasons = { "사후관리 중 적응 문제: 재활계획 변경 검토 (재활계획 수립·변경)" } } }
      end
    end,
  },

  guards = {
    -- 상담을 실시한 후 … 선정: the criteria hold at selection, and the 중증도
    -- (선정순위) has been judged.
    ["selection->planning"] = function(case, input, ctx)
      local ok, why = selection_criteria(ctx.person())
      if not ok then return false, "대상자 선정 기준 미충족: " .. why end
      if not has_priority(ctx, case) then
        return false, "중증도(선정순위)를 평가한 뒤에 대상자를 선정합니다 (assessment: severity)"
      end
      return true
    end,
    -- 소속기관장은 산재근로자와의 충분한 상담과 합의를 통해 재활계획을 수립
    ["planning->delivery"] = function(case, input, ctx)
      if input.data.agreed_with_worker ~= true then
        return false, "재활계획은 산재근로자와 합의해야 합니다 (data.agreed_with_worker = true)"
      end
      if not has_approved_plan(ctx, case) then
        return false, "소속기관장이 재활계획을 수립(승인)해야 재활서비스를 제공할 수 있습니다"
      end
      return true
    end,
    -- 원직장에 복귀한 경우 사후관리: the return date starts the 3 months.
    ["*->follow_up"] = function(case, input, ctx)
      local on = input.data.returned_on
      if type(on) ~= "string" or not sarye.date.valid(on) or on > ctx.today then
        return false, "사후관리는 원직장 복귀 후에 실시합니다 (data.returned_on: 복귀일 YYYY-MM-DD)"
      end
      return true
    end,
    -- 사후관리기간 경과 is a closure only after the 3 months.
    ["*->closure"] = function(case, input, ctx)
      if input.data.reason ~= "follow_up_ended" then return true end
      if case.stage ~= "follow_up" then
        return false, "사후관리기간 경과는 사후관리 중인 사례만의 종결 사유입니다"
      end
      local due = follow_up_due(ctx, case)
      if due and due > ctx.today then
        return false, string.format("사후관리는 복귀 후 3개월간 실시합니다 (%s까지)", due)
      end
      return true
    end,
  },

  hooks = {
    enter = {
      follow_up = function(case, input, ctx)
        ctx.set_deadline("follow_up_period", sarye.date.add_months(input.data.returned_on, FOLLOW_UP_MONTHS),
                         "사후관리 기간 종료 (복귀 후 3개월)")
      end,
    },
    leave = {
      follow_up = function(case, input, ctx) ctx.clear_deadline("follow_up_period") end,
    },
  },

  tests = {
    { name = "stage map: 상담 → 대상자 선정 → 재활계획 → 재활서비스 → 사후관리 → 종결", run = function(t)
        local rules = t.rules("return_to_work")
        t.eq(rules.first_stage, "initial_counseling")
        t.eq(rules.stages[1].label, "상담")
        t.eq(rules.stages[3].label, "대상자 선정")
        t.eq(rules.stages[5].label, "재활계획 수립·변경")
        t.eq(rules.stages[6].label, "재활서비스 제공")
        t.eq(rules.stages[8].label, "종결")
        t.eq(rules.stages[9].label, "사후관리")
        t.eq(rules.transitions.follow_up, { "planning", "closure" })
      end },
    { name = "an injured worker of a small employer who wants the old job is eligible", run = function(t)
        local r = t.open { program = "return_to_work", person = { birth_date = "1978-04-02", age = 47,
                           eligibility = { injured_worker = true, employer_employees = 299, wants_original_job = true } } }
        t.ok(r.ok, r.reason)
        t.eq(r.first_stage, "initial_counseling")
      end },
    { name = "not an injured worker → refused", run = function(t)
        local r = t.open { program = "return_to_work", person = { birth_date = "1978-04-02", age = 47,
                           eligibility = { employer_employees = 20, wants_original_job = true } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "산재근로자", 1, true))
      end },
    { name = "300 or more regular employees → refused", run = function(t)
        local r = t.open { program = "return_to_work", person = { birth_date = "1978-04-02", age = 47,
                           eligibility = { injured_worker = true, employer_employees = 300, wants_original_job = true } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "300", 1, true))
        r = t.open { program = "return_to_work", person = { birth_date = "1978-04-02", age = 47,
                     eligibility = { injured_worker = true, wants_original_job = true } } }
        t.eq(r.kind, "refused")
      end },
    { name = "not wanting the original job → refused", run = function(t)
        local r = t.open { program = "return_to_work", person = { birth_date = "1978-04-02", age = 47,
                           eligibility = { injured_worker = true, employer_employees = 50, wants_original_job = false } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "원직장 복귀", 1, true))
      end },
    { name = "priority follows expected severity: extreme > high > moderate > mild", run = function(t)
        local function prio(domains)
          local r = t.record { program = "return_to_work", kind = "assessment", subkind = "severity",
                               record = { domains = domains } }
          t.ok(r.ok, r.reason)
          return r.result
        end
        t.eq(prio({ overall = { score = 4 } }).priority, 1)
        t.eq(prio({ overall = { score = 4 } }).severity, "extreme")
        t.eq(prio({ overall = { score = 3 } }).priority, 2)
        t.eq(prio({ overall = { score = 2 } }).severity, "moderate")
        t.eq(prio({ overall = { score = 1 } }).priority, 4)
        -- without an overall judgement, the most severe part decides
        t.eq(prio({ medical = { score = 2 }, psychosocial = { score = 3 } }).severity, "high")
        t.eq(prio({ medical = { score = 2 }, psychosocial = { score = 3 } }).recommendation.reasons[1],
             "선정순위 2: 고도로 중증도가 예상되는 사람 (psychosocial)")
      end },
    { name = "severity is scored 1 to 4", run = function(t)
        local r = t.record { program = "return_to_work", kind = "assessment", subkind = "severity",
                             record = { domains = { overall = { score = 5 } } } }
        t.eq(r.field, "domains.overall.score")
      end },
    { name = "selection needs the criteria still met and a severity judged", run = function(t)
        local worker = { eligibility = { injured_worker = true, employer_employees = 40, wants_original_job = true } }
        local judged = { records_of_case = { { kind = "assessment", result = { priority = 2 } } } }
        local r = t.transition { program = "return_to_work", case = { stage = "selection" }, to = "planning",
                                 person = worker, queries = judged }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "재활계획 수립·변경")
        r = t.transition { program = "return_to_work", case = { stage = "selection" }, to = "planning",
                           person = worker, queries = { records_of_case = {} } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "return_to_work", case = { stage = "selection" }, to = "planning",
                           person = { eligibility = { injured_worker = true, employer_employees = 40,
                                                      wants_original_job = false } }, queries = judged }
        t.eq(r.kind, "refused")
      end },
    { name = "the plan covers medical, psychosocial and return-to-work services", run = function(t)
        local function svc(type_) return { type = type_, method = "direct", content = "x",
                                           start = "2026-01-01", ["end"] = "2026-03-31" } end
        local r = t.record { program = "return_to_work", kind = "plan", record = { goals = {
          { term = "short", text = "통원 재활치료 지속", services = { svc("medical") } },
          { term = "short", text = "직장 복귀 준비", services = { svc("social_life"), svc("return_to_work") } } } } }
        t.ok(r.ok, r.reason)
        r = t.record { program = "return_to_work", kind = "plan", record = { goals = {
          { term = "short", text = "통원 재활치료 지속", services = { svc("medical"), svc("living") } } } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "사회심리", 1, true))
        r = t.record { program = "return_to_work", kind = "plan", record = { goals = {
          { term = "short", text = "x", services = { svc("cash") } } } } }
        t.eq(r.kind, "refused")
      end },
    { name = "services start on a plan agreed with the worker and approved", run = function(t)
        local approved = { plans_of_case = { { status = "approved" } } }
        local r = t.transition { program = "return_to_work", case = { stage = "planning" }, to = "delivery",
                                 data = { agreed_with_worker = true }, queries = approved }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "return_to_work", case = { stage = "planning" }, to = "delivery",
                           queries = approved }
        t.eq(r.kind, "refused")
        r = t.transition { program = "return_to_work", case = { stage = "planning" }, to = "delivery",
                           data = { agreed_with_worker = true }, queries = { plans_of_case = { { status = "draft" } } } }
        t.eq(r.kind, "refused")
      end },
    { name = "the plan may be changed during services and follow-up", run = function(t)
        for _, s in ipairs({ "delivery", "monitoring", "follow_up" }) do
          local r = t.transition { program = "return_to_work", case = { stage = s }, to = "planning" }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
        end
      end },
    { name = "follow-up starts on the return and lasts 3 months", run = function(t)
        local r = t.transition { program = "return_to_work", case = { stage = "delivery" }, to = "follow_up",
                                 today = "2026-05-10" }
        t.eq(r.kind, "refused")
        r = t.transition { program = "return_to_work", case = { stage = "delivery" }, to = "follow_up",
                           today = "2026-05-10", data = { returned_on = "2026-06-01" } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "return_to_work", case = { stage = "monitoring" }, to = "follow_up",
                           today = "2026-05-10", data = { returned_on = "2026-05-04" } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "사후관리")
        t.eq(r.effects.set[1].kind, "follow_up_period")
        t.eq(r.effects.set[1].due_on, "2026-08-04")
      end },
    { name = "사후관리기간 경과 closes only after the 3 months", run = function(t)
        local due = { deadlines_of_case = { { kind = "follow_up_period", due_on = "2026-08-04" } } }
        local r = t.transition { program = "return_to_work", case = { stage = "follow_up", status = "follow_up" },
                                 to = "closure", today = "2026-07-01", data = { reason = "follow_up_ended" },
                                 queries = due }
        t.eq(r.kind, "refused")
        r = t.transition { program = "return_to_work", case = { stage = "follow_up", status = "follow_up" },
                           to = "closure", today = "2026-08-04", data = { reason = "follow_up_ended" }, queries = due }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.clear, { "follow_up_period" })
        r = t.transition { program = "return_to_work", case = { stage = "delivery" }, to = "closure",
                           data = { reason = "follow_up_ended" } }
        t.eq(r.kind, "refused")
      end },
    { name = "death, return or no longer wanting the service close from any open step", run = function(t)
        for _, s in ipairs({ "initial_counseling", "intake", "assessment", "selection", "planning", "delivery",
                             "monitoring", "follow_up" }) do
          for _, reason in ipairs({ "death", "returned_to_work", "no_longer_wanted" }) do
            local r = t.transition { program = "return_to_work", case = { stage = s }, to = "closure",
                                     data = { reason = reason } }
            t.ok(r.ok, s .. "/" .. reason .. ": " .. tostring(r.reason))
          end
        end
        local r = t.record { program = "return_to_work", kind = "closure",
                             record = { reason = "no_longer_wanted", evaluation = "본인 의사" } }
        t.eq(r.result.reason_label, "서비스 불희망")
        r = t.record { program = "return_to_work", kind = "closure", record = { reason = "bored", evaluation = "x" } }
        t.eq(r.field, "reason")
      end },
    { name = "a follow-up with new needs suggests changing the plan", run = function(t)
        local r = t.record { program = "return_to_work", kind = "follow_up",
                             case = { stage = "follow_up", status = "follow_up" },
                             record = { date = "2026-06-01", content = "사업주 상담: 업무 적응 어려움", new_needs = true } }
        t.ok(r.ok, r.reason)
        t.ok(string.find(r.result.recommendation.reasons[1], "재활계획 변경", 1, true))
      end },
    { name = "an ended case reopens into a changed plan", run = function(t)
        local r = t.transition { program = "return_to_work", case = { stage = "closure", status = "ended" },
                                 to = "planning", reopen = true }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "return_to_work", case = { stage = "closure", status = "ended" },
                           to = "initial_counseling", reopen = true }
        t.eq(r.kind, "not_allowed")
      end },
  },
}
