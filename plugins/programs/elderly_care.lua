-- 노인맞춤돌봄서비스: 일상생활 영위가 어려운 취약노인에게 돌봄서비스를
-- 제공하여 안정적인 노후생활을 보장하고 기능·건강 악화를 예방한다
-- (노인복지법 제27조의2). 예방적 돌봄서비스로 유사중복사업의 후순위.
-- Stage map: seed 003 (희망이음 표준 프로세스 표, 사회서비스 공통업무 지침)
-- "노인맞춤돌봄": 서비스 신청 (표준 1–2) → 서비스 신청접수 (3) → 대상자
-- 선정조사 및 서비스 상담 (4–5) → 서비스제공 계획수립 (6) → 서비스 제공 (7) →
-- 재사정 (8) → 종결/사후관리 (9–10); 공통업무 전출입관리·변동관리·상담관리.
-- Rules: seed 001 (2020 공공부문 사례관리 연계·협력 업무안내)
--   I.1 노인맞춤돌봄서비스: 사업대상, 유사중복사업 자격 해당자 ①–⑤, 특화서비스,
--       사후관리 서비스, 의뢰기준 및 절차 (사회, 신체, 정신영역 종합 판단)
--   부록1 3. (의료급여) 나. 연계대상: 노인맞춤돌봄서비스 기준 재확인
--
-- person.eligibility facts read here:
--   livelihood_recipient, near_poor, basic_pension   ①수급자 ②차상위 ③기초연금수급자
--   district_head_approved = true   시장·군수·구청장이 서비스가 필요하다고 인정 (소득기준 예외)
--   ltc_grade = 1..5 | "인지지원등급" …  노인장기요양보험 등급 ("등급외"/"none"는 등급 아님)
--   ltc_grade_past = true           이전 장기요양등급 판정 이력
--   home_help, veterans_home_care, disability_activity_support = true
--                                   가사·간병 방문지원, 보훈재가복지, 장애인 활동지원 수급자격
--   duplicate_services = {...}      the same as a list: "home_help", "veterans_home_care",
--                                   "disability_activity_support", "ltc", "local_similar",
--                                   or the name of a local service the 시·군·구 has listed
--                                   as 유사중복 해당 (⑤)
--   special_service = true          특화서비스 대상 (은둔형·우울형, 고독사·자살 위험 노인)
-- A case whose source is "special" (특화서비스) is treated like special_service.

local MIN_AGE = 65

-- 유사중복사업 자격 해당자 (seed 001 I.1 〈유사중복사업 자격 해당자〉 ②–④)
local NATIONAL = {
  { key = "home_help", reason = "유사중복사업 ②: 가사·간병 방문지원사업 수급자격이 확인되면 (현재 이용하지 않더라도) 노인맞춤돌봄서비스 대상자가 될 수 없습니다" },
  { key = "veterans_home_care", reason = "유사중복사업 ③: 국가보훈처 보훈재가복지서비스 이용자는 노인맞춤돌봄서비스 대상자가 될 수 없습니다" },
  { key = "disability_activity_support", reason = "유사중복사업 ④: 장애인 활동지원 사업 수급자격이 확인되면 (현재 이용하지 않더라도) 노인맞춤돌봄서비스 대상자가 될 수 없습니다" },
}
local LTC_REASON = "유사중복사업 ①: 노인장기요양보험 등급자는 노인맞춤돌봄서비스를 신청할 수 없습니다 (장기요양이 선순위)"
local LTC_PAST_REASON = "유사중복사업 ①: 이전에 장기요양등급 판정 이력이 있으면 신청 시점에 등급이 없더라도 신청할 수 없습니다"
local EXCEPTION_NOTE = " (특화서비스·사후관리는 유사중복사업 자격과 관계없이 제공 가능)"

local fact = sarye.lib.fact -- a recorded fact says yes ("없음", "no", 0 ... say no)

-- 장기요양 등급외 판정자 is not a grade holder (seed 001 부록1 2.: 노인장기요양보험
-- (장기요양 등급외 판정자) is a resource for visiting health, not a duplicate).
local NOT_A_GRADE = { ["등급외"] = true, ["등급 외"] = true, out_of_grade = true }
local function has_grade(e, key)
  if not fact(e, key) then return false end
  local v = e[key]
  return not (type(v) == "string" and NOT_A_GRADE[string.lower(v)])
end

-- 만 나이 (international age): the server's person.age, else from birth_date.
local age_of = sarye.lib.age

local function is_special(person, case)
  return (case and case.source == "special") or fact((person or {}).eligibility, "special_service")
end

-- The first 유사중복사업 the person is entitled to, as the reason that names it.
local function duplicate_reason(e)
  if has_grade(e, "ltc_grade") then return LTC_REASON end
  if fact(e, "ltc_grade_past") then return LTC_PAST_REASON end
  local listed = {}
  local d = e.duplicate_services
  if type(d) == "string" then d = { d } end
  if type(d) == "table" then for _, s in ipairs(d) do listed[s] = true end end
  if listed.ltc then return LTC_REASON end
  for _, n in ipairs(NATIONAL) do
    if fact(e, n.key) or listed[n.key] then return n.reason end
  end
  for _, s in ipairs(type(d) == "table" and d or {}) do
    if s ~= "" then
      local name = s == "local_similar" and "" or " (" .. s .. ")"
      return "유사중복사업 ⑤: 시·군·구가 유사중복으로 정한 국가·지자체 재가서비스" .. name ..
             " 대상자는 노인맞춤돌봄서비스 대상자가 될 수 없습니다"
    end
  end
  return nil
end

-- 사업대상 (seed 001 I.1): 만 65세 이상 ①국민기초생활수급자, ②차상위계층
-- 또는 ③기초연금수급자로서 유사중복사업 자격에 해당되지 않는 자 (다만,
-- 시장·군수·구청장이 서비스가 필요하다고 인정하는 경우 예외적으로 제공 가능:
-- read here as an exception to the income criterion only; the 장기요양 rule is
-- worded as "신청 불가"). 특화서비스 및 사후관리는 유사중복사업 자격과 관계없이.
local function check(person, case, today)
  local e = person.eligibility or {}
  local age = age_of(person, today)
  if age == nil then return false, "노인맞춤돌봄서비스는 만 65세 이상이 대상입니다: 생년월일을 확인할 수 없습니다" end
  if age < MIN_AGE then
    return false, string.format("노인맞춤돌봄서비스는 만 65세 이상 노인이 대상입니다 (만 %d세)", age)
  end
  if not (fact(e, "livelihood_recipient") or fact(e, "near_poor") or fact(e, "basic_pension")
          or fact(e, "district_head_approved")) then
    return false, "노인맞춤돌봄서비스 대상은 ①국민기초생활수급자, ②차상위계층 또는 ③기초연금수급자입니다 (시장·군수·구청장이 필요하다고 인정한 경우 예외)"
  end
  if not is_special(person, case) then
    local dup = duplicate_reason(e)
    if dup then return false, dup .. EXCEPTION_NOTE end
  end
  return true
end

local FRESH_DAYS = 30 -- a 행복e음 answer is trusted this long

local function noted(d, k) return type(d[k]) == "table" and type(d[k].note) == "string" and d[k].note ~= "" end

---@type sarye.Program
return {
  id = "elderly_care",
  kind = "program",
  version = "1.2.0",
  api = 1,
  name = "노인맞춤돌봄서비스",

  stages = {
    { id = "discovery",          label = "서비스 신청" },
    { id = "initial_counseling", label = "서비스 신청" },
    { id = "intake",             label = "서비스 신청접수" },
    { id = "assessment",         label = "대상자 선정조사 및 서비스 상담" },
    { id = "selection",          label = "대상자 선정조사 및 서비스 상담" },
    { id = "planning",           label = "서비스제공 계획수립" },
    { id = "delivery",           label = "서비스 제공" },
    { id = "monitoring",         label = "재사정" },
    { id = "closure",            label = "종결/사후관리" },
    { id = "follow_up",          label = "종결/사후관리" },
  },

  -- 재사정 → 서비스 제공 계속, 제공계획 변경, 또는 선정조사부터 다시;
  -- closure from every open step; 종결 후 사후관리.
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

  -- 사후관리 중 다시 돌봄이 필요하면 신청접수 또는 선정조사로 (the duplicate
  -- rule applies again at 선정: only follow-up itself is exempt)
  reopen_to = { "intake", "assessment" },

  closure_reasons = {
    goal_achieved = "목표달성",
    death = "사망",
    moved = "전출",
    refused = "거부",
    lost_contact = "연락두절",
    transferred = "이관",
    -- 장기요양등급 판정 등 유사중복사업 자격 취득 (seed 001 I.1: 선순위 사업으로)
    duplicate_service = "유사중복사업 자격 취득 (장기요양등급 판정 등)",
    not_eligible = "대상 기준 미충족 (재사정 결과)",
    other = "기타",
  },

  -- 자격 확인: the 행복e음 qualification data (agency `ssis`) is asked before the
  -- case opens, when the person's consent names it and no answer of the last
  -- 30 days is on record; its facts (수급, 차상위, 기초연금, 장기요양등급 …)
  -- then count with what the worker recorded.
  lookup = function(person, case, ctx)
    local cached = (person.eligibility or {}).ssis
    if type(cached) == "table" and cached.checked_on
       and sarye.date.diff_days(cached.checked_on, ctx.today) <= FRESH_DAYS then
      return nil
    end
    if not ctx.consent_allows("ssis") then return nil end
    local facts = sarye.http.post("ssis", "/lookup", { person_id = person.id, name = person.name,
                                                       birth_date = person.birth_date })
    return { facts = facts, cache_as = "ssis" }
  end,

  -- The facts eligibility reads (person.eligibility[key]) and what each means:
  -- GET /v1/programs/elderly_care lists them, so a client can ask for them.
  facts = {
    livelihood_recipient = "국민기초생활보장 수급자 (true/false)",
    near_poor = "차상위계층 (true/false)",
    basic_pension = "기초연금 수급자 (true/false)",
    district_head_approved = "시장·군수·구청장이 서비스가 필요하다고 인정 (true/false): 소득기준 예외",
    ltc_grade = "노인장기요양보험 등급: 1..5 또는 \"인지지원등급\" (\"등급외\", \"none\"은 등급 아님)",
    ltc_grade_past = "이전 장기요양등급 판정 이력 (true/false)",
    home_help = "가사·간병 방문지원 수급자격 (true/false)",
    veterans_home_care = "보훈재가복지 수급자격 (true/false)",
    disability_activity_support = "장애인 활동지원 수급자격 (true/false)",
    duplicate_services = "유사·중복 서비스 목록: \"home_help\", \"veterans_home_care\", \"disability_activity_support\", \"ltc\", \"local_similar\" 또는 시·군·구가 지정한 지역 서비스 이름",
    special_service = "특화서비스 대상 (은둔형·우울형, 고독사·자살 위험 노인) (true/false)",
  },

  eligibility = function(person, case, ctx)
    local looked = ctx.lookups and ctx.lookups.elderly_care
    local ssis = looked and looked.facts or (person.eligibility or {}).ssis
    if type(ssis) == "table" then
      local e = {}
      for k, v in pairs(person.eligibility or {}) do e[k] = v end
      for k, v in pairs(ssis) do e[k] = v end -- the national data wins over what was recorded
      person = { birth_date = person.birth_date, age = person.age, eligibility = e }
    end
    return check(person, case, ctx.today)
  end,

  instruments = {
    -- 사회, 신체, 정신영역을 종합적인 상태를 고려하여 대상자로 선정 (seed 001
    -- I.1 의뢰기준): every area is surveyed.
    selection_survey = { domains = { "social", "physical", "mental" }, all_domains = true },
    -- 특화서비스: 은둔형·우울형 노인에게 척도(우울감, 자살생각, 고독감 등) 활용 (I.1)
    special_screen = { domains = { "depression", "suicidal_ideation", "loneliness" } },
  },

  records = {
    closure = { required = { "reason", "evaluation" } },
  },

  on_record = {
    assessment = function(case, a, ctx)
      local d = a.domains or {}
      if d.social or d.physical or d.mental then -- 대상자 선정조사
        local ok, why = check(ctx.person() or {}, case, ctx.today)
        if not ok then return { recommendation = { selection = "not_selected", reasons = { why } } } end
        return { recommendation = { selection = "case_management", reasons = {
          "자격 기준 충족 (만 65세 이상, 소득 기준, 유사중복사업 비해당): 사회·신체·정신 영역의 종합적 상태로 서비스 내용·제공시간·주기 결정" } } }
      end
      -- 특화서비스 척도: 자살생각 → 고위험 독거노인 상호 연계 (seed 001 부록1 5. 차.)
      local reasons = {}
      if noted(d, "suicidal_ideation") then
        reasons[#reasons + 1] = "자살생각: 자살 위험 노인 — 정신건강복지센터 연계 및 희망복지지원단과 상호 협조 (고독사 예방)"
      end
      if noted(d, "depression") or noted(d, "loneliness") then
        reasons[#reasons + 1] = "우울감·고독감: 특화서비스 (개별 맞춤형 상담 및 집단활동) 검토"
      end
      if #reasons > 0 then return { recommendation = { special_service = true, reasons = reasons } } end
    end,
  },

  guards = {
    -- 대상자 선정조사를 한 뒤에 선정한다.
    ["assessment->selection"] = function(case, input, ctx)
      for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })) do
        local d = r.data and r.data.domains
        if r.subkind == "selection_survey" or (type(d) == "table" and (d.social or d.physical or d.mental)) then
          return true
        end
      end
      return false, "대상자 선정조사(사회·신체·정신 영역)를 기록한 뒤에 선정합니다"
    end,
    -- 선정: facts may have changed since the application (e.g. a 장기요양등급
    -- 판정 meanwhile); the same rules decide, except for 특화서비스.
    ["selection->planning"] = function(case, input, ctx)
      local ok, why = check(ctx.person() or {}, case, ctx.today)
      if not ok then return false, "선정 불가: " .. why end
      return true
    end,
  },

  tests = {
    { name = "the national qualification data counts with the recorded facts", run = function(t)
        local person = { birth_date = "1950-01-01", age = 76, eligibility = {} }
        t.eq(t.open { program = "elderly_care", person = person, today = "2026-06-01" }.kind, "refused")
        local r = t.open { program = "elderly_care", person = person, today = "2026-06-01",
                           lookups = { elderly_care = { facts = { basic_pension = true } } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "elderly_care", person = person, today = "2026-06-01",
                     lookups = { elderly_care = { facts = { basic_pension = true, ltc_grade = 3 } } } }
        t.eq(r.kind, "refused")
      end },
    { name = "first stage is 서비스 신청; 종결/사후관리 spans closure and follow-up", run = function(t)
        local rules = t.rules("elderly_care")
        t.eq(rules.first_stage, "discovery")
        t.eq(rules.stages[1].label, "서비스 신청")
        t.eq(rules.stages[2].label, "서비스 신청")
        t.eq(rules.stages[3].label, "서비스 신청접수")
        t.eq(rules.stages[4].label, "대상자 선정조사 및 서비스 상담")
        t.eq(rules.stages[5].label, "대상자 선정조사 및 서비스 상담")
        t.eq(rules.stages[8].label, "재사정")
        t.eq(rules.stages[9].label, "종결/사후관리")
        t.eq(rules.stages[10].label, "종결/사후관리")
      end },
    { name = "65 and a basic-pension recipient is eligible; 64 is not", run = function(t)
        local r = t.open { program = "elderly_care",
                           person = { birth_date = "1960-01-01", age = 65, eligibility = { basic_pension = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "elderly_care",
                     person = { birth_date = "1961-06-01", age = 64, eligibility = { basic_pension = true } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "만 65세", 1, true))
      end },
    { name = "income criterion: recipient, near-poor or basic pension", run = function(t)
        for _, k in ipairs({ "livelihood_recipient", "near_poor" }) do
          local r = t.open { program = "elderly_care", person = { age = 80, eligibility = { [k] = true } } }
          t.ok(r.ok, k .. ": " .. tostring(r.reason))
        end
        local r = t.open { program = "elderly_care", person = { age = 80, eligibility = { basic_pension = false } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "기초연금수급자", 1, true))
        r = t.open { program = "elderly_care", person = { age = 80, eligibility = { district_head_approved = true } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "a long-term-care grade, even a past one, excludes", run = function(t)
        local r = t.open { program = "elderly_care", person = { age = 80, eligibility = { basic_pension = true, ltc_grade = 4 } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "노인장기요양보험 등급자", 1, true), r.reason)
        r = t.open { program = "elderly_care", person = { age = 80, eligibility = { basic_pension = true, ltc_grade_past = true } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "판정 이력", 1, true), r.reason)
        r = t.open { program = "elderly_care", person = { age = 80, eligibility = { basic_pension = true, ltc_grade = "등급외" } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "home help, veterans' home care, disability activity support exclude", run = function(t)
        local want = { home_help = "가사·간병 방문지원사업", veterans_home_care = "보훈재가복지서비스",
                       disability_activity_support = "장애인 활동지원" }
        for key, words in pairs(want) do
          local r = t.open { program = "elderly_care", person = { age = 70, eligibility = { near_poor = true, [key] = true } } }
          t.eq(r.kind, "refused", key)
          t.ok(string.find(r.reason, words, 1, true), r.reason)
          r = t.open { program = "elderly_care",
                       person = { age = 70, eligibility = { near_poor = true, duplicate_services = { key } } } }
          t.eq(r.kind, "refused", key .. " (list)")
        end
      end },
    { name = "a local service the district listed excludes, named", run = function(t)
        local r = t.open { program = "elderly_care",
                           person = { age = 70, eligibility = { near_poor = true, duplicate_services = { "구 도시락배달서비스" } } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "유사중복사업 ⑤", 1, true))
        t.ok(string.find(r.reason, "도시락배달서비스", 1, true))
        r = t.open { program = "elderly_care",
                     person = { age = 70, eligibility = { near_poor = true, duplicate_services = { "local_similar" } } } }
        t.eq(r.kind, "refused")
        r = t.open { program = "elderly_care", person = { age = 70, eligibility = { near_poor = true, duplicate_services = {} } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "special services ignore the duplicate rule, not the others", run = function(t)
        local r = t.open { program = "elderly_care",
                           person = { age = 78, eligibility = { basic_pension = true, ltc_grade = 3, special_service = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "elderly_care", source = "special",
                     person = { age = 78, eligibility = { basic_pension = true, home_help = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "elderly_care",
                     person = { age = 60, eligibility = { basic_pension = true, special_service = true } } }
        t.eq(r.kind, "refused")
      end },
    { name = "selection needs the selection survey", run = function(t)
        local r = t.transition { program = "elderly_care", case = { stage = "assessment" }, to = "selection",
                                 queries = { records_of_case = { { kind = "assessment", subkind = "special_screen",
                                                                    data = { domains = { depression = {} } } } } } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "elderly_care", case = { stage = "assessment" }, to = "selection",
                           queries = { records_of_case = { { kind = "assessment", subkind = "selection_survey",
                                                              data = { domains = { social = {}, physical = {}, mental = {} } } } } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "selection re-checks the rules with today's facts", run = function(t)
        local r = t.transition { program = "elderly_care", case = { stage = "selection" }, to = "planning",
                                 person = { age = 81, eligibility = { basic_pension = true, ltc_grade = 2 } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "장기요양", 1, true))
        r = t.transition { program = "elderly_care", case = { stage = "selection" }, to = "planning",
                           person = { age = 81, eligibility = { basic_pension = true } } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "서비스제공 계획수립")
      end },
    { name = "follow-up ignores the duplicate rule", run = function(t)
        local r = t.transition { program = "elderly_care", case = { stage = "closure" }, to = "follow_up",
                                 person = { age = 81, eligibility = { basic_pension = true, ltc_grade = 2 } } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "종결/사후관리")
      end },
    { name = "the selection survey covers every area and recommends", run = function(t)
        local r = t.record { program = "elderly_care", kind = "assessment", subkind = "selection_survey",
                             record = { domains = { social = { note = "독거" }, physical = {} } } }
        t.eq(r.kind, "invalid")
        t.eq(r.field, "domains.mental")
        r = t.record { program = "elderly_care", kind = "assessment", subkind = "selection_survey",
                       person = { age = 79, eligibility = { near_poor = true, veterans_home_care = true } },
                       record = { domains = { social = { note = "독거" }, physical = {}, mental = {} } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.recommendation.selection, "not_selected")
        t.ok(string.find(r.result.recommendation.reasons[1], "보훈재가", 1, true))
        r = t.record { program = "elderly_care", kind = "assessment", subkind = "selection_survey",
                       person = { age = 79, eligibility = { near_poor = true } },
                       record = { domains = { social = { note = "독거" }, physical = {}, mental = {} } } }
        t.eq(r.result.recommendation.selection, "case_management")
      end },
    { name = "special screen flags suicidal ideation", run = function(t)
        local r = t.record { program = "elderly_care", kind = "assessment", subkind = "special_screen",
                             record = { domains = { suicidal_ideation = { note = "죽고 싶다는 표현" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.recommendation.special_service, true)
        t.ok(string.find(r.result.recommendation.reasons[1], "정신건강복지센터", 1, true))
      end },
    { name = "closure from any step; reopen after follow-up", run = function(t)
        for _, s in ipairs({ "discovery", "initial_counseling", "intake", "assessment", "selection", "planning",
                             "delivery", "monitoring" }) do
          local r = t.transition { program = "elderly_care", case = { stage = s }, to = "closure",
                                   data = { reason = "duplicate_service" } }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
        end
        local r = t.transition { program = "elderly_care", case = { stage = "monitoring" }, to = "planning" }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "elderly_care", case = { stage = "delivery" }, to = "planning" }
        t.eq(r.kind, "not_allowed")
        r = t.transition { program = "elderly_care", case = { stage = "follow_up", status = "follow_up" },
                           to = "assessment", reopen = true }
        t.ok(r.ok, r.reason)
        r = t.record { program = "elderly_care", kind = "closure", record = { reason = "duplicate_service", evaluation = "장기요양 4등급" } }
        t.eq(r.result.reason_label, "유사중복사업 자격 취득 (장기요양등급 판정 등)")
      end },
  },
}
