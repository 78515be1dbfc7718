-- 3대 복지관 사례관리: 종합사회복지관·노인복지관·장애인복지관의 사례관리,
-- the private (민간) side of the public–private network. 민간복지기관은
-- 심층 상담 및 치료가 필요한 전문사례를 맡는다 (seed 004 I.2 사례유형).
-- Stage map: seed 003 (희망이음 표준 프로세스 표, 사회서비스 공통업무 지침)
-- "3대 복지관 사례관리": the same steps as 통합사례관리 — 대상자 발굴 → 초기상담 →
-- 대상자 접수 → 욕구 및 위기도 조사 → 대상자 구분 및 선정 → 서비스 제공계획
-- 수립 → 서비스 제공 및 점검 (표준 7–8) → 종결 → 사후관리; 공통업무 사례회의/
-- 원스크린 조회 (the core's one-screen view, under the person's consent).
-- Process rules: the national guideline part of seed 004 (II "사례관리 과정별
-- 내용 (보건복지부 지침 근거)", III.1 초기상담지 필수 기록 사항), which this
-- program shares with 통합사례관리; seed 001 II.1 (사례관리 종결 시 의뢰 기관에
-- 종결 통보, 통보 받은 의뢰 기관은 종결의 적절성 확인). Nothing in the seeds
-- limits who a 복지관 may serve, so there is no eligibility rule; the
-- Dongjak-only rules (30일 내 계획, 종결 1개월 전 고지 …) stay in the region.

-- 초기상담 / 욕구조사 영역 (seed 004 초기상담지: 안전, 건강, 일상생활, 사회관계,
-- 경제, 교육, 취업, 인권)
local DOMAINS = { "safety", "health", "daily_living", "social_relations", "economy", "education",
                  "employment", "rights" }

-- 목표 설정시 좋지 않은 예: 삶의 질 향상, 정서적 안정 등 모호하거나 원대한 목표 (seed 004 II.5)
local VAGUE_GOALS = { "삶의 질 향상", "삶의질 향상", "정서적 안정", "행복한 삶", "자립" }

local REFERRED = { referral = true, gov_referral = true }

local function span_months(start, finish)
  return sarye.date.diff_days(start, finish) / 30.44
end

-- The period of a goal: its own, or the span of its services.
local function goal_period(goal)
  if goal.start and goal["end"] then return goal.start, goal["end"] end
  local s, e
  for _, svc in ipairs(goal.services or {}) do
    if svc.start and (not s or svc.start < s) then s = svc.start end
    if svc["end"] and (not e or svc["end"] > e) then e = svc["end"] end
  end
  return s, e
end

---@type sarye.Program
return {
  id = "welfare_center",
  kind = "program",
  version = "1.0.0",
  api = 1,
  name = "3대 복지관 사례관리",

  stages = {
    { id = "discovery",          label = "대상자 발굴" },
    { id = "initial_counseling", label = "초기상담" },
    { id = "intake",             label = "대상자 접수" },
    { id = "assessment",         label = "욕구 및 위기도 조사" },
    { id = "selection",          label = "대상자 구분 및 선정" },
    { id = "planning",           label = "서비스 제공계획 수립" },
    { id = "delivery",           label = "서비스 제공 및 점검" },
    { id = "monitoring",         label = "서비스 제공 및 점검" },
    { id = "closure",            label = "종결" },
    { id = "follow_up",          label = "사후관리" },
  },

  -- 점검: 재사정 필요성 판단, 조정, 조기종결 (seed 004 II.6); closure from every step.
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

  -- 사후관리 중 새로운 문제나 욕구 → 재개입 (seed 004 II.8)
  reopen_to = { "intake", "assessment" },

  -- 욕구조사 (by domain, with notes) and 위기도 조사 (each domain 1–3, 3 = 만점) (seed 004 II.2)
  instruments = {
    needs = { domains = DOMAINS },
    crisis = { domains = DOMAINS, scale = { min = 1, max = 3 } },
  },

  closure_reasons = {
    goal_achieved = "목표달성",
    death = "사망",
    moved = "전출",
    refused = "거부",
    lost_contact = "연락두절",
    transferred = "이관",
    other = "기타",
  },

  records = {
    -- 초기상담지 필수 기록 사항 (seed 004 III.1): 상담내용, 주요문제 2가지,
    -- 서비스 연계 현황 (기존 받고 있는 서비스), 상담자 종합의견
    counseling = {
      required = { "domains", "main_problems", "opinion" },
      validate = function(case, rec, ctx)
        if rec.current_services == nil then
          return false, "초기상담지에 서비스 연계 현황(기존 받고 있는 서비스)을 current_services로 기록하세요 (없으면 빈 목록)"
        end
        return true
      end,
    },
    -- 서비스 제공계획: 대상자 스스로의 목표; 단기 3~6개월, 장기 6개월~1년 이상 (seed 004 II.5)
    plan = {
      validate = function(case, plan, ctx)
        for i, goal in ipairs(plan.goals or {}) do
          for _, vague in ipairs(VAGUE_GOALS) do
            if goal.text == vague or string.find(goal.text, vague, 1, true) and #goal.text <= #vague + 6 then
              return false, string.format("목표 %d: '%s'는 모호하거나 원대한 목표입니다. 대상자의 관점에서 구체적인 목표를 세워 주세요", i, goal.text)
            end
          end
          local s, e = goal_period(goal)
          if s and e then
            local m = span_months(s, e)
            if goal.term == "short" and m > 6.1 then
              return false, string.format("목표 %d: 단기목표는 3~6개월 이내에 달성할 목표입니다 (%.1f개월)", i, m)
            elseif goal.term == "long" and m < 5.9 then
              return false, string.format("목표 %d: 장기목표는 6개월~1년 이상의 개입이 필요한 목표입니다 (%.1f개월)", i, m)
            end
          end
        end
        return true
      end,
    },
    -- 종결: 목표달성정도, 욕구(위기)수준의 변화 등을 평가 (seed 004 II.7)
    closure = { required = { "reason", "evaluation" } },
  },

  on_record = {
    -- 대상자 구분: 개입 기간 1개월 이상 예상 시 사례관리 가구, 1개월 미만
    -- 서비스 연계 가구, 그 밖에는 미선정 (seed 004 II.4)
    assessment = function(case, a, ctx)
      local months = a.expected_intervention_months
      if months and months >= 1 then
        return { recommendation = { selection = "case_management",
                                    reasons = { string.format("개입 기간 %s개월 예상 (1개월 이상): 사례관리 가구", months) } } }
      elseif months and months > 0 then
        return { recommendation = { selection = "service_linkage",
                                    reasons = { string.format("개입 기간 %s개월 예상 (1개월 미만): 서비스 연계 가구", months) } } }
      end
      return { recommendation = { selection = "not_selected", reasons = { "예상 개입 기간이 없음: 미선정" } } }
    end,
    -- 점검 결과 재사정이 필요하면 조사 단계로 (seed 004 II.6)
    check = function(case, c, ctx)
      if c.needs_reassessment and (case.stage == "delivery" or case.stage == "monitoring") then
        ctx.move("assessment")
      end
    end,
    -- 사례관리 종결 시 의뢰 기관에 종결 통보, 통보 받은 의뢰 기관은 종결의
    -- 적절성 확인 (seed 001 II.1)
    closure = function(case, rec, ctx)
      if REFERRED[case.source] then
        return { referrer_notice = "의뢰 기관에 종결 통보: 의뢰 기관이 종결의 적절성을 확인합니다" }
      end
    end,
  },

  guards = {
    ["assessment->selection"] = function(case, input, ctx)
      for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })) do
        if r.kind == nil or r.kind == "assessment" then return true end
      end
      return false, "욕구 및 위기도 조사를 기록한 뒤에 대상자를 구분·선정합니다"
    end,
    -- 대상자 구분: only a case-management household gets a service plan (seed 004 II.4)
    ["selection->planning"] = function(case, input, ctx)
      local sel = input.data.selection
      if sel ~= "case_management" then
        return false, string.format(
          "서비스 제공계획은 사례관리 가구로 선정된 경우에만 수립합니다 (선정 결과: %s)", tostring(sel))
      end
      return true
    end,
    -- 서비스 제공계획 승인 후 제공 (seed 004 II.5 "서비스 제공계획 승인")
    ["planning->delivery"] = function(case, input, ctx)
      for _, p in ipairs(ctx.query("plans_of_case", { case_id = case.id })) do
        if p.status == "approved" then return true end
      end
      return false, "서비스 제공계획이 승인되어야 서비스를 제공할 수 있습니다"
    end,
  },

  tests = {
    { name = "first stage is 대상자 발굴; the integrated steps", run = function(t)
        local rules = t.rules("welfare_center")
        t.eq(rules.first_stage, "discovery")
        t.eq(rules.stages[1].label, "대상자 발굴")
        t.eq(rules.stages[3].label, "대상자 접수")
        t.eq(rules.stages[5].label, "대상자 구분 및 선정")
        t.eq(rules.stages[7].label, "서비스 제공 및 점검")
        t.eq(rules.stages[8].label, "서비스 제공 및 점검")
        t.eq(rules.stages[10].label, "사후관리")
      end },
    { name = "anyone may be opened (no eligibility rule in the seeds)", run = function(t)
        local r = t.open { program = "welfare_center", person = { birth_date = "2000-01-01", age = 26, eligibility = {} } }
        t.ok(r.ok, r.reason)
        t.eq(r.first_stage, "discovery")
      end },
    { name = "initial counseling records the current services", run = function(t)
        local rec = { domains = { economy = "체납" }, main_problems = { "economy" }, opinion = "위기" }
        local r = t.record { program = "welfare_center", kind = "counseling", record = rec }
        t.eq(r.kind, "refused")
        rec.current_services = {}
        r = t.record { program = "welfare_center", kind = "counseling", record = rec }
        t.ok(r.ok, r.reason)
        r = t.record { program = "welfare_center", kind = "counseling", record = { current_services = {}, opinion = "x" } }
        t.eq(r.field, "domains")
      end },
    { name = "selection by expected intervention", run = function(t)
        local r = t.record { program = "welfare_center", kind = "assessment", subkind = "needs",
                             record = { domains = { economy = { note = "체납" } }, expected_intervention_months = 3 } }
        t.eq(r.result.recommendation.selection, "case_management")
        r = t.record { program = "welfare_center", kind = "assessment", subkind = "needs",
                       record = { domains = { economy = {} }, expected_intervention_months = 0.5 } }
        t.eq(r.result.recommendation.selection, "service_linkage")
        r = t.record { program = "welfare_center", kind = "assessment", subkind = "crisis",
                       record = { domains = { safety = { score = 4 } } } }
        t.eq(r.field, "domains.safety.score")
      end },
    { name = "no selection without an assessment; only case management is planned", run = function(t)
        local r = t.transition { program = "welfare_center", case = { stage = "assessment" }, to = "selection",
                                 queries = { records_of_case = {} } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "welfare_center", case = { stage = "assessment" }, to = "selection",
                           queries = { records_of_case = { { kind = "assessment", subkind = "needs" } } } }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "welfare_center", case = { stage = "selection" }, to = "planning",
                           data = { selection = "service_linkage" } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "welfare_center", case = { stage = "selection" }, to = "planning",
                           data = { selection = "case_management" } }
        t.ok(r.ok, r.reason)
      end },
    { name = "no delivery without an approved plan", run = function(t)
        local r = t.transition { program = "welfare_center", case = { stage = "planning" }, to = "delivery",
                                 queries = { plans_of_case = { { status = "draft" } } } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "welfare_center", case = { stage = "planning" }, to = "delivery",
                           queries = { plans_of_case = { { status = "approved" } } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "vague and mis-termed goals are refused", run = function(t)
        local r = t.record { program = "welfare_center", kind = "plan",
                             record = { goals = { { term = "short", text = "정서적 안정" } } } }
        t.eq(r.kind, "refused")
        r = t.record { program = "welfare_center", kind = "plan",
                       record = { goals = { { term = "long", text = "자녀 학업 지속", start = "2026-01-01", ["end"] = "2026-03-01" } } } }
        t.eq(r.kind, "refused")
        r = t.record { program = "welfare_center", kind = "plan",
                       record = { goals = { { term = "long", text = "자녀 학업 지속", start = "2026-01-01", ["end"] = "2026-12-31" } } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "a check asking for re-assessment moves the case back", run = function(t)
        local r = t.record { program = "welfare_center", kind = "check", case = { stage = "monitoring" },
                             record = { needs_reassessment = true } }
        t.eq(r.move, "assessment")
        r = t.record { program = "welfare_center", kind = "check", case = { stage = "monitoring" }, record = {} }
        t.eq(r.move, nil)
      end },
    { name = "closing a referred case tells the referrer", run = function(t)
        local r = t.record { program = "welfare_center", kind = "closure", case = { source = "referral" },
                             record = { reason = "goal_achieved", evaluation = "목표 달성" } }
        t.ok(r.ok, r.reason)
        t.ok(string.find(r.result.referrer_notice, "적절성", 1, true))
        r = t.record { program = "welfare_center", kind = "closure", case = { source = "walk_in" },
                       record = { reason = "goal_achieved", evaluation = "목표 달성" } }
        t.eq(r.result.referrer_notice, nil)
      end },
    { name = "closure from any step; follow-up; reopen", run = function(t)
        for _, s in ipairs({ "discovery", "initial_counseling", "intake", "assessment", "selection", "planning",
                             "delivery", "monitoring" }) do
          local r = t.transition { program = "welfare_center", case = { stage = s }, to = "closure", data = { reason = "moved" } }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
        end
        local r = t.transition { program = "welfare_center", case = { stage = "closure" }, to = "follow_up" }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "welfare_center", case = { stage = "follow_up", status = "follow_up" },
                           to = "intake", reopen = true }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "welfare_center", case = { stage = "follow_up", status = "follow_up" },
                           to = "delivery", reopen = true }
        t.eq(r.kind, "not_allowed")
      end },
  },
}
