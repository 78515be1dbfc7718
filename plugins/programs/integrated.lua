-- 통합사례관리 (integrated case management), run by 읍·면·동 and the
-- 시·군·구 희망복지지원단.
-- Stage map: seed 003 (희망이음 표준 프로세스 표), where one program step,
-- "서비스 제공 및 점검", spans the standard stages 7 (제공) and 8 (점검).
-- Process rules: seed 002 (지방자치단체 사례관리 업무매뉴얼) and seed 004
-- (동작구 동 사례관리 업무 교육자료) II "사례관리 과정별 내용 (보건복지부 지침 근거)".

-- 초기상담 / 욕구조사 영역 (seed 004 초기상담지 작성 Tip: 안전, 건강,
-- 일상생활, 사회관계, 경제, 교육, 취업, 인권)
local DOMAINS = { "safety", "health", "daily_living", "social_relations", "economy", "education",
                  "employment", "rights" }

-- 목표 설정시 좋지 않은 예: 삶의 질 향상, 정서적 안정 등 모호하거나 원대한 목표 (seed 004 II.5)
local VAGUE_GOALS = { "삶의 질 향상", "삶의질 향상", "정서적 안정", "행복한 삶", "자립" }

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

local has_approved_plan = sarye.lib.has_approved_plan
local decisions = sarye.lib.decisions

-- 대상자 구분 (seed 004 II.4): "사례회의 결과를 바탕으로 대상자 가구를 사례관리,
-- 서비스 연계, 미선정 가구로 구분 - 대상가구의 특성 및 가용자원 등을 감안하여 개입
-- 기간을 기준으로 1개월 이상 예상 시 사례관리 가구, 1개월 미만 예상 시 서비스 연계
-- 가구로 구분". The household's class, and what it rests on:
--   1. the latest classification a case conference decided ({selection = ...}
--      in the meeting's decisions) — the conference's result governs;
--   2. else a region's own selection rule on an assessment (its
--      result.selection, e.g. Dongjak's 위기도 3점);
--   3. else the expected intervention of the latest assessment that gives
--      one (the 1-month rule the conference applies);
-- nil when none of these says anything.
local CLASSES = { case_management = "사례관리 가구", service_linkage = "서비스 연계 가구",
                  not_selected = "미선정 가구" }
local BASIS = { conference = "사례회의 결과", rule = "지역의 선정 기준(조사 결과)",
                assessment = "조사의 예상 개입 기간" }
local function by_months(months)
  if type(months) ~= "number" then return nil end
  return months >= 1 and "case_management" or months > 0 and "service_linkage" or "not_selected"
end
local function household_class(ctx, case)
  local last
  for _, d in ipairs(decisions(ctx, case, "selection")) do last = d.decision.selection end
  if last then return last, "conference" end
  local rule, months
  for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })) do
    if type(r.result) == "table" and CLASSES[r.result.selection] then rule = r.result.selection end
    local m = by_months(type(r.data) == "table" and r.data.expected_intervention_months)
    if m then months = m end
  end
  if rule then return rule, "rule" end
  if months then return months, "assessment" end
  return nil
end

-- How each class leaves the process (seed 004 II.4, II.7): a service-linkage
-- household closes once linked (종결 사유 "서비스 연계"), a household not
-- selected closes as 미선정; these two reasons belong to those classes only,
-- and a case-management household closes on its goals (or on what ends any
-- case: 사망, 전출, 거부, 연락두절, 이관).
local CLASS_REASON = { service_linkage = "service_linkage", not_selected = "not_selected" }
local ANY_CLASS = { death = true, moved = true, refused = true, lost_contact = true, transferred = true, other = true }

-- The lead organisation (seed 004 I 사례유형별 수행 기관, 착안사항 통합사례회의
-- 합의): once a case is led by another organisation than the one that opened
-- it, the lead works it. The organisation that handed it over keeps what
-- seed 001 II.1 leaves the 읍·면·동 for the cases it referred: "필요 시 사후
-- 관리 및 타 사업 사후관리 점검", and its seat at the conferences ("통합사례회의
-- (필수) … 해당 읍·면·동 사례관리 담당자"): conferences, follow-ups and
-- consultations stay shared (the records the loop at the end leaves alone).
local function not_lead(case, ctx)
  local lead = case.lead_org or case.org
  if lead == case.org or not ctx.actor or not ctx.actor.org or ctx.actor.org == lead then return nil end
  return string.format("이 사례의 주 사례관리기관은 %s입니다: 사례 수행은 주 사례기관이 합니다 "
                       .. "(%s은 사례회의 참석과 사후관리 점검만 합니다)", lead, ctx.actor.org)
end
local function lead_guard(case, input, ctx)
  local why = not_lead(case, ctx)
  if why then return false, why end
  return true
end
local function lead_validate(case, rec, ctx)
  local why = not_lead(case, ctx)
  if why then return false, why end
  return true
end

---@type sarye.Program
local P = {
  id = "integrated",
  kind = "program",
  version = "1.2.0",
  api = 1,
  name = "통합사례관리",

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

  -- Every step may also end in closure (비대상, 거부, 사망 …): the core
  -- asks a reason for every closure.
  transitions = {
    discovery          = { "initial_counseling", "closure" },
    initial_counseling = { "intake", "closure" },
    intake             = { "assessment", "closure" },
    assessment         = { "selection", "closure" },
    selection          = { "planning", "closure" },
    planning           = { "delivery", "closure" },
    -- 점검: 재사정 필요성 판단, 조정, 조기종결 (seed 004 II.6)
    delivery           = { "monitoring", "assessment", "closure" },
    monitoring         = { "delivery", "planning", "assessment", "closure" },
    closure            = { "follow_up" },
  },

  -- 사후관리 중 새로운 문제나 욕구 → 재개입 (seed 004 II.8)
  reopen_to = { "intake", "assessment" },

  -- 욕구조사 (by domain, with notes) and 위기도 조사 (each domain 1–3, 3 = 만점)
  instruments = {
    needs = { domains = DOMAINS },
    crisis = { domains = DOMAINS, scale = { min = 1, max = 3 } },
  },

  -- 종결 사유 (DOMAIN.md: goal achieved, death, moved, refusal, lost contact,
  -- transferred), and how the households that get no case management leave
  -- (seed 004 II.4 "사례관리, 서비스 연계, 미선정 가구로 구분"): 서비스 연계
  -- (linked within a month) and 미선정.
  closure_reasons = {
    goal_achieved = "목표달성",
    death = "사망",
    moved = "전출",
    refused = "거부",
    lost_contact = "연락두절",
    transferred = "이관",
    service_linkage = "서비스 연계 완료 (서비스 연계 가구)",
    not_selected = "미선정 (미선정 가구)",
    other = "기타",
  },

  -- Programs of seed 003's overview this one serves (희망이음 사례관리 사업별
  -- 시스템 현황: 통합사례관리(희망복지지원단))
  covers = {
    { name = "통합사례관리(희망복지지원단, 읍·면·동 찾아가는 보건복지전담팀)",
      why = "seed 003 표준 프로세스의 통합사례관리 프로세스 그대로" },
  },

  records = {
    -- 초기상담지 필수 기록 사항 (seed 004 III.1): 상담내용, 주요문제 2가지, 상담자 종합의견.
    -- The case type (사례 구분) is decided from it when it can be: "기타 모호한 대상은
    -- 희망복지지원팀과의 사전 협의를 통해 결정" (II.1) — a counseling may leave it open.
    counseling = { required = { "domains", "main_problems", "opinion" } },
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
    -- 대상자의 권리 (seed 004 IV): "사례관리계획수립에 참여할 권리, 자기결정권, 서비스
    -- 동의, 서비스 변경을 요청할 권리". The plan records how the person took part
    -- (participation) and their consent to the services (consent, and a
    -- service's own `consented`); a plan the person refused, or with a service
    -- they refused, is not approved — it is changed with them.
    plan_approval = {
      validate = function(case, plan, ctx)
        local data = plan.data or plan
        if type(data.consent) == "table" and data.consent.given == false then
          return false, "대상자가 서비스 제공계획에 동의하지 않았습니다: 대상자의 요청에 따라 계획을 변경하세요 (seed 004 IV 서비스 동의, 서비스 변경을 요청할 권리)"
        end
        for i, g in ipairs(data.goals or {}) do
          for j, svc in ipairs(g.services or {}) do
            if svc.consented == false then
              return false, string.format("목표 %d의 서비스 %d(%s)에 대상자가 동의하지 않았습니다 (seed 004 IV 서비스 동의)",
                                          i, j, tostring(svc.content))
            end
          end
        end
        return true
      end,
    },
    closure = { required = { "reason", "evaluation" } },
    -- 통합사례회의 참석 (seed 001 부록 통합사례관리 996-1026):
    --   정신보건·건강서비스가 주요 서비스인 대상자 → 보건소 또는 정신건강복지센터 담당자 반드시 참석
    --   의료급여 수급권자의 입·퇴원 관련 사례회의 → 의료급여관리사 반드시 참석
    --   종결심사 필요 시 서면으로 가능 (서면 회의는 종결회의만)
    meeting = {
      validate = function(case, m, ctx)
        if m.written and m.type ~= "closure" then
          return false, "서면 사례회의는 종결심사에만 허용됩니다"
        end
        -- 사례회의 (seed 004 II.3): "개입수준에 따라 통합사례관리, 서비스 연계, 미선정
        -- 가구로 분류하기 위한 회의", "욕구조사 결과 자료를 토대로 하되"; 내부사례회의
        -- "[동사례관리 가구인 경우] 사례관리, 서비스 연계, 미선정 가구로 분류".
        -- 대상자 구분 (II.4): "개입 기간을 기준으로 1개월 이상 예상 시 사례관리 가구,
        -- 1개월 미만 예상 시 서비스 연계 가구로 구분".
        for _, d in ipairs(m.decisions or {}) do
          if type(d) == "table" and d.selection ~= nil and (d.case_id == nil or d.case_id == case.id) then
            if not CLASSES[d.selection] then
              return false, string.format("selection '%s': 대상자 가구는 사례관리(case_management), 서비스 연계(service_linkage), 미선정(not_selected) 가구로 구분합니다",
                                          tostring(d.selection))
            end
            if m.type ~= "internal" and m.type ~= "integrated" then
              return false, "대상자 구분은 내부사례회의 또는 통합사례회의에서 합니다 (seed 004 II.3)"
            end
            if #ctx.query("records_of_case", { case_id = case.id, kind = "assessment" }) == 0 then
              return false, "대상자 구분은 욕구조사 결과 자료를 토대로 합니다: 욕구 및 위기도 조사를 먼저 기록하세요 (seed 004 II.3)"
            end
            local months = d.expected_intervention_months
            if type(months) == "number" then
              local by = months >= 1 and "case_management" or months > 0 and "service_linkage" or "not_selected"
              if by ~= d.selection then
                return false, string.format("개입 기간 %s개월 예상이면 %s입니다 (1개월 이상 사례관리 가구, 1개월 미만 서비스 연계 가구; seed 004 II.4)",
                                            tostring(months), CLASSES[by])
              end
            end
          end
        end
        local roles = {}
        for _, p in ipairs(m.participants or {}) do roles[p.role] = true end
        for _, d in ipairs(m.decisions or {}) do
          local topic = type(d) == "table" and d.topic or nil
          if topic == "admission_discharge" and not roles.medical_aid_manager then
            return false, "입·퇴원 관련 사례회의에는 의료급여관리사(medical_aid_manager)가 반드시 참석해야 합니다"
          end
          if topic == "health_service" and not (roles.health_center or roles.mental_health_center) then
            return false, "정신보건·건강서비스가 주요 서비스인 경우 보건소(health_center) 또는 정신건강복지센터(mental_health_center) 담당자가 반드시 참석해야 합니다"
          end
        end
        return true
      end,
    },
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
      if c.needs_reassessment then ctx.move("assessment") end
    end,
  },

  guards = {
    ["assessment->selection"] = function(case, input, ctx)
      local recorded = ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })
      if #recorded == 0 then return false, "욕구 및 위기도 조사를 기록한 뒤에 대상자를 구분·선정합니다" end
      return true
    end,
    -- 대상자 구분: only a case-management household gets a service plan, and
    -- the class rests on a conference: "사례회의 결과를 바탕으로 대상자 가구를
    -- 사례관리, 서비스 연계, 미선정 가구로 구분" (seed 004 II.4).
    ["selection->planning"] = function(case, input, ctx)
      local class, basis = household_class(ctx, case)
      local sel = input.data.selection
      if class == nil then
        return false, "서비스 제공계획은 사례관리 가구로 선정된 경우에만 수립하며, 대상자 구분은 사례회의 결과를 바탕으로 합니다: 내부사례회의 또는 통합사례회의에서 가구를 구분하세요 (decisions: {selection = ...}; seed 004 II.4)"
      end
      if sel ~= nil and sel ~= class then
        return false, string.format("%s에 따르면 이 가구는 %s입니다 (요청: %s; seed 004 II.4 사례회의 결과를 바탕으로 구분)",
                                    BASIS[basis], CLASSES[class] or class, tostring(sel))
      end
      if class ~= "case_management" then
        return false, string.format(
          "서비스 제공계획은 사례관리 가구로 선정된 경우에만 수립합니다 (선정 결과: %s)", CLASSES[class] or class)
      end
      return true
    end,
    -- Each class leaves by its own way (seed 004 II.4): 서비스 연계 and 미선정
    -- are the closure reasons of those households only; they do not close
    -- on goals they never had.
    ["*->closure"] = function(case, input, ctx)
      local reason = input.data.reason
      local class = household_class(ctx, case)
      for cls, r in pairs(CLASS_REASON) do
        if reason == r and class ~= cls then
          return false, string.format("종결 사유 '%s'는 사례회의가 %s(으)로 구분한 가구의 종결 사유입니다 (이 가구: %s; seed 004 II.4)",
                                      r, CLASSES[cls], class and CLASSES[class] or "아직 구분되지 않음")
        end
      end
      if CLASS_REASON[class] and reason ~= CLASS_REASON[class] and not ANY_CLASS[reason] then
        return false, string.format("%s는 '%s'(으)로 종결합니다 (seed 004 II.4)", CLASSES[class], CLASS_REASON[class])
      end
      return lead_guard(case, input, ctx)
    end,
    -- 서비스 제공계획 승인 후 제공 (seed 004 II.5 "서비스 제공계획 승인")
    ["planning->delivery"] = function(case, input, ctx)
      if not has_approved_plan(ctx, case) then
        return false, "서비스 제공계획이 승인되어야 서비스를 제공할 수 있습니다"
      end
      return true
    end,
  },

  tests = {
    { name = "first stage is 대상자 발굴", run = function(t)
        local rules = t.rules("integrated")
        t.eq(rules.first_stage, "discovery")
        t.eq(rules.stages[7].label, "서비스 제공 및 점검")
      end },
    { name = "a case-management household moves to planning", run = function(t)
        local r = t.transition { program = "integrated", case = { stage = "selection" }, to = "planning",
                                 data = { selection = "case_management" },
                                 queries = { meetings_of_case = { { type = "internal", held_on = "2026-03-02",
                                                                    decisions = { { selection = "case_management" } } } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "서비스 제공계획 수립")
      end },
    { name = "a service-linkage household gets no plan", run = function(t)
        local r = t.transition { program = "integrated", case = { stage = "selection" }, to = "planning",
                                 queries = { meetings_of_case = { { type = "internal", held_on = "2026-03-02",
                                                                    decisions = { { selection = "service_linkage" } } } } } }
        t.eq(r.ok, false)
        t.eq(r.kind, "refused")
        t.eq(r.plugin, "integrated")
      end },
    -- seed 004 II.4: "사례회의 결과를 바탕으로 대상자 가구를 사례관리, 서비스 연계,
    -- 미선정 가구로 구분"
    { name = "the class rests on a conference, not on the move's data", run = function(t)
        local r = t.transition { program = "integrated", case = { stage = "selection" }, to = "planning",
                                 data = { selection = "case_management" }, queries = { meetings_of_case = {} } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "사례회의 결과를 바탕으로", 1, true), r.reason)
        -- before a conference, the assessment's expected intervention (what it applies) decides
        local assessed = { records_of_case = { { kind = "assessment", data = { expected_intervention_months = 0.5 } } } }
        r = t.transition { program = "integrated", case = { stage = "selection" }, to = "planning",
                           data = { selection = "case_management" }, queries = assessed }
        t.eq(r.kind, "refused")
        assessed.records_of_case[1].data.expected_intervention_months = 3
        r = t.transition { program = "integrated", case = { stage = "selection" }, to = "planning", queries = assessed }
        t.ok(r.ok, r.reason)
        -- the conference's result governs over the assessment
        assessed.meetings_of_case = { { type = "internal", held_on = "2026-03-02", decisions = { { selection = "service_linkage" } } } }
        r = t.transition { program = "integrated", case = { stage = "selection" }, to = "planning", queries = assessed }
        t.eq(r.kind, "refused")
        -- the latest conference decides; the move may not say otherwise
        local two = { meetings_of_case = {
          { type = "internal", held_on = "2026-03-02", decisions = { { selection = "service_linkage" } } },
          { type = "integrated", held_on = "2026-03-20", decisions = { { case_id = "cas_OTHER", selection = "not_selected" },
                                                                        { case_id = "cas_TEST", selection = "case_management" } } } } }
        r = t.transition { program = "integrated", case = { stage = "selection" }, to = "planning", queries = two }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "integrated", case = { stage = "selection" }, to = "planning", queries = two,
                           data = { selection = "service_linkage" } }
        t.eq(r.kind, "refused")
      end },
    -- seed 004 II.3 "욕구조사 결과 자료를 토대로 하되 … 개입수준에 따라 통합사례관리, 서비스
    -- 연계, 미선정 가구로 분류하기 위한 회의"; II.4 "개입 기간을 기준으로 1개월 이상 예상 시
    -- 사례관리 가구, 1개월 미만 예상 시 서비스 연계 가구로 구분"
    { name = "a conference classifies on the assessment and the expected intervention", run = function(t)
        local base = { participants = { { org = "dong", role = "case_worker" } } }
        local function meeting(mtype, d, records)
          return t.record { program = "integrated", kind = "meeting", subkind = mtype,
                            record = { type = mtype, participants = base.participants, decisions = { d } },
                            queries = { records_of_case = records } }
        end
        local assessed = { { kind = "assessment", subkind = "needs" } }
        t.eq(meeting("internal", { selection = "case_management" }, {}).kind, "refused")
        t.ok(meeting("internal", { selection = "case_management", expected_intervention_months = 3 }, assessed).ok)
        t.eq(meeting("internal", { selection = "case_management", expected_intervention_months = 0.5 }, assessed).kind, "refused")
        t.ok(meeting("integrated", { selection = "service_linkage", expected_intervention_months = 0.5 }, assessed).ok)
        t.eq(meeting("internal", { selection = "maybe" }, assessed).kind, "refused")
        t.eq(meeting("solution", { selection = "case_management" }, assessed).kind, "refused")
      end },
    { name = "each class of household leaves by its own closure reasons", run = function(t)
        local function as(class)
          return { meetings_of_case = { { type = "internal", held_on = "2026-03-02", decisions = { { selection = class } } } } }
        end
        local function close(class, reason)
          return t.transition { program = "integrated", case = { stage = "selection" }, to = "closure",
                                data = { reason = reason }, queries = as(class) }
        end
        t.ok(close("not_selected", "not_selected").ok)
        t.ok(close("service_linkage", "service_linkage").ok)
        t.eq(close("case_management", "not_selected").kind, "refused")
        t.eq(close("not_selected", "service_linkage").kind, "refused")
        t.eq(close("service_linkage", "goal_achieved").kind, "refused")
        t.ok(close("service_linkage", "death").ok)
        t.ok(close("case_management", "goal_achieved").ok)
        local r = t.record { program = "integrated", kind = "closure", record = { reason = "service_linkage", evaluation = "연계 완료" } }
        t.eq(r.result.reason_label, "서비스 연계 완료 (서비스 연계 가구)")
      end },
    -- seed 004 IV 대상자의 권리: "사례관리계획수립에 참여할 권리, 자기결정권, 서비스 동의,
    -- 서비스 변경을 요청할 권리"
    { name = "a plan the person did not consent to is not approved", run = function(t)
        local plan = { goals = { { term = "short", text = "월세 체납 해소", services = {
          { type = "cash", method = "linkage", content = "긴급지원" } } } },
          participation = { took_part = true, how = "가정방문 면담" }, consent = { given = true, on = "2026-03-20" } }
        t.ok(t.record { program = "integrated", kind = "plan_approval", record = { data = plan } }.ok)
        plan.consent.given = false
        local r = t.record { program = "integrated", kind = "plan_approval", record = { data = plan } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "서비스 동의", 1, true))
        plan.consent.given = true
        plan.goals[1].services[1].consented = false
        t.eq(t.record { program = "integrated", kind = "plan_approval", record = { data = plan } }.kind, "refused")
      end },
    -- seed 004 I 착안사항 (주 사례기관) and seed 001 II.1 (읍·면·동: 필요 시 사후 관리 … 점검)
    { name = "once another organisation leads, it works the case; the first keeps conferences and follow-ups", run = function(t)
        local led = { stage = "assessment", org = "dong-1", lead_org = "hope-gu" }
        local dong = { org = "dong-1", org_type = "emd", user = "w" }
        local r = t.transition { program = "integrated", case = led, to = "selection", actor = dong,
                                 queries = { records_of_case = { { kind = "assessment" } } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "주 사례관리기관", 1, true))
        r = t.transition { program = "integrated", case = led, to = "selection", actor = { org = "hope-gu" },
                           queries = { records_of_case = { { kind = "assessment" } } } }
        t.ok(r.ok, r.reason)
        t.eq(t.record { program = "integrated", kind = "check", case = led, actor = dong, record = {} }.kind, "refused")
        t.ok(t.record { program = "integrated", kind = "follow_up", case = led, actor = dong, record = {} }.ok)
        t.ok(t.record { program = "integrated", kind = "meeting", subkind = "integrated", case = led, actor = dong,
                        record = { type = "integrated", participants = { { org = "dong-1", role = "case_worker" } } } }.ok)
        -- a case its own organisation leads: anyone who sees it works it (a district over its dongs)
        r = t.transition { program = "integrated", case = { stage = "discovery", org = "dong-1" }, to = "initial_counseling",
                           actor = { org = "hope-gu" } }
        t.ok(r.ok, r.reason)
      end },
    { name = "stages cannot be skipped", run = function(t)
        local r = t.transition { program = "integrated", case = { stage = "discovery" }, to = "planning" }
        t.eq(r.kind, "not_allowed")
        t.eq(r.allowed, { "initial_counseling", "closure" })
      end },
    { name = "no delivery without an approved plan", run = function(t)
        local r = t.transition { program = "integrated", case = { stage = "planning" }, to = "delivery",
                                 queries = { plans_of_case = { { status = "draft" } } } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "integrated", case = { stage = "planning" }, to = "delivery",
                           queries = { plans_of_case = { { status = "superseded" }, { status = "approved" } } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "no selection without an assessment", run = function(t)
        local r = t.transition { program = "integrated", case = { stage = "assessment" }, to = "selection",
                                 queries = { records_of_case = {} } }
        t.eq(r.kind, "refused")
      end },
    { name = "intervention of a month or more → case management", run = function(t)
        local r = t.record { program = "integrated", kind = "assessment", subkind = "needs",
                             record = { domains = { economy = { note = "체납" } }, expected_intervention_months = 3 } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.recommendation.selection, "case_management")
        r = t.record { program = "integrated", kind = "assessment", subkind = "needs",
                       record = { domains = { economy = {} }, expected_intervention_months = 0.5 } }
        t.eq(r.result.recommendation.selection, "service_linkage")
        r = t.record { program = "integrated", kind = "assessment", subkind = "needs", record = { domains = { economy = {} } } }
        t.eq(r.result.recommendation.selection, "not_selected")
      end },
    { name = "crisis scores are 1 to 3", run = function(t)
        local r = t.record { program = "integrated", kind = "assessment", subkind = "crisis",
                             record = { domains = { safety = { score = 4 } } } }
        t.eq(r.kind, "invalid")
        t.eq(r.field, "domains.safety.score")
        r = t.record { program = "integrated", kind = "assessment", subkind = "crisis",
                       record = { domains = { outer_space = { score = 1 } } } }
        t.eq(r.field, "domains.outer_space")
      end },
    { name = "vague and mis-termed goals are refused", run = function(t)
        local r = t.record { program = "integrated", kind = "plan",
                             record = { goals = { { term = "short", text = "삶의 질 향상" } } } }
        t.eq(r.kind, "refused")
        r = t.record { program = "integrated", kind = "plan",
                       record = { goals = { { term = "short", text = "월세 체납 해소", start = "2026-01-01", ["end"] = "2026-12-31" } } } }
        t.eq(r.kind, "refused")
        r = t.record { program = "integrated", kind = "plan",
                       record = { goals = { { term = "short", text = "월세 체납 해소", services = {
                         { type = "cash", method = "linkage", content = "긴급지원", start = "2026-01-01", ["end"] = "2026-04-30" } } } } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "a check asking for re-assessment moves the case back", run = function(t)
        local r = t.record { program = "integrated", kind = "check", case = { stage = "monitoring" },
                             record = { needs_reassessment = true } }
        t.eq(r.move, "assessment")
      end },
    { name = "who must attend which conference", run = function(t)
        local base = { type = "integrated", participants = { { org = "dong", role = "case_worker" } } }
        local function meeting(extra)
          local m = { type = base.type, participants = base.participants }
          for k, v in pairs(extra) do m[k] = v end
          return t.record { program = "integrated", kind = "meeting", record = m }
        end
        t.eq(meeting({ written = true }).kind, "refused")
        t.ok(meeting({ written = true, type = "closure" }).ok)
        t.eq(meeting({ decisions = { { topic = "admission_discharge" } } }).kind, "refused")
        t.ok(meeting({ decisions = { { topic = "admission_discharge" } },
                       participants = { { org = "gu", role = "medical_aid_manager" } } }).ok)
        t.eq(meeting({ decisions = { { topic = "health_service" } } }).kind, "refused")
        t.ok(meeting({ decisions = { { topic = "health_service" } },
                       participants = { { org = "mhc", role = "mental_health_center" } } }).ok)
      end },
    { name = "closure reasons come from the list", run = function(t)
        local r = t.record { program = "integrated", kind = "closure", record = { reason = "bored", evaluation = "x" } }
        t.eq(r.field, "reason")
        r = t.record { program = "integrated", kind = "closure", record = { reason = "death", evaluation = "사망" } }
        t.ok(r.ok)
        t.eq(r.result.reason_label, "사망")
      end },
  },
}

-- The lead works the case (see not_lead above): every move and every record
-- but the shared ones (conferences, follow-ups, consultations).
for _, st in ipairs(P.stages) do
  local key = "*->" .. st.id
  if not P.guards[key] then P.guards[key] = lead_guard end
end
for _, kind in ipairs({ "counseling", "assessment", "plan", "plan_approval", "service", "check", "closure" }) do
  local spec = P.records[kind] or {}
  local own = spec.validate
  spec.validate = own and function(case, rec, ctx)
    local why = not_lead(case, ctx)
    if why then return false, why end
    return own(case, rec, ctx)
  end or lead_validate
  P.records[kind] = spec
end

return P
