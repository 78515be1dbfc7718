-- 자살 위기지원 (자살예방 사례관리): 자살고위험군 사례관리와 위기개입, run by
-- 정신건강복지센터·자살예방센터 under the 자살예방사업 of the 정신건강사업
-- (seed 001 I.7 사업 내용; 자살예방센터: 자살예방법, seed 003 관련 기관).
-- Stage map: seed 003 (희망이음 표준 프로세스 표, 사회서비스 공통업무 지침)
-- "자살 위기지원": 대상자 발굴 (표준 1–2) → 접수 (3) → 조사 및 선정 (4–5) →
-- 계획수립 (6) → 서비스 제공 (7) → 평가 (8) → 종결 (9) → 사후관리 (10);
-- 공통업무 사례회의.
-- Rules: seed 001 (2020 공공부문 사례관리 연계·협력 업무안내)
--   I.7 정신건강사례관리 의뢰기준 (자살 및 자타해 위험) and 의뢰절차: 응급사례
--       (자살을 시도하는 상황), 위기사례 (자살시도 경험, 구체적인 자살 계획),
--       집중사례 (반복적인 자살사고)
--   I.8 통합사례관리 중점대상: 복지사각지대 위기가구 중 자살 고위험군
--   부록1 4. 다) (2020년 정신건강 사업 안내): 의뢰된 대상자 중 6개월 이상
--       접촉이 불가능하거나 미동의로 서비스 제공이 불가능한 경우 의뢰 기관에 알림
--   부록3 2. 정신건강복지센터 자살예방 상담: 자살 가능성이 있는 사람 또는
--       주변인 (자살유가족, 자살고위험군 포함)
--
-- person.eligibility facts read here (any one makes the person eligible):
--   suicide_risk       자살 위험 (자살고위험군)
--   suicide_attempt    자살시도 경험
--   suicide_ideation   자살사고
--   suicide_bereaved   자살유가족 (주변인)
-- Transition data read here: emergency_action = "…" (응급 조치), service_consent = true.

local REFERRED = { referral = true, gov_referral = true }
local NOTICE_MONTHS = 6
local RISK_FACTS = { "suicide_risk", "suicide_attempt", "suicide_ideation", "suicide_bereaved" }

local TIERS = {
  emergency = { label = "응급사례", handling = "경찰 및 119 구급대 호출 후 필요 시 응급입원 조치" },
  crisis = { label = "위기사례", handling = "자·타해 위험에 대한 정보제공, 필요 시 방문 동행(의뢰기관 사례관리자와 동행)" },
  intensive = { label = "집중사례", handling = "자살 위험성에 대한 정보제공, 정신건강서비스 이용 동의, 필요 시 방문 동행(의뢰기관 사례관리자와 동행)" },
  none = { label = "해당 없음", handling = "일반 사례관리" },
}
local RISK_DOMAINS = { "attempt_now", "harm_intoxicated", "attempt_history", "suicide_plan", "repeated_ideation" }

local fact = sarye.lib.fact -- a recorded fact says yes ("없음", "no", 0 ... say no)

local function tier_of(d)
  local function yes(k) return type(d[k]) == "table" and type(d[k].score) == "number" and d[k].score >= 1 end
  if yes("attempt_now") or yes("harm_intoxicated") then return "emergency" end
  if yes("attempt_history") or yes("suicide_plan") then return "crisis" end
  if yes("repeated_ideation") then return "intensive" end
  return "none"
end

local function is_risk_record(r)
  if r.kind ~= nil and r.kind ~= "assessment" then return false end
  if r.subkind == "risk_tier" then return true end
  local d = r.data and r.data.domains
  if type(d) ~= "table" then return false end
  for _, k in ipairs(RISK_DOMAINS) do if d[k] then return true end end
  return false
end

local function latest_risk(ctx, case)
  local last
  for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })) do
    if is_risk_record(r) then last = r end
  end
  return last
end

---@type sarye.Program
return {
  id = "suicide_crisis",
  kind = "program",
  version = "1.1.0",
  api = 1,
  name = "자살 위기지원",
  covers = {
    { name = "자살예방사례관리", why = "seed 003 사례관리 대상사업 표의 이름; 표준 프로세스 표의 '자살 위기지원'과 같은 사업" },
  },

  stages = {
    { id = "discovery",          label = "대상자 발굴" },
    { id = "initial_counseling", label = "대상자 발굴" },
    { id = "intake",             label = "접수" },
    { id = "assessment",         label = "조사 및 선정" },
    { id = "selection",          label = "조사 및 선정" },
    { id = "planning",           label = "계획수립" },
    { id = "delivery",           label = "서비스 제공" },
    { id = "monitoring",         label = "평가" },
    { id = "closure",            label = "종결" },
    { id = "follow_up",          label = "사후관리" },
  },

  -- 평가 → 서비스 계속, 계획 수정, 재조사 (위험이 다시 높아질 때);
  -- closure from every open step; 종결 후 사후관리.
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

  -- 사후관리 중 위기 재발 → 접수 또는 조사부터 다시
  reopen_to = { "intake", "assessment" },

  closure_reasons = {
    goal_achieved = "목표달성 (위기 해소)",
    death = "사망",
    moved = "전출",
    refused = "거부 (서비스 미동의)",
    lost_contact = "연락두절 (접촉 불가)",
    transferred = "이관",
    -- 응급사례: 필요 시 응급입원 조치 (seed 001 I.7)
    admitted = "입원 (응급입원·치료기관 의뢰)",
    other = "기타",
  },

  -- 자살 가능성이 있는 사람 또는 주변인 (자살유가족, 자살고위험군 포함)
  -- (seed 001 부록3 2.). A referral (의뢰기준: 자살 및 자·타해 위험이 의심된다,
  -- seed 001 I.7) carries the referrer's judgement of risk.
  -- The facts eligibility reads (person.eligibility[key]) and what each means:
  -- GET /v1/programs/suicide_crisis lists them, so a client can ask for them.
  facts = {
    suicide_risk = "자살 위험, 자살고위험군 (true/false)",
    suicide_attempt = "자살시도 경험 (true/false)",
    suicide_ideation = "자살사고 (true/false)",
    suicide_bereaved = "자살유가족, 주변인 (true/false)",
  },

  eligibility = function(person, case, ctx)
    if REFERRED[case.source] then return true end
    local e = person.eligibility or {}
    for _, k in ipairs(RISK_FACTS) do if fact(e, k) then return true end end
    return false, "자살 위기지원은 자살 가능성이 있는 사람 또는 주변인(자살유가족, 자살고위험군 포함)이 대상입니다: 자살 위험 사실(suicide_risk, suicide_attempt, suicide_ideation, suicide_bereaved)을 기록하세요"
  end,

  instruments = {
    -- 응급·위기·집중사례 구분 (seed 001 I.7 의뢰절차; 주취 자·타해는 I.6 응급사례):
    -- 0 = 해당 없음, 1 = 해당
    risk_tier = { domains = RISK_DOMAINS, scale = { min = 0, max = 1 } },
  },

  records = {
    closure = { required = { "reason", "evaluation" } },
  },

  on_record = {
    -- 의뢰된 대상자: 6개월 안에 접촉하지 못하면 의뢰 기관에 알림 (부록1 4. 다))
    open = function(case, rec, ctx)
      if REFERRED[case.source] then
        ctx.set_deadline("referrer_notice", sarye.date.add_months(ctx.today, NOTICE_MONTHS),
                         "의뢰 기관 알림: 의뢰 후 6개월 이상 접촉 불가 또는 미동의 시 의뢰 기관에 알림")
      end
    end,
    assessment = function(case, a, ctx)
      local d = a.domains or {}
      local id = tier_of(d)
      local tier = TIERS[id]
      if id == "emergency" then
        ctx.set_deadline("emergency_response", ctx.today, "응급사례: " .. tier.handling .. " (즉시)")
      else
        ctx.clear_deadline("emergency_response")
      end
      return { tier = { id = id, label = tier.label, handling = tier.handling } }
    end,
    closure = function(case, rec, ctx)
      if REFERRED[case.source] and (rec.reason == "refused" or rec.reason == "lost_contact") then
        return { referrer_notice = "의뢰 기관에 알림: 접촉 불가 또는 대상자 미동의로 서비스 제공이 현실적으로 불가능" }
      end
    end,
  },

  hooks = {
    enter = {
      -- the person is reached (first interview)
      initial_counseling = function(case, input, ctx)
        if REFERRED[case.source] then ctx.clear_deadline("referrer_notice") end
      end,
      planning = function(case, input, ctx) ctx.clear_deadline("emergency_response") end,
      closure = function(case, input, ctx)
        if REFERRED[case.source] then ctx.clear_deadline("referrer_notice") end
        ctx.clear_deadline("emergency_response")
      end,
    },
  },

  guards = {
    -- 조사 및 선정: 자살 위험 구분을 조사한 뒤에 선정
    ["assessment->selection"] = function(case, input, ctx)
      if not latest_risk(ctx, case) then
        return false, "자살 위험 구분(응급·위기·집중사례) 조사를 기록한 뒤에 선정합니다 (risk_tier)"
      end
      return true
    end,
    -- 응급·위기·집중사례별 절차 (seed 001 I.7), by the latest screening
    ["selection->planning"] = function(case, input, ctx)
      local r = latest_risk(ctx, case)
      local id = r and tier_of(r.data and r.data.domains or {}) or "none"
      if id == "emergency" then
        local act = input.data.emergency_action
        if type(act) ~= "string" or act == "" then
          return false, "응급사례: 경찰 및 119 구급대 호출 후 필요 시 응급입원 조치를 먼저 하고 기록하세요 (data.emergency_action)"
        end
      elseif id == "intensive" and input.data.service_consent ~= true then
        return false, "집중사례: 정신건강서비스 이용 동의를 받은 뒤에 계획을 수립합니다 (data.service_consent)"
      end
      return true
    end,
  },

  tests = {
    { name = "first stage is 대상자 발굴; 조사 및 선정 spans two stages", run = function(t)
        local rules = t.rules("suicide_crisis")
        t.eq(rules.first_stage, "discovery")
        t.eq(rules.stages[1].label, "대상자 발굴")
        t.eq(rules.stages[2].label, "대상자 발굴")
        t.eq(rules.stages[3].label, "접수")
        t.eq(rules.stages[4].label, "조사 및 선정")
        t.eq(rules.stages[5].label, "조사 및 선정")
        t.eq(rules.stages[6].label, "계획수립")
        t.eq(rules.stages[8].label, "평가")
        t.eq(rules.stages[10].label, "사후관리")
      end },
    { name = "a person at risk or bereaved is eligible; nobody else unless referred", run = function(t)
        local r = t.open { program = "suicide_crisis", person = { birth_date = "1985-01-01", age = 41, eligibility = { suicide_attempt = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "suicide_crisis", person = { age = 60, eligibility = { suicide_bereaved = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "suicide_crisis", person = { age = 41, eligibility = { suicide_risk = false } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "자살유가족", 1, true))
        r = t.open { program = "suicide_crisis", source = "gov_referral", person = { age = 41, eligibility = {} } }
        t.ok(r.ok, r.reason)
      end },
    { name = "a referred case gets the 6-month referrer notice; contact clears it", run = function(t)
        local r = t.record { program = "suicide_crisis", kind = "open", case = { source = "referral" },
                             record = { source = "referral" }, today = "2026-01-01" }
        t.eq(r.effects.set[1].kind, "referrer_notice")
        t.eq(r.effects.set[1].due_on, "2026-07-01")
        r = t.record { program = "suicide_crisis", kind = "open", case = { source = "outreach" },
                       record = { source = "outreach" }, today = "2026-01-01" }
        t.eq(#r.effects.set, 0)
        r = t.transition { program = "suicide_crisis", case = { stage = "discovery", source = "referral" }, to = "initial_counseling" }
        t.eq(r.effects.clear, { "referrer_notice" })
      end },
    { name = "an emergency screening is due today; others clear it", run = function(t)
        local r = t.record { program = "suicide_crisis", kind = "assessment", subkind = "risk_tier", today = "2026-05-05",
                             record = { domains = { attempt_now = { score = 1 } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.tier.id, "emergency")
        t.eq(r.effects.set[1].kind, "emergency_response")
        t.eq(r.effects.set[1].due_on, "2026-05-05")
        r = t.record { program = "suicide_crisis", kind = "assessment", subkind = "risk_tier",
                       record = { domains = { attempt_history = { score = 1 } } } }
        t.eq(r.result.tier.id, "crisis")
        t.eq(r.effects.clear, { "emergency_response" })
        r = t.record { program = "suicide_crisis", kind = "assessment", subkind = "risk_tier",
                       record = { domains = { attempt_now = { score = 0 }, repeated_ideation = { score = 1 } } } }
        t.eq(r.result.tier.id, "intensive")
      end },
    { name = "selection needs the risk screening", run = function(t)
        local r = t.transition { program = "suicide_crisis", case = { stage = "assessment" }, to = "selection",
                                 queries = { records_of_case = {} } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "suicide_crisis", case = { stage = "assessment" }, to = "selection",
                           queries = { records_of_case = { { kind = "assessment", subkind = "risk_tier",
                                                              data = { domains = { suicide_plan = { score = 1 } } } } } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "emergency needs the emergency action, intensive needs consent, crisis goes ahead", run = function(t)
        local function q(domains)
          return { records_of_case = {
            { kind = "assessment", subkind = "risk_tier", data = { domains = { repeated_ideation = { score = 1 } } } },
            { kind = "assessment", subkind = "risk_tier", data = { domains = domains } } } }
        end
        local r = t.transition { program = "suicide_crisis", case = { stage = "selection" }, to = "planning",
                                 queries = q({ attempt_now = { score = 1 } }) }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "119", 1, true))
        r = t.transition { program = "suicide_crisis", case = { stage = "selection" }, to = "planning",
                           data = { emergency_action = "112·119 출동, 응급입원" }, queries = q({ attempt_now = { score = 1 } }) }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.clear, { "emergency_response" })
        r = t.transition { program = "suicide_crisis", case = { stage = "selection" }, to = "planning",
                           queries = q({ repeated_ideation = { score = 1 } }) }
        t.eq(r.kind, "refused")
        r = t.transition { program = "suicide_crisis", case = { stage = "selection" }, to = "planning",
                           data = { service_consent = true }, queries = q({ repeated_ideation = { score = 1 } }) }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "suicide_crisis", case = { stage = "selection" }, to = "planning",
                           queries = q({ suicide_plan = { score = 1 } }) }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "계획수립")
      end },
    { name = "a referred person unreachable closes with a notice to the referrer", run = function(t)
        local r = t.record { program = "suicide_crisis", kind = "closure", case = { source = "referral" },
                             record = { reason = "refused", evaluation = "서비스 거부" } }
        t.ok(r.ok, r.reason)
        t.ok(r.result.referrer_notice)
        t.eq(r.result.reason_label, "거부 (서비스 미동의)")
      end },
    { name = "walk in order; loops; closure from any step; follow-up and reopen", run = function(t)
        local r = t.transition { program = "suicide_crisis", case = { stage = "intake" }, to = "planning" }
        t.eq(r.kind, "not_allowed")
        r = t.transition { program = "suicide_crisis", case = { stage = "monitoring" }, to = "assessment" }
        t.ok(r.ok, r.reason)
        for _, s in ipairs({ "discovery", "initial_counseling", "intake", "assessment", "selection", "planning",
                             "delivery", "monitoring" }) do
          r = t.transition { program = "suicide_crisis", case = { stage = s }, to = "closure", data = { reason = "admitted" } }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
        end
        r = t.transition { program = "suicide_crisis", case = { stage = "closure" }, to = "follow_up" }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "suicide_crisis", case = { stage = "follow_up", status = "follow_up" },
                           to = "assessment", reopen = true }
        t.ok(r.ok, r.reason)
      end },
  },
}
