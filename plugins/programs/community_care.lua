-- 커뮤니티케어 (지역사회 통합돌봄, community care): helping people who need
-- care live in their own community rather than in hospitals or facilities,
-- run by the 시·군·구 of the 선도사업 areas.
-- Stage map: seed 003 (희망이음 표준 프로세스 표, row 커뮤니티케어): the same steps
-- as 통합사례관리, where "서비스 제공 및 점검" spans the standard stages 7–8.
-- Rules: seed 001 (2020 연계·협력 업무안내) 개정 대조표 and I.4 의료급여사례관리
-- "사업 내용" (장기입원 후 퇴원한 대상자의 지역사회 정착을 지원하기 위해 돌봄, 식사
-- 및 이동 지원 등의 재가급여 제공 — 커뮤니티케어 선도사업지역에서 실시), and the
-- case-conference attendance rules of 부록1.5 (통합사례회의).
--
-- Not in the seeds (they name the program through the medical-aid pilot
-- only): the wider 선도사업 target of 돌봄이 필요한 노인(65세 이상)·장애인·
-- 정신질환자. Which areas run the program is a region's decision (선도사업지역):
-- a region plugin adds its own eligibility.
--
-- person.eligibility keys read here:
--   discharged_long_stay  장기입원 후 퇴원 (true)
--   needs_care            돌봄이 필요함 (true)
--   disability            장애인 (true)
--   mental_illness        정신질환자 (true)
--   medical_aid           의료급여 수급권자 (true)

local ELDERLY_FROM = 65

-- 욕구조사 영역: 통합사례관리의 8개 영역 (seed 004) with 돌봄 and 주거
local DOMAINS = { "safety", "health", "daily_living", "social_relations", "economy", "education",
                  "employment", "rights", "care", "housing" }

-- 만 나이 (international age): the server's person.age, else from birth_date.
local age_of = sarye.lib.age

local has_approved_plan = sarye.lib.has_approved_plan

---@type sarye.Program
return {
  id = "community_care",
  kind = "program",
  version = "1.1.0",
  api = 1,
  name = "커뮤니티케어",

  stages = {
    { id = "discovery",          label = "발굴" },
    { id = "initial_counseling", label = "초기상담" },
    { id = "intake",             label = "접수" },
    { id = "assessment",         label = "조사" },
    { id = "selection",          label = "대상자 선정" },
    { id = "planning",           label = "서비스 제공계획" },
    { id = "delivery",           label = "서비스 제공 및 점검" },
    { id = "monitoring",         label = "서비스 제공 및 점검" },
    { id = "closure",            label = "종결" },
    { id = "follow_up",          label = "사후관리" },
  },

  -- 점검: 재조사, 계획 조정 (as 통합사례관리); every open step may close.
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

  -- 사후관리 중 새로운 욕구 → 재개입
  reopen_to = { "intake", "assessment" },

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
    institutionalized = "시설 입소·장기 입원 (지역사회 거주 중단)",
  },

  -- The facts eligibility reads (person.eligibility[key]) and what each means:
  -- GET /v1/programs/community_care lists them, so a client can ask for them.
  facts = {
    discharged_long_stay = "장기입원 후 퇴원한 사람 (true/false)",
    needs_care = "돌봄이 필요함 (true/false): 65세 이상 노인, 장애인, 정신질환자와 함께",
    disability = "장애인 (true/false)",
    mental_illness = "정신질환자 (true/false)",
    medical_aid = "의료급여수급권자 (true/false): 퇴원자의 의료급여 연계",
  },

  eligibility = function(person, case, ctx)
    local e = person.eligibility or {}
    -- seed 001 I.4: 장기입원 후 퇴원한 대상자의 지역사회 정착 지원
    if e.discharged_long_stay == true then return true end
    local age = age_of(person, ctx.today)
    if e.needs_care == true and ((age and age >= ELDERLY_FROM) or e.disability == true or e.mental_illness == true) then
      return true
    end
    return false, "커뮤니티케어 대상은 장기입원 후 퇴원한 사람, 또는 돌봄이 필요한 노인(65세 이상)·장애인·정신질환자입니다 " ..
                  "(eligibility.discharged_long_stay / needs_care + disability / mental_illness)"
  end,

  records = {
    closure = { required = { "reason", "evaluation" } },
    -- 통합사례회의 참석 (seed 001 부록1.5): 의료급여 수급권자의 입·퇴원 관련 사례회의 →
    -- 의료급여관리사 반드시 참석; 정신보건·건강서비스가 주요 서비스 → 보건소 또는
    -- 정신건강복지센터 담당자 반드시 참석. Decisions carry a topic
    -- (admission_discharge, health_service), participants a role.
    meeting = {
      validate = function(case, m, ctx)
        local roles = {}
        for _, p in ipairs(m.participants or {}) do roles[p.role] = true end
        local medical_aid = (((ctx.person() or {}).eligibility) or {}).medical_aid == true
        for _, d in ipairs(m.decisions or {}) do
          local topic = type(d) == "table" and d.topic or nil
          if topic == "admission_discharge" and medical_aid and not roles.medical_aid_manager then
            return false, "의료급여 수급권자의 입·퇴원 관련 사례회의에는 의료급여관리사(medical_aid_manager)가 반드시 참석해야 합니다"
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
    -- 장기입원 후 퇴원한 의료급여 수급권자: 의료급여사례관리의 재가급여 (돌봄, 식사,
    -- 이동 지원)와 연계 (seed 001 I.4).
    assessment = function(case, a, ctx)
      local e = (ctx.person() or {}).eligibility or {}
      if e.discharged_long_stay == true and e.medical_aid == true then
        return { recommendation = { referrals = { "medical_aid" },
                                    reasons = { "장기입원 후 퇴원한 의료급여 수급권자: 의료급여 재가급여(돌봄·식사·이동 지원) 연계 검토" } } }
      end
    end,
  },

  guards = {
    ["assessment->selection"] = function(case, input, ctx)
      if #ctx.query("records_of_case", { case_id = case.id, kind = "assessment" }) == 0 then
        return false, "조사를 기록한 뒤에 대상자를 선정합니다"
      end
      return true
    end,
    -- 서비스 제공계획 승인 후 제공 (as 통합사례관리, seed 004 II.5)
    ["planning->delivery"] = function(case, input, ctx)
      if not has_approved_plan(ctx, case) then
        return false, "서비스 제공계획이 승인되어야 서비스를 제공할 수 있습니다"
      end
      return true
    end,
  },

  tests = {
    { name = "stage map from seed 003", run = function(t)
        local rules = t.rules("community_care")
        t.eq(rules.first_stage, "discovery")
        local labels = {}
        for i, s in ipairs(rules.stages) do labels[i] = s.label end
        t.eq(labels, { "발굴", "초기상담", "접수", "조사", "대상자 선정", "서비스 제공계획", "서비스 제공 및 점검",
                       "서비스 제공 및 점검", "종결", "사후관리" })
      end },
    { name = "a person discharged after a long stay is eligible at any age", run = function(t)
        local r = t.open { program = "community_care", today = "2026-03-01",
                           person = { birth_date = "1975-01-01", age = 51, eligibility = { discharged_long_stay = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "community_care", today = "2026-03-01",
                     person = { birth_date = "1975-01-01", age = 51, eligibility = {} } }
        t.eq(r.kind, "refused")
      end },
    { name = "an older person needing care is eligible from 65", run = function(t)
        local r = t.open { program = "community_care", today = "2026-03-01",
                           person = { birth_date = "1960-01-01", age = 66, eligibility = { needs_care = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "community_care", today = "2026-03-01",
                     person = { birth_date = "1962-01-01", age = 64, eligibility = { needs_care = true } } }
        t.eq(r.kind, "refused")
        r = t.open { program = "community_care", today = "2026-03-01",
                     person = { birth_date = "1950-01-01", age = 76, eligibility = {} } }
        t.eq(r.kind, "refused")
      end },
    { name = "a disabled or mentally ill person needing care is eligible", run = function(t)
        local r = t.open { program = "community_care", today = "2026-03-01",
                           person = { birth_date = "1990-01-01", age = 36, eligibility = { needs_care = true, disability = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "community_care", today = "2026-03-01",
                     person = { birth_date = "1990-01-01", age = 36, eligibility = { needs_care = true, mental_illness = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "community_care", today = "2026-03-01",
                     person = { birth_date = "1990-01-01", age = 36, eligibility = { disability = true } } }
        t.eq(r.kind, "refused")
      end },
    { name = "no selection without an assessment", run = function(t)
        local r = t.transition { program = "community_care", case = { stage = "assessment" }, to = "selection",
                                 queries = { records_of_case = {} } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "community_care", case = { stage = "assessment" }, to = "selection",
                           queries = { records_of_case = { { kind = "assessment" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "대상자 선정")
      end },
    { name = "no delivery without an approved plan", run = function(t)
        local r = t.transition { program = "community_care", case = { stage = "planning" }, to = "delivery",
                                 queries = { plans_of_case = { { status = "draft" } } } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "community_care", case = { stage = "planning" }, to = "delivery",
                           queries = { plans_of_case = { { status = "approved" } } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "steps in order; every open step may close; follow-up and reopen", run = function(t)
        local r = t.transition { program = "community_care", case = { stage = "discovery" }, to = "intake" }
        t.eq(r.kind, "not_allowed")
        for _, s in ipairs({ "discovery", "initial_counseling", "intake", "assessment", "selection", "planning",
                             "delivery", "monitoring" }) do
          r = t.transition { program = "community_care", case = { stage = s }, to = "closure",
                             data = { reason = "institutionalized" } }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
        end
        r = t.transition { program = "community_care", case = { stage = "closure" }, to = "follow_up" }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "community_care", case = { stage = "follow_up", status = "follow_up" },
                           to = "assessment", reopen = true }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "community_care", case = { stage = "monitoring" }, to = "planning" }
        t.ok(r.ok, r.reason)
      end },
    { name = "a discharge conference of a medical-aid recipient needs the 의료급여관리사", run = function(t)
        local decided = { { topic = "admission_discharge", text = "퇴원 후 재가 돌봄" } }
        local r = t.record { program = "community_care", kind = "meeting",
                             person = { eligibility = { medical_aid = true } },
                             record = { type = "integrated", decisions = decided,
                                        participants = { { org = "gu", role = "case_worker" } } } }
        t.eq(r.kind, "refused")
        r = t.record { program = "community_care", kind = "meeting", person = { eligibility = { medical_aid = true } },
                       record = { type = "integrated", decisions = decided,
                                  participants = { { org = "gu", role = "case_worker" }, { org = "gu", role = "medical_aid_manager" } } } }
        t.ok(r.ok, r.reason)
        r = t.record { program = "community_care", kind = "meeting", person = { eligibility = {} },
                       record = { type = "integrated", decisions = decided,
                                  participants = { { org = "gu", role = "case_worker" } } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "health services as main service need the health or mental-health centre", run = function(t)
        local decided = { { topic = "health_service", text = "방문간호" } }
        local r = t.record { program = "community_care", kind = "meeting",
                             record = { type = "integrated", decisions = decided,
                                        participants = { { org = "gu", role = "case_worker" } } } }
        t.eq(r.kind, "refused")
        r = t.record { program = "community_care", kind = "meeting",
                       record = { type = "integrated", decisions = decided,
                                  participants = { { org = "bogeonso", role = "health_center" } } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "a discharged medical-aid recipient is suggested for 의료급여 재가급여", run = function(t)
        local r = t.record { program = "community_care", kind = "assessment", subkind = "needs",
                             person = { eligibility = { discharged_long_stay = true, medical_aid = true } },
                             record = { domains = { care = { note = "식사 지원 필요" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.recommendation.referrals, { "medical_aid" })
        r = t.record { program = "community_care", kind = "assessment", subkind = "needs",
                       person = { eligibility = { needs_care = true } },
                       record = { domains = { housing = { note = "주거 개선" } } } }
        t.eq(r.result.recommendation, nil)
      end },
    { name = "closure reasons come from the list", run = function(t)
        local r = t.record { program = "community_care", kind = "closure",
                             record = { reason = "institutionalized", evaluation = "요양원 입소" } }
        t.eq(r.result.reason_label, "시설 입소·장기 입원 (지역사회 거주 중단)")
        r = t.record { program = "community_care", kind = "closure", record = { reason = "bored", evaluation = "x" } }
        t.eq(r.field, "reason")
      end },
  },
}
