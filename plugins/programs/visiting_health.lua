-- 방문건강관리 (visiting health care), run by the 보건소 방문건강관리팀:
-- nurses, dietitians, therapists visit health-vulnerable people at home.
-- Source: seed 001 (2020 공공부문 사례관리 연계·협력 업무안내) I.3 "방문건강관리"
-- (사업대상, 주요내용 ①–④, 의뢰기준) and 부록1.2 (연계 내용: 대상자 발굴 →
-- 대상자등록 및 군 분류 → 군별 관리 → 대상자 재평가), II.4 방문형서비스 연계
-- (사후관리). Seed 003's 표준 프로세스 table has no row for this program;
-- the stage map below follows seed 001's four steps.
--
-- person.eligibility keys read here (recorded by the worker):
--   health_vulnerable  사회·문화·경제적 건강취약계층 (건강위험군, 질환군)
--   living_alone       독거 (65세 이상 독거노인 가구)
--   elderly_couple     노인부부 가구 (75세 이상 노인부부 가구)

-- 기초조사 / 건강스크리닝 영역. Each domain is scored 0–2:
--   건강문제 (질환군): 0 없음, 1 있음·증상 조절됨, 2 있음·증상 조절 안 됨
--   건강위험요인 (건강행태위험군: 흡연, 위험한 음주, 신체활동 부족 등 —
--   seed 001 부록1.3 의료급여 "연계대상"): 0 없음, 1 있음, 2 있음·심함
local PROBLEM_DOMAINS = { "hypertension", "diabetes", "other_chronic", "frailty", "depression", "cognition" }
local RISK_DOMAINS = { "smoking", "drinking", "physical_activity", "nutrition" }
local SCREENING_DOMAINS = {}
for _, d in ipairs(PROBLEM_DOMAINS) do SCREENING_DOMAINS[#SCREENING_DOMAINS + 1] = d end
for _, d in ipairs(RISK_DOMAINS) do SCREENING_DOMAINS[#SCREENING_DOMAINS + 1] = d end

-- 군 분류 (seed 001 I.3 ②: 건강위험요인 및 건강문제를 파악하여 군 분류; 2개군
-- (집중관리군, 자기역량지원군) 또는 3개군 (집중관리군, 정기관리군,
-- 자기역량지원군)). The criteria below are the 방문건강관리 사업안내's
-- (named by seed 001 부록1.2, not quoted in the seeds): 집중관리군 = 건강문제의
-- 증상이 조절되지 않음, 정기관리군 = 건강문제가 있으나 조절됨,
-- 자기역량지원군 = 건강위험요인만 있음. A region running two groups
-- overrides result.group in its own on_record.assessment (it runs after this one).
local GROUPS = {
  intensive = "집중관리군",
  regular = "정기관리군",
  self_capacity = "자기역량지원군",
}

local function classify(domains)
  local worst_problem, any_risk = 0, false
  local hits = {}
  for _, d in ipairs(PROBLEM_DOMAINS) do
    local v = domains[d]
    local s = v and v.score or 0
    if s > worst_problem then worst_problem = s end
    if s > 0 then hits[#hits + 1] = d end
  end
  for _, d in ipairs(RISK_DOMAINS) do
    local v = domains[d]
    if v and (v.score or 0) > 0 then any_risk = true; hits[#hits + 1] = d end
  end
  local group
  if worst_problem >= 2 then group = "intensive"
  elseif worst_problem == 1 then group = "regular"
  elseif any_risk then group = "self_capacity" end
  return group, hits
end

-- The group of the newest earlier screening (records come oldest first).
local function last_group(ctx, case)
  local g
  for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })) do
    if r.result and r.result.group then g = r.result.group end
  end
  return g
end

-- 만 나이 (international age): the server's person.age, else from birth_date.
local age_of = sarye.lib.age

---@type sarye.Program
return {
  id = "visiting_health",
  kind = "program",
  version = "1.1.0",
  api = 1,
  name = "방문건강관리",

  -- seed 001 I.3 ①–④ and 부록1.2: 대상자 발굴 → 대상자등록 및 군 분류 (등록 동의,
  -- 기초조사표·건강상담, 군 분류: 접수·조사·선정) → 군별 관리 (건강관리계획에
  -- 따른 서비스: 계획·제공) → 대상자 재평가 (점검) → 종결 → 사후관리 (seed 001
  -- II.4 방문형서비스 연계: 초기방문 및 사후관리 계획 수립 후 사후관리 수행).
  stages = {
    { id = "discovery",  label = "대상자 발굴" },
    { id = "intake",     label = "대상자 등록 및 군 분류" },
    { id = "assessment", label = "대상자 등록 및 군 분류" },
    { id = "selection",  label = "대상자 등록 및 군 분류" },
    { id = "planning",   label = "군별 관리" },
    { id = "delivery",   label = "군별 관리" },
    { id = "monitoring", label = "대상자 재평가" },
    { id = "closure",    label = "종결" },
    { id = "follow_up",  label = "사후관리" },
  },

  -- Every open step may close (the core asks a reason). 재평가 loops back to
  -- 군별 관리 (same group), to planning (군 변경 → 건강관리계획 재수립) or to a
  -- new screening (seed 001 I.3 ④: 군별 건강관리서비스 제공 후 재평가 등을 통해 추후 관리).
  transitions = {
    discovery  = { "intake", "closure" },
    intake     = { "assessment", "closure" },
    assessment = { "selection", "closure" },
    selection  = { "planning", "closure" },
    planning   = { "delivery", "closure" },
    delivery   = { "monitoring", "closure" },
    monitoring = { "delivery", "planning", "assessment", "closure" },
    closure    = { "follow_up" },
  },

  -- 사후관리 중 건강문제 재발 → 재등록·재분류
  reopen_to = { "assessment" },

  instruments = {
    health_screening = { domains = SCREENING_DOMAINS, scale = { min = 0, max = 2 } },
  },

  closure_reasons = {
    goal_achieved = "목표달성 (건강위험요인·건강문제 해소)",
    death = "사망",
    moved = "전출",
    refused = "거부 (등록·관리 미동의 포함)",
    lost_contact = "연락두절",
    transferred = "이관",
    facility_admission = "시설 입소·장기 입원",
  },

  -- seed 001 I.3 사업대상 / 의뢰기준: 건강관리서비스 이용이 어려운 사회·문화·경제적
  -- 건강취약 계층(건강위험군, 질환군) 및 65세 이상 독거노인 가구, 75세 이상 노인부부
  -- 가구 중심 중 건강관리가 필요하다고 판단되는 자.
  -- The facts eligibility reads (person.eligibility[key]) and what each means:
  -- GET /v1/programs/visiting_health lists them, so a client can ask for them.
  facts = {
    health_vulnerable = "건강 취약계층 (true/false)",
    living_alone = "독거 (true/false): 65세 이상 독거노인",
    elderly_couple = "노인부부 가구 (true/false): 75세 이상",
  },

  eligibility = function(person, case, ctx)
    local e = person.eligibility or {}
    if e.health_vulnerable then return true end
    local age = age_of(person, ctx.today)
    if age and age >= 65 and e.living_alone then return true end
    if age and age >= 75 and e.elderly_couple then return true end
    return false, "방문건강관리 대상은 건강취약계층(건강위험군·질환군), 65세 이상 독거노인 가구, " ..
                  "75세 이상 노인부부 가구입니다 (eligibility.health_vulnerable / living_alone / elderly_couple, 나이: " ..
                  tostring(age) .. ")"
  end,

  records = {
    closure = { required = { "reason", "evaluation" } },
  },

  guards = {
    -- ② 대상자 등록: 방문건강관리 대상자로 등록·관리에 동의한 경우
    ["*->intake"] = function(case, input, ctx)
      if input.data.consent ~= true then
        return false, "방문건강관리 대상자 등록·관리에 대한 동의가 있어야 등록합니다 (data.consent = true)"
      end
      return true
    end,
    -- ③ 분리된 군은 건강관리계획에 따라 관리: no 군별 관리 before a group.
    ["selection->planning"] = function(case, input, ctx)
      if not last_group(ctx, case) then
        return false, "기초조사(건강스크리닝)로 군 분류(집중관리군·정기관리군·자기역량지원군)를 한 뒤에 군별 관리를 시작합니다"
      end
      return true
    end,
    -- ④ 재평가: the 건강관리계획 says when the group is re-evaluated.
    ["planning->delivery"] = function(case, input, ctx)
      local on = input.data.reassess_on
      if type(on) ~= "string" or not sarye.date.valid(on) or on <= ctx.today then
        return false, "건강관리계획에 재평가 예정일을 정해 주세요 (data.reassess_on: 오늘 이후 YYYY-MM-DD)"
      end
      return true
    end,
  },

  hooks = {
    enter = {
      delivery = function(case, input, ctx)
        local on = input.data.reassess_on
        if type(on) == "string" and sarye.date.valid(on) then
          ctx.set_deadline("reassessment_due", on, "대상자 재평가 (군별 관리 후)")
        end
      end,
      monitoring = function(case, input, ctx) ctx.clear_deadline("reassessment_due") end,
      closure = function(case, input, ctx) ctx.clear_deadline("reassessment_due") end,
    },
  },

  on_record = {
    -- 군 분류 (②) and, at 재평가 (④), the change of group: a new group needs
    -- a new 건강관리계획, so the case goes back to planning.
    assessment = function(case, a, ctx)
      local group, hits = classify(a.domains or {})
      local previous = case.stage == "monitoring" and last_group(ctx, case) or nil
      if not group then
        local reasons = { "건강위험요인·건강문제가 확인되지 않음: 방문건강관리 등록 대상 아님" }
        if case.stage == "monitoring" then reasons = { "재평가 결과 건강위험요인·건강문제 해소: 종결 검토" } end
        return { recommendation = { selection = "not_selected", reasons = reasons } }
      end
      table.sort(hits)
      local reasons = { string.format("%s (%s)", GROUPS[group], table.concat(hits, ", ")) }
      if previous and previous ~= group then
        reasons[#reasons + 1] = string.format("재평가: %s → %s, 건강관리계획 재수립", GROUPS[previous], GROUPS[group])
        ctx.move("planning")
      end
      return { group = group, group_label = GROUPS[group],
               recommendation = { selection = "case_management", reasons = reasons } }
    end,
  },

  tests = {
    { name = "stage map: 대상자 발굴 → 등록 및 군 분류 → 군별 관리 → 재평가", run = function(t)
        local rules = t.rules("visiting_health")
        t.eq(rules.first_stage, "discovery")
        t.eq(rules.stages[1].label, "대상자 발굴")
        t.eq(rules.stages[2].label, "대상자 등록 및 군 분류")
        t.eq(rules.stages[4].label, "대상자 등록 및 군 분류")
        t.eq(rules.stages[5].label, "군별 관리")
        t.eq(rules.stages[6].label, "군별 관리")
        t.eq(rules.stages[7].label, "대상자 재평가")
        t.eq(#rules.stages, 9)
      end },
    { name = "health-vulnerable people are eligible at any age", run = function(t)
        local r = t.open { program = "visiting_health", today = "2026-03-01",
                           person = { birth_date = "1980-05-01", age = 45, eligibility = { health_vulnerable = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "visiting_health", today = "2026-03-01",
                     person = { birth_date = "1980-05-01", age = 45, eligibility = {} } }
        t.eq(r.kind, "refused")
        t.eq(r.plugin, "visiting_health")
      end },
    { name = "65+ living alone is eligible, 64 is not", run = function(t)
        local r = t.open { program = "visiting_health", today = "2026-03-01",
                           person = { birth_date = "1960-01-15", age = 66, eligibility = { living_alone = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "visiting_health", today = "2026-03-01",
                     person = { birth_date = "1961-06-01", age = 64, eligibility = { living_alone = true } } }
        t.eq(r.kind, "refused")
      end },
    { name = "75+ couples are eligible, a 74-year-old couple is not", run = function(t)
        local r = t.open { program = "visiting_health", today = "2026-03-01",
                           person = { birth_date = "1950-01-01", age = 76, eligibility = { elderly_couple = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "visiting_health", today = "2026-03-01",
                     person = { birth_date = "1951-06-01", age = 74, eligibility = { elderly_couple = true } } }
        t.eq(r.kind, "refused")
      end },
    { name = "age comes from the birth date when not given", run = function(t)
        local r = t.open { program = "visiting_health", today = "2026-03-01",
                           person = { birth_date = "1961-02-28", eligibility = { living_alone = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "visiting_health", today = "2026-03-01",
                     person = { birth_date = "1961-03-02", eligibility = { living_alone = true } } }
        t.eq(r.kind, "refused")
      end },
    { name = "registration needs the person's consent", run = function(t)
        local r = t.transition { program = "visiting_health", case = { stage = "discovery" }, to = "intake" }
        t.eq(r.kind, "refused")
        r = t.transition { program = "visiting_health", case = { stage = "discovery" }, to = "intake",
                           data = { consent = true } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "대상자 등록 및 군 분류")
      end },
    { name = "uncontrolled health problem → 집중관리군", run = function(t)
        local r = t.record { program = "visiting_health", kind = "assessment", subkind = "health_screening",
                             record = { domains = { hypertension = { score = 2 }, smoking = { score = 1 } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.group, "intensive")
        t.eq(r.result.group_label, "집중관리군")
        t.eq(r.result.recommendation.selection, "case_management")
      end },
    { name = "controlled problem → 정기관리군; risk factors only → 자기역량지원군; none → not registered", run = function(t)
        local r = t.record { program = "visiting_health", kind = "assessment", subkind = "health_screening",
                             record = { domains = { diabetes = { score = 1 }, drinking = { score = 2 } } } }
        t.eq(r.result.group, "regular")
        r = t.record { program = "visiting_health", kind = "assessment", subkind = "health_screening",
                       record = { domains = { physical_activity = { score = 1 }, hypertension = { score = 0 } } } }
        t.eq(r.result.group, "self_capacity")
        r = t.record { program = "visiting_health", kind = "assessment", subkind = "health_screening",
                       record = { domains = { smoking = { score = 0 } } } }
        t.eq(r.result.group, nil)
        t.eq(r.result.recommendation.selection, "not_selected")
      end },
    { name = "screening scores are 0 to 2 on known domains", run = function(t)
        local r = t.record { program = "visiting_health", kind = "assessment", subkind = "health_screening",
                             record = { domains = { hypertension = { score = 3 } } } }
        t.eq(r.field, "domains.hypertension.score")
        r = t.record { program = "visiting_health", kind = "assessment", subkind = "health_screening",
                       record = { domains = { mood = { score = 1 } } } }
        t.eq(r.field, "domains.mood")
      end },
    { name = "no 군별 관리 before a group", run = function(t)
        local r = t.transition { program = "visiting_health", case = { stage = "selection" }, to = "planning",
                                 queries = { records_of_case = {} } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "visiting_health", case = { stage = "selection" }, to = "planning",
                           queries = { records_of_case = { { kind = "assessment", result = { group = "regular" } } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "군별 관리")
      end },
    { name = "the plan sets the re-evaluation date, which becomes a deadline", run = function(t)
        local r = t.transition { program = "visiting_health", case = { stage = "planning" }, to = "delivery",
                                 today = "2026-03-01" }
        t.eq(r.kind, "refused")
        r = t.transition { program = "visiting_health", case = { stage = "planning" }, to = "delivery",
                           today = "2026-03-01", data = { reassess_on = "2026-02-01" } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "visiting_health", case = { stage = "planning" }, to = "delivery",
                           today = "2026-03-01", data = { reassess_on = "2026-05-24" } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.set[1].kind, "reassessment_due")
        t.eq(r.effects.set[1].due_on, "2026-05-24")
      end },
    { name = "starting the re-evaluation clears its deadline", run = function(t)
        local r = t.transition { program = "visiting_health", case = { stage = "delivery" }, to = "monitoring" }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.clear, { "reassessment_due" })
        t.eq(r.label, "대상자 재평가")
      end },
    { name = "재평가 with a new group goes back to planning; the same group stays", run = function(t)
        local prior = { records_of_case = { { kind = "assessment", result = { group = "intensive" } } } }
        local r = t.record { program = "visiting_health", kind = "assessment", subkind = "health_screening",
                             case = { stage = "monitoring" }, queries = prior,
                             record = { domains = { hypertension = { score = 1 } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.group, "regular")
        t.eq(r.move, "planning")
        r = t.record { program = "visiting_health", kind = "assessment", subkind = "health_screening",
                       case = { stage = "monitoring" }, queries = prior,
                       record = { domains = { hypertension = { score = 2 } } } }
        t.eq(r.result.group, "intensive")
        t.eq(r.move, nil)
      end },
    { name = "re-evaluation loops back to 군별 관리", run = function(t)
        local r = t.transition { program = "visiting_health", case = { stage = "monitoring" }, to = "delivery",
                                 today = "2026-06-01", data = { reassess_on = "2026-09-01" } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.set[1].due_on, "2026-09-01")
        r = t.transition { program = "visiting_health", case = { stage = "monitoring" }, to = "planning" }
        t.ok(r.ok, r.reason)
      end },
    { name = "every open step may close; closure reasons come from the list", run = function(t)
        for _, s in ipairs({ "discovery", "intake", "assessment", "selection", "planning", "delivery", "monitoring" }) do
          local r = t.transition { program = "visiting_health", case = { stage = s }, to = "closure",
                                   data = { reason = "moved" } }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
        end
        local r = t.record { program = "visiting_health", kind = "closure",
                             record = { reason = "facility_admission", evaluation = "요양병원 입원" } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.reason_label, "시설 입소·장기 입원")
        r = t.record { program = "visiting_health", kind = "closure", record = { reason = "bored", evaluation = "x" } }
        t.eq(r.field, "reason")
      end },
    { name = "follow-up after closure; reopen into a new screening", run = function(t)
        local r = t.transition { program = "visiting_health", case = { stage = "closure" }, to = "follow_up" }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "visiting_health", case = { stage = "follow_up", status = "follow_up" },
                           to = "assessment", reopen = true }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "visiting_health", case = { stage = "follow_up", status = "follow_up" },
                           to = "delivery", reopen = true }
        t.eq(r.kind, "not_allowed")
      end },
  },
}
