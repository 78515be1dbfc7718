-- 드림스타트 (취약계층 아동통합서비스): 시·군·구 드림스타트 전담부서가
-- 취약계층 아동과 그 가족에게 맞춤형 통합서비스를 제공한다 (아동복지법 제37조).
-- Stage map: seed 003 (희망이음 표준 프로세스 표) "드림스타트 프로세스":
-- 접수 (표준 1–3) → 사정 (4) → 계획 (5–6) → 실행 (7) → 점검 (8) → 종결 (9);
-- 공통업무 사례회의 관리. There is no 사후관리: a child who still needs help
-- after the age limit is referred to the 읍·면·동 team (seed 001 II.2).
-- Rules: seed 001 (2020 공공부문 사례관리 연계·협력 업무안내)
--   I.2 드림스타트: 사업대상, 우선 지원 원칙, 영역별 지원 내용, 의뢰기준 및 절차
--   II.2 아동통합보호: 대상자 선정 사례회의, 제한 연령 도래로 인한 종결
--   부록1 1. 드림스타트: 타 사업에서 의뢰받은 경우 초기상담과 사정 후 선정 여부 결정
--
-- person.eligibility facts read here (recorded by the worker):
--   pregnant = true               임산부 (0세: 태아 단계부터 대상)
--   elementary_school = true      초등학교 재학 (만 12세 이상이어도 대상)
--   livelihood_recipient, near_poor                수급자, 차상위계층 가정
--   single_parent, grandparent_family              보호대상 한부모가정 (조손가정 포함)
--   abused, sexual_violence_victim                 학대 및 성폭력 피해아동

local LIMIT_AGE = 12 -- 만 12세 (초등학생 이하)

-- 우선 지원 원칙 (seed 001 I.2 사업대상 ※): fact -> Korean name
local PRIORITY = {
  { key = "livelihood_recipient", label = "수급자 가정" },
  { key = "near_poor", label = "차상위계층 가정" },
  { key = "single_parent", label = "보호대상 한부모가정" },
  { key = "grandparent_family", label = "조손가정" },
  { key = "abused", label = "학대피해아동" },
  { key = "sexual_violence_victim", label = "성폭력피해아동" },
}

-- 드림스타트 영역별 지원 내용 (seed 001 I.2 표): 신체/건강, 인지/언어,
-- 정서/행동, 부모·가족. 사정 = 욕구조사, 양육환경 및 아동발달사정 (II.2).
local DOMAINS = { "health", "cognition_language", "emotion_behavior", "parent_family" }
local DOMAIN_LABEL = { health = "신체/건강", cognition_language = "인지/언어",
                       emotion_behavior = "정서/행동", parent_family = "부모·가족" }

-- A recorded fact counts when it is set to something other than "no".
local fact = sarye.lib.fact

-- 만 나이 (international age): the server's person.age, else from birth_date.
local age_of = sarye.lib.age

local function priority_groups(person)
  local e = person and person.eligibility or {}
  local groups = {}
  for _, p in ipairs(PRIORITY) do
    if fact(e, p.key) then groups[#groups + 1] = p.label end
  end
  return groups
end

local function has_checked_services(ctx, case)
  for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "counseling" })) do
    if (r.kind == nil or r.kind == "counseling") and r.data and r.data.current_services ~= nil then return true end
  end
  return false
end

---@type sarye.Program
return {
  id = "dream_start",
  kind = "program",
  version = "1.1.0",
  api = 1,
  name = "드림스타트",

  stages = {
    { id = "discovery",          label = "접수" },
    { id = "initial_counseling", label = "접수" },
    { id = "intake",             label = "접수" },
    { id = "assessment",         label = "사정" },
    { id = "selection",          label = "계획" },
    { id = "planning",           label = "계획" },
    { id = "delivery",           label = "실행" },
    { id = "monitoring",         label = "점검" },
    { id = "closure",            label = "종결" },
  },

  -- Every step may end in closure (the core asks data.reason). 점검 may send
  -- the case back to 실행, to 계획 (plan revision) or to 사정 (재사정).
  transitions = {
    discovery          = { "initial_counseling", "closure" },
    initial_counseling = { "intake", "closure" },
    intake             = { "assessment", "closure" },
    assessment         = { "selection", "closure" },
    selection          = { "planning", "closure" },
    planning           = { "delivery", "closure" },
    delivery           = { "monitoring", "assessment", "closure" },
    monitoring         = { "delivery", "planning", "assessment", "closure" },
  },

  -- Who refers children here (seed 001 II.2 아동보호 연계 모델 — 읍·면·동,
  -- 시·군·구, 드림스타트; II.1 희망복지지원단: 욕구 및 위기도 조사 이후 아동 관련
  -- 의뢰 사유 발생 시 드림스타트로 의뢰). A walk-in referral without a case is
  -- always welcome.
  referral = { accepts_from = { "integrated", "child_protection", "foster_care", "welfare_center" } },

  closure_reasons = {
    goal_achieved = "목표달성",
    death = "사망",
    moved = "전출",
    refused = "거부",
    lost_contact = "연락두절",
    transferred = "이관",
    -- 아동 사례관리 제한 연령 도래로 인한 종결 (seed 001 II.2)
    age_limit = "제한 연령 도래 (만 12세·초등학교 졸업)",
    -- 대상자 선정 사례회의 결과 미선정 (seed 001 II.2)
    not_selected = "미선정 (선정 사례회의 결과)",
    other = "기타",
  },

  -- 0세(임산부) ~ 만 12세(초등학생 이하); 만 12세 이상 아동 중 초등학교
  -- 재학 아동 포함 (seed 001 I.2 사업대상).
  -- The facts eligibility reads (person.eligibility[key]) and what each means:
  -- GET /v1/programs/dream_start lists them, so a client can ask for them.
  facts = {
    pregnant = "임산부 (true/false): 0세, 태아 단계부터 대상",
    elementary_school = "초등학교 재학 (true/false): 만 12세 이상이어도 대상",
    livelihood_recipient = "국민기초생활보장 수급자 가정 (true/false)",
    near_poor = "차상위계층 가정 (true/false)",
    single_parent = "보호대상 한부모가정 (true/false)",
    grandparent_family = "조손가정 (true/false)",
    abused = "학대 피해아동 (true/false)",
    sexual_violence_victim = "성폭력 피해아동 (true/false)",
  },

  eligibility = function(person, case, ctx)
    local e = person.eligibility or {}
    if fact(e, "pregnant") then return true end
    local age = age_of(person, ctx.today)
    if age == nil then
      return false, "드림스타트는 0세(임산부)~만 12세 아동이 대상입니다: 생년월일을 확인할 수 없습니다 (임산부는 pregnant를 기록)"
    end
    if age <= LIMIT_AGE then return true end
    if fact(e, "elementary_school") then return true end
    return false, string.format(
      "드림스타트는 0세(임산부)~만 12세(초등학생 이하) 아동이 대상입니다 (만 %d세, 초등학교 재학 아님)", age)
  end,

  instruments = {
    -- 욕구조사, 양육환경 및 아동발달사정 (seed 001 II.2), 영역별로 기록
    child_needs = { domains = DOMAINS },
  },

  records = {
    -- 사전확인 내용: 드림스타트 및 지역사회 내 서비스(복지관, 바우처 등) 이용
    -- 여부 (seed 001 I.2 의뢰절차 *). An empty list records "none used".
    counseling = {
      validate = function(case, rec, ctx)
        if rec.current_services == nil then
          return false, "드림스타트 및 지역사회 내 서비스(복지관, 바우처 등) 이용 여부를 current_services에 기록하세요 (이용 서비스가 없으면 빈 목록)"
        end
        return true
      end,
    },
    closure = { required = { "reason", "evaluation" } },
  },

  on_record = {
    -- 선정: 복합적인 문제 및 욕구로 지속적인 사례관리가 필요한 경우 (seed 001
    -- I.2 의뢰기준); 수급자·차상위·한부모·학대피해 아동 우선 지원 원칙.
    -- The recommendation goes to the 선정 사례회의, which decides.
    assessment = function(case, a, ctx)
      local needs = {}
      for _, d in ipairs(DOMAINS) do
        local v = a.domains and a.domains[d]
        if type(v) == "table" and type(v.note) == "string" and v.note ~= "" then needs[#needs + 1] = DOMAIN_LABEL[d] end
      end
      local rec
      if #needs >= 2 then
        rec = { selection = "case_management",
                reasons = { "복합적인 문제 및 욕구 (" .. table.concat(needs, ", ") .. "): 지속적인 사례관리 필요" } }
      elseif #needs == 1 then
        rec = { selection = "service_linkage", reasons = { "단일 영역의 욕구 (" .. needs[1] .. "): 서비스 연계" } }
      else
        rec = { selection = "not_selected", reasons = { "사정 영역에 기록된 욕구 없음" } }
      end
      local groups = priority_groups(ctx.person())
      rec.priority = #groups > 0
      rec.priority_groups = groups
      if #groups > 0 then
        rec.reasons[#rec.reasons + 1] = "우선 지원 대상: " .. table.concat(groups, ", ")
      end
      return { recommendation = rec }
    end,
    -- 제한 연령 도래 (만 12세가 끝나는 날 = 만 13세 생일) → 종결 검토 예정일.
    -- 임산부 case (the person is the mother) has no such date.
    open = function(case, rec, ctx)
      local p = ctx.person() or {}
      local e = p.eligibility or {}
      local age = age_of(p, ctx.today)
      if not fact(e, "pregnant") and age and age <= LIMIT_AGE and sarye.date.valid(p.birth_date) then
        ctx.set_deadline("age_limit", sarye.date.add_months(p.birth_date, (LIMIT_AGE + 1) * 12),
                         "드림스타트 제한 연령 도래 (만 12세 종료, 초등학교 재학 시 졸업까지): 종결 및 읍·면·동 의뢰 검토")
      end
    end,
    -- 제한 연령 도래로 종결 시 지속적 사례관리가 필요하면 읍·면·동 찾아가는
    -- 보건복지전담팀으로 의뢰 (seed 001 II.2).
    closure = function(case, rec, ctx)
      if rec.reason == "age_limit" then
        return { next_step = "지속적 사례관리가 필요하면 읍·면·동 찾아가는 보건복지전담팀으로 의뢰" }
      end
    end,
  },

  guards = {
    -- 사전확인 후 의뢰; 의뢰받은 경우 초기상담과 사정 수행 (seed 001 I.2,
    -- 부록1 1.): 접수를 마치기 전에 현재 서비스 이용 여부를 확인한다.
    ["intake->assessment"] = function(case, input, ctx)
      if not has_checked_services(ctx, case) then
        return false, "사정 전에 드림스타트 및 지역사회 내 서비스(복지관, 바우처 등) 이용 여부를 확인하세요 (초기상담 current_services)"
      end
      return true
    end,
    -- 욕구조사, 양육환경 및 아동발달사정 이후 사례회의를 통해 대상자 선정
    -- (seed 001 II.2 드림스타트).
    ["assessment->selection"] = function(case, input, ctx)
      local assessed = false
      for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })) do
        if r.kind == nil or r.kind == "assessment" then assessed = true end
      end
      if not assessed then
        return false, "욕구조사, 양육환경 및 아동발달사정을 기록한 뒤에 대상자를 선정합니다"
      end
      if #ctx.query("meetings_of_case", { case_id = case.id }) == 0 then
        return false, "대상자 선정은 사례회의를 통해 결정합니다 (선정 사례회의 기록 필요)"
      end
      return true
    end,
  },

  tests = {
    { name = "first stage is 접수, spanning discovery to intake", run = function(t)
        local rules = t.rules("dream_start")
        t.eq(rules.first_stage, "discovery")
        t.eq(rules.stages[1].label, "접수")
        t.eq(rules.stages[3].label, "접수")
        t.eq(rules.stages[3].id, "intake")
        t.eq(rules.stages[4].label, "사정")
        t.eq(rules.stages[5].label, "계획")
        t.eq(rules.stages[6].label, "계획")
        t.eq(rules.stages[9].label, "종결")
        t.eq(#rules.stages, 9)
      end },
    { name = "a child of 12 is eligible, 13 is not", run = function(t)
        local r = t.open { program = "dream_start", today = "2026-01-01",
                           person = { birth_date = "2013-06-01", age = 12, eligibility = {} } }
        t.ok(r.ok, r.reason)
        t.eq(r.first_stage, "discovery")
        r = t.open { program = "dream_start", today = "2026-01-01",
                     person = { birth_date = "2012-06-01", age = 13, eligibility = {} } }
        t.eq(r.ok, false)
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "만 12세", 1, true), r.reason)
      end },
    { name = "age is derived from birth_date when not given", run = function(t)
        local r = t.open { program = "dream_start", today = "2026-03-01", person = { birth_date = "2013-03-02" } }
        t.ok(r.ok, r.reason) -- 만 12세 until the day before the 13th birthday
        r = t.open { program = "dream_start", today = "2026-03-02", person = { birth_date = "2013-03-02" } }
        t.eq(r.kind, "refused")
      end },
    { name = "a pregnant woman (0세) is eligible", run = function(t)
        local r = t.open { program = "dream_start", today = "2026-01-01",
                           person = { birth_date = "1996-01-01", age = 30, sex = "F", eligibility = { pregnant = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "dream_start", today = "2026-01-01",
                     person = { birth_date = "1996-01-01", age = 30, sex = "F", eligibility = { pregnant = false } } }
        t.eq(r.kind, "refused")
      end },
    { name = "a 13-year-old still in primary school is eligible", run = function(t)
        local r = t.open { program = "dream_start", today = "2026-01-01",
                           person = { birth_date = "2012-03-01", age = 13, eligibility = { elementary_school = true } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "no assessment before current services are checked", run = function(t)
        local r = t.transition { program = "dream_start", case = { stage = "intake" }, to = "assessment",
                                 queries = { records_of_case = {} } }
        t.eq(r.kind, "refused")
        t.eq(r.plugin, "dream_start")
        r = t.transition { program = "dream_start", case = { stage = "intake" }, to = "assessment",
                           queries = { records_of_case = { { kind = "counseling", data = { opinion = "x" } } } } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "dream_start", case = { stage = "intake" }, to = "assessment",
                           queries = { records_of_case = { { kind = "counseling", data = { current_services = {} } } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "사정")
      end },
    { name = "counseling must record current service use (empty = none)", run = function(t)
        local r = t.record { program = "dream_start", kind = "counseling", record = { opinion = "양육 부담" } }
        t.eq(r.kind, "refused")
        r = t.record { program = "dream_start", kind = "counseling",
                       record = { opinion = "양육 부담", current_services = { "지역아동센터" } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "selection needs an assessment and a selection conference", run = function(t)
        local r = t.transition { program = "dream_start", case = { stage = "assessment" }, to = "selection",
                                 queries = { records_of_case = {}, meetings_of_case = { { type = "internal" } } } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "dream_start", case = { stage = "assessment" }, to = "selection",
                           queries = { records_of_case = { { kind = "assessment", subkind = "child_needs" } },
                                       meetings_of_case = {} } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "사례회의", 1, true))
        r = t.transition { program = "dream_start", case = { stage = "assessment" }, to = "selection",
                           queries = { records_of_case = { { kind = "assessment", subkind = "child_needs" } },
                                       meetings_of_case = { { type = "internal", held_on = "2026-01-10" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "계획")
      end },
    { name = "complex needs and priority groups surface in the recommendation", run = function(t)
        local r = t.record { program = "dream_start", kind = "assessment", subkind = "child_needs",
                             person = { age = 8, eligibility = { single_parent = true, near_poor = true } },
                             record = { domains = { health = { note = "치아 우식" }, cognition_language = { note = "언어 지연" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.recommendation.selection, "case_management")
        t.eq(r.result.recommendation.priority, true)
        t.eq(r.result.recommendation.priority_groups, { "차상위계층 가정", "보호대상 한부모가정" })
        r = t.record { program = "dream_start", kind = "assessment", subkind = "child_needs",
                       person = { age = 8, eligibility = {} },
                       record = { domains = { health = { note = "비만" }, parent_family = {} } } }
        t.eq(r.result.recommendation.selection, "service_linkage")
        t.eq(r.result.recommendation.priority, false)
        r = t.record { program = "dream_start", kind = "assessment", subkind = "child_needs",
                       record = { domains = { outer_space = { note = "x" } } } }
        t.eq(r.field, "domains.outer_space")
      end },
    { name = "opening sets the age-limit date (13th birthday)", run = function(t)
        local r = t.record { program = "dream_start", kind = "open", record = { source = "walk_in" }, today = "2026-01-01",
                             person = { birth_date = "2016-02-29", age = 9, eligibility = {} } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.set[1].kind, "age_limit")
        t.eq(r.effects.set[1].due_on, "2029-02-28")
        r = t.record { program = "dream_start", kind = "open", record = { source = "walk_in" }, today = "2026-01-01",
                       person = { birth_date = "1996-01-01", age = 30, eligibility = { pregnant = true } } }
        t.eq(#r.effects.set, 0)
      end },
    { name = "closure at the age limit suggests referral to the dong team", run = function(t)
        local r = t.record { program = "dream_start", kind = "closure", record = { reason = "age_limit", evaluation = "졸업" } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.reason_label, "제한 연령 도래 (만 12세·초등학교 졸업)")
        t.ok(string.find(r.result.next_step, "읍·면·동", 1, true))
        r = t.record { program = "dream_start", kind = "closure", record = { reason = "bored", evaluation = "x" } }
        t.eq(r.field, "reason")
      end },
    { name = "steps walk in order; 점검 loops back; closure from any step", run = function(t)
        local r = t.transition { program = "dream_start", case = { stage = "discovery" }, to = "assessment" }
        t.eq(r.kind, "not_allowed")
        t.eq(r.allowed, { "initial_counseling", "closure" })
        r = t.transition { program = "dream_start", case = { stage = "monitoring" }, to = "planning" }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "dream_start", case = { stage = "monitoring" }, to = "assessment" }
        t.ok(r.ok, r.reason)
        for _, s in ipairs({ "discovery", "initial_counseling", "intake", "assessment", "selection", "planning",
                             "delivery", "monitoring" }) do
          r = t.transition { program = "dream_start", case = { stage = s }, to = "closure", data = { reason = "moved" } }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
        end
        r = t.transition { program = "dream_start", case = { stage = "closure" }, to = "follow_up" }
        t.eq(r.kind, "stage_unused")
      end },
  },
}
