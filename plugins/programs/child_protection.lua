-- 아동학대예방 및 피해아동보호 (protection of abused children), case
-- management by the 아동보호전문기관 once a report investigated by the
-- 시·군·구 is judged to be abuse and converted into a case (사례전환).
-- Stage map: seed 003 (희망이음 표준 프로세스 표, row "아동학대예방 및 피해아동 보고"):
--   1–2 사례전환 | 3 사례 담당자 지정 | 4–5 안전평가 | 6 서비스 계획 |
--   7 서비스 제공 | 8 사례점검 | 9 종결 | 10 사후관리.
-- The table's empty cells are read as the step to their left spanning them
-- (as "서비스 제공 및 점검" spans 7–8 in the 통합사례관리 row).
-- Linkage: seed 001 I.2 드림스타트 (0세~만 12세, 학대 및 성폭력피해아동 우선 지원) and
-- II.2 아동통합보호 (읍·면·동 – 희망복지지원단 – 드림스타트).
--
-- Not in the seeds, from the brief / 아동복지법: 아동 = 18세 미만. The 안전평가
-- domains and its three outcomes (안전 / 조건부 안전 / 위험) are the usual
-- safety-assessment form, not a seed's text.
--
-- person.eligibility keys read here:
--   abuse_determined  사례판단 결과 아동학대 (피해아동) (true)
--   primary_school    초등학교 재학 (만 12세 이상이어도 드림스타트 대상)

local CHILD_UNDER = 18 -- 아동: 18세 미만
local DREAM_START_UNTIL = 12 -- 드림스타트: 0세(임산부) ~ 만 12세(초등학생 이하)

-- 안전평가 영역, each 1 (낮음) – 3 (높음)
local SAFETY_DOMAINS = { "abuse_severity", "child_vulnerability", "caregiver_capacity", "family_environment",
                         "recurrence_risk" }
local SAFETY = {
  safe = "안전",
  conditionally_safe = "조건부 안전 (안전계획 수립)",
  unsafe = "위험 (분리보호 등 안전조치 검토)",
}

-- 만 나이 (international age): the server's person.age, else from birth_date.
local age_of = sarye.lib.age

-- The outcome of the newest 안전평가 (records come oldest first), or nil.
local function last_safety(ctx, case)
  local s
  for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })) do
    if r.result and r.result.safety then s = r.result.safety end
  end
  return s
end

---@type sarye.Program
return {
  id = "child_protection",
  kind = "program",
  version = "1.1.0",
  api = 1,
  name = "아동학대 피해아동보호",

  stages = {
    { id = "discovery",          label = "사례전환" },
    { id = "initial_counseling", label = "사례전환" },
    { id = "intake",             label = "사례 담당자 지정" },
    { id = "assessment",         label = "안전평가" },
    { id = "selection",          label = "안전평가" },
    { id = "planning",           label = "서비스 계획" },
    { id = "delivery",           label = "서비스 제공" },
    { id = "monitoring",         label = "사례점검" },
    { id = "closure",            label = "종결" },
    { id = "follow_up",          label = "사후관리" },
  },

  -- 사례점검 may send the case back to 서비스 제공, 서비스 계획 or a new
  -- 안전평가; every open step may close (the core asks a reason).
  transitions = {
    discovery          = { "initial_counseling", "closure" },
    initial_counseling = { "intake", "closure" },
    intake             = { "assessment", "closure" },
    assessment         = { "selection", "closure" },
    selection          = { "planning", "closure" },
    planning           = { "delivery", "closure" },
    delivery           = { "monitoring", "assessment", "closure" },
    monitoring         = { "delivery", "planning", "assessment", "closure" },
    closure            = { "follow_up" },
  },

  -- 사후관리 중 재학대 의심 → 다시 안전평가
  reopen_to = { "assessment" },

  instruments = {
    safety = { domains = SAFETY_DOMAINS, scale = { min = 1, max = 3 } },
  },

  closure_reasons = {
    goal_achieved = "목표달성 (재학대 위험 해소)",
    death = "사망",
    moved = "전출",
    refused = "거부",
    lost_contact = "연락두절",
    transferred = "이관",
    aged_out = "아동 연령 도래 (만 18세)",
    protective_placement = "보호조치 (시설·가정위탁 등)",
  },

  -- The facts eligibility reads (person.eligibility[key]) and what each means:
  -- GET /v1/programs/child_protection lists them, so a client can ask for them.
  facts = {
    abuse_determined = "아동학대로 사례판단된 피해아동 (true/false)",
  },

  eligibility = function(person, case, ctx)
    local e = person.eligibility or {}
    local age = age_of(person, ctx.today)
    if not age then return false, "아동의 생년월일이 필요합니다" end
    if age >= CHILD_UNDER then
      return false, string.format("피해아동보호 대상은 18세 미만 아동입니다 (나이 %d세)", age)
    end
    if e.abuse_determined ~= true then
      return false, "아동학대로 사례판단된 피해아동이 사례전환 대상입니다 (eligibility.abuse_determined)"
    end
    return true
  end,

  records = {
    closure = { required = { "reason", "evaluation" } },
  },

  guards = {
    -- 안전평가 → 서비스 계획: the safety assessment is on record.
    ["selection->planning"] = function(case, input, ctx)
      if not last_safety(ctx, case) then
        return false, "안전평가를 기록한 뒤에 서비스 계획을 세웁니다"
      end
      return true
    end,
    ["*->closure"] = function(case, input, ctx)
      local reason = input.data.reason
      -- 아동 연령 도래: only once the child is 18.
      if reason == "aged_out" then
        local age = age_of(ctx.person() or {}, ctx.today)
        if not age or age < CHILD_UNDER then
          return false, string.format("연령 도래에 의한 종결은 만 18세부터입니다 (나이 %s세)", tostring(age))
        end
      -- 목표달성: not while the newest 안전평가 says the child is unsafe.
      elseif reason == "goal_achieved" and last_safety(ctx, case) == "unsafe" then
        return false, "최근 안전평가 결과가 '위험'입니다: 안전평가를 다시 한 뒤에 목표달성으로 종결합니다"
      end
      return true
    end,
  },

  hooks = {
    enter = { closure = function(case, input, ctx) ctx.clear_deadline("child_age_limit") end },
  },

  on_record = {
    -- The case is due for closure or transfer when the child turns 18.
    open = function(case, rec, ctx)
      local b = (ctx.person() or {}).birth_date
      if type(b) ~= "string" or not sarye.date.valid(b) then return end
      local due = sarye.date.add_months(b, 12 * CHILD_UNDER)
      if due > ctx.today then ctx.set_deadline("child_age_limit", due, "아동 연령 종료 (만 18세): 종결 또는 이관 검토") end
    end,
    -- 안전평가 outcome; a child of Dream Start age is suggested for 드림스타트,
    -- which supports abused children first (seed 001 I.2 사업대상, II.2 아동통합보호).
    assessment = function(case, a, ctx)
      local worst, high = 0, {}
      for _, d in ipairs(SAFETY_DOMAINS) do
        local v = (a.domains or {})[d]
        local s = v and v.score or 0
        if s > worst then worst = s end
        if s == 3 then high[#high + 1] = d end
      end
      local safety = worst >= 3 and "unsafe" or worst == 2 and "conditionally_safe" or "safe"
      local reasons = { SAFETY[safety] .. (#high > 0 and (" (" .. table.concat(high, ", ") .. ")") or "") }
      local out = { safety = safety, safety_label = SAFETY[safety],
                    recommendation = { selection = "case_management", reasons = reasons } }
      local p = ctx.person() or {}
      local age = age_of(p, ctx.today)
      if age and (age <= DREAM_START_UNTIL or (p.eligibility or {}).primary_school == true) then
        out.recommendation.referrals = { "dream_start" }
        reasons[#reasons + 1] = "드림스타트 의뢰 검토: 만 12세 이하(초등학생 이하) 학대피해아동 우선 지원"
      end
      return out
    end,
  },

  tests = {
    { name = "stage map from seed 003", run = function(t)
        local rules = t.rules("child_protection")
        t.eq(rules.first_stage, "discovery")
        local labels = {}
        for i, s in ipairs(rules.stages) do labels[i] = s.label end
        t.eq(labels, { "사례전환", "사례전환", "사례 담당자 지정", "안전평가", "안전평가", "서비스 계획",
                       "서비스 제공", "사례점검", "종결", "사후관리" })
      end },
    { name = "an abused child under 18 is eligible; 18 is not", run = function(t)
        local r = t.open { program = "child_protection", today = "2026-03-01",
                           person = { birth_date = "2014-09-01", age = 11, eligibility = { abuse_determined = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "child_protection", today = "2026-03-01",
                     person = { birth_date = "2008-01-01", age = 18, eligibility = { abuse_determined = true } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "18세", 1, true))
      end },
    { name = "a child not judged abused is not converted into a case", run = function(t)
        local r = t.open { program = "child_protection", today = "2026-03-01",
                           person = { birth_date = "2014-09-01", age = 11, eligibility = {} } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "사례판단", 1, true))
      end },
    { name = "the case opens with the child's 18th birthday due", run = function(t)
        local r = t.record { program = "child_protection", kind = "open", today = "2026-03-01",
                             person = { birth_date = "2014-09-01" }, record = { source = "referral" } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.set[1].kind, "child_age_limit")
        t.eq(r.effects.set[1].due_on, "2032-09-01")
      end },
    { name = "안전평가: any domain high → unsafe; medium → conditionally safe; else safe", run = function(t)
        local function safety(domains)
          local r = t.record { program = "child_protection", kind = "assessment", subkind = "safety",
                               person = { age = 15 }, record = { domains = domains } }
          t.ok(r.ok, r.reason)
          return r.result
        end
        t.eq(safety({ abuse_severity = { score = 3 }, caregiver_capacity = { score = 1 } }).safety, "unsafe")
        t.eq(safety({ recurrence_risk = { score = 2 } }).safety, "conditionally_safe")
        t.eq(safety({ recurrence_risk = { score = 1 }, family_environment = { score = 1 } }).safety, "safe")
        local r = t.record { program = "child_protection", kind = "assessment", subkind = "safety",
                             record = { domains = { abuse_severity = { score = 4 } } } }
        t.eq(r.field, "domains.abuse_severity.score")
      end },
    { name = "a child of Dream Start age is suggested for 드림스타트", run = function(t)
        local r = t.record { program = "child_protection", kind = "assessment", subkind = "safety",
                             today = "2026-03-01", person = { birth_date = "2016-01-01", age = 10 },
                             record = { domains = { recurrence_risk = { score = 2 } } } }
        t.eq(r.result.recommendation.referrals, { "dream_start" })
        t.ok(string.find(r.result.recommendation.reasons[2], "드림스타트", 1, true))
        r = t.record { program = "child_protection", kind = "assessment", subkind = "safety",
                       today = "2026-03-01", person = { birth_date = "2012-01-01", age = 14 },
                       record = { domains = { recurrence_risk = { score = 2 } } } }
        t.eq(r.result.recommendation.referrals, nil)
        r = t.record { program = "child_protection", kind = "assessment", subkind = "safety",
                       today = "2026-03-01", person = { age = 13, eligibility = { primary_school = true } },
                       record = { domains = { recurrence_risk = { score = 2 } } } }
        t.eq(r.result.recommendation.referrals, { "dream_start" })
      end },
    { name = "no 서비스 계획 without a 안전평가", run = function(t)
        local r = t.transition { program = "child_protection", case = { stage = "selection" }, to = "planning",
                                 queries = { records_of_case = {} } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "child_protection", case = { stage = "selection" }, to = "planning",
                           queries = { records_of_case = { { kind = "assessment", result = { safety = "conditionally_safe" } } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "서비스 계획")
      end },
    { name = "steps in order, with the 사례점검 loops", run = function(t)
        local r = t.transition { program = "child_protection", case = { stage = "discovery" }, to = "intake" }
        t.eq(r.kind, "not_allowed")
        for _, to in ipairs({ "delivery", "planning", "assessment" }) do
          r = t.transition { program = "child_protection", case = { stage = "monitoring" }, to = to }
          t.ok(r.ok, to .. ": " .. tostring(r.reason))
        end
      end },
    { name = "every open step may close, then follow-up", run = function(t)
        for _, s in ipairs({ "discovery", "initial_counseling", "intake", "assessment", "selection", "planning",
                             "delivery", "monitoring" }) do
          local r = t.transition { program = "child_protection", case = { stage = s }, to = "closure",
                                   data = { reason = "transferred" } }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
          t.eq(r.effects.clear, { "child_age_limit" })
        end
        local r = t.transition { program = "child_protection", case = { stage = "closure" }, to = "follow_up" }
        t.ok(r.ok, r.reason)
      end },
    { name = "연령 도래 closes only from 18", run = function(t)
        local r = t.transition { program = "child_protection", case = { stage = "delivery" }, to = "closure",
                                 today = "2026-03-01", data = { reason = "aged_out" }, person = { age = 17 } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "child_protection", case = { stage = "delivery" }, to = "closure",
                           today = "2026-03-01", data = { reason = "aged_out" }, person = { age = 18 } }
        t.ok(r.ok, r.reason)
      end },
    { name = "목표달성 not while the newest 안전평가 is unsafe", run = function(t)
        local r = t.transition { program = "child_protection", case = { stage = "monitoring" }, to = "closure",
                                 data = { reason = "goal_achieved" },
                                 queries = { records_of_case = { { result = { safety = "safe" } }, { result = { safety = "unsafe" } } } } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "child_protection", case = { stage = "monitoring" }, to = "closure",
                           data = { reason = "goal_achieved" },
                           queries = { records_of_case = { { result = { safety = "unsafe" } }, { result = { safety = "safe" } } } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "reopening from follow-up goes to a new 안전평가", run = function(t)
        local r = t.transition { program = "child_protection", case = { stage = "follow_up", status = "follow_up" },
                                 to = "assessment", reopen = true }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "안전평가")
        r = t.transition { program = "child_protection", case = { stage = "follow_up", status = "follow_up" },
                           to = "planning", reopen = true }
        t.eq(r.kind, "not_allowed")
      end },
    { name = "closure reasons come from the list", run = function(t)
        local r = t.record { program = "child_protection", kind = "closure",
                             record = { reason = "protective_placement", evaluation = "가정위탁 보호조치" } }
        t.eq(r.result.reason_label, "보호조치 (시설·가정위탁 등)")
        r = t.record { program = "child_protection", kind = "closure", record = { reason = "bored", evaluation = "x" } }
        t.eq(r.field, "reason")
      end },
  },
}
