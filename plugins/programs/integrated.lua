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

---@type sarye.Program
return {
  id = "integrated",
  kind = "program",
  version = "1.1.0",
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

  -- 종결 사유 (DOMAIN.md: goal achieved, death, moved, refusal, lost contact, transferred)
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
    -- 초기상담지 필수 기록 사항 (seed 004 III.1): 상담내용, 주요문제 2가지, 종합의견, 사례 구분
    counseling = { required = { "case_type", "domains", "main_problems", "opinion" } },
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
    -- 대상자 구분: only a case-management household gets a service plan.
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
                                 data = { selection = "case_management" } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "서비스 제공계획 수립")
      end },
    { name = "a service-linkage household gets no plan", run = function(t)
        local r = t.transition { program = "integrated", case = { stage = "selection" }, to = "planning",
                                 data = { selection = "service_linkage" } }
        t.eq(r.ok, false)
        t.eq(r.kind, "refused")
        t.eq(r.plugin, "integrated")
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
