-- 자활 사례관리: 지역자활센터가 자활사업 참여자의 자립 역량을 높이도록
-- 개인별 자립경로(IAP)와 자활지원계획(ISP)을 세우고 실행한다
-- (국민기초생활보장법 제9조 제5항, 제15조).
-- Stage map: seed 003 (희망이음 표준 프로세스 표) "자활 사례관리":
-- 접수 및 초기상담 단계 (표준 1–3) → 사정 단계 (4–5) → 계획수립 (6) →
-- 실행 및 점검 단계 (7–8) → 평가 및 종결 (9) → 사후관리 (10); 공통업무 사례회의.
-- (The spans follow DOMAIN.md; the seed's text extraction of the merged table
-- cells is ambiguous, and the step names match these spans.)
-- Rules: seed 001 (2020 공공부문 사례관리 연계·협력 업무안내)
--   I.5 자활사례관리: 사업대상, 사업 내용 (IAP·ISP), 의뢰기준 및 절차
--   II.1 읍·면·동 게이트웨이: 자활사례관리의 부적합자 → 읍·면·동으로 기초생활수급
--        자격 변동 요청·의뢰
--   II.5 자활-정신보건 연계: 부적격자는 읍·면·동 통합사례관리; 중독·정신건강 문제로
--        참여가 어려우면 정신건강복지센터·중독관리통합지원센터로 의뢰
--
-- person.eligibility facts read here:
--   conditional_recipient = true       조건부 수급자 (참여 의무)
--   self_support_special = true        자활급여 특례자        ┐
--   livelihood_recipient = true        일반수급자             │ 희망 참여:
--   benefit_special_household = true   급여특례가구원         │ with
--   near_poor = true                   차상위자               │ self_support_wish
--   facility_recipient = true          시설수급자             ┘
--   self_support_wish = true           자활사업 참여 희망
--
-- Plans (IAP + ISP, seed 001 I.5 사업 내용): within the plan shape {goals =
-- {{term, text, start?, end?, services}}, note?}, each goal's text starts with
-- its tag, "[IAP] …" (맞춤형 자립경로: where the participant wants to get) or
-- "[ISP] …" (자활지원계획: the steps and supports to get there; each ISP goal
-- names at least one service). A plan needs both.

local VOLUNTARY = {
  { key = "self_support_special", label = "자활급여 특례자" },
  { key = "livelihood_recipient", label = "일반수급자" },
  { key = "benefit_special_household", label = "급여특례가구원" },
  { key = "near_poor", label = "차상위자" },
  { key = "facility_recipient", label = "시설수급자" },
}

local fact = sarye.lib.fact -- a recorded fact says yes ("없음", "no", 0 ... say no)

-- "[IAP] …", "IAP: …", "iap …" -> "IAP"; untagged -> nil
local function goal_tag(text)
  if type(text) ~= "string" then return nil end
  local tag = string.match(text, "^%s*%[%s*(%a%a%a)%s*%]") or string.match(text, "^%s*(%a%a%a)[%s:%.%-]")
  tag = tag and string.upper(tag)
  if tag == "IAP" or tag == "ISP" then return tag end
  return nil
end

local function current_plan(ctx, case)
  for _, p in ipairs(ctx.query("plans_of_case", { case_id = case.id })) do
    if p.status ~= "superseded" and p.status ~= "rejected" then return p end
  end
  return nil
end

---@type sarye.Program
return {
  id = "self_sufficiency",
  kind = "program",
  version = "1.1.0",
  api = 1,
  name = "자활 사례관리",
  -- Seed 003's overview (통합사례관리 플랫폼의 표준 프로세스 표) has a row of its own
  -- for 자산형성: 조사 → IAP 및 ISP 수립 → 점검/평가 → 종결. It is folded in here:
  -- the same 지역자활센터 runs it on the same 자활정보시스템 (seed 003 사례관리 사업별
  -- 시스템 현황), with the same plans (IAP·ISP, seed 001 I.5), and its four steps
  -- are this program's 사정 단계 → 계획수립 → 실행 및 점검 단계 → 평가 및 종결.
  covers = {
    { name = "자활 사례관리", why = "seed 003 표준 프로세스 표의 자활 사례관리 프로세스" },
    { name = "자산형성", why = "seed 003 표의 자산형성 (조사 → IAP 및 ISP 수립 → 점검/평가 → 종결)은 자활 사례관리의 사정 → 계획수립(IAP·ISP) → 실행 및 점검 → 평가 및 종결과 같은 절차·같은 계획(IAP·ISP, seed 001 I.5)이고 같은 지역자활센터·자활정보시스템이 운영하므로 자활 사례관리로 관리한다" },
  },

  stages = {
    { id = "discovery",          label = "접수 및 초기상담 단계" },
    { id = "initial_counseling", label = "접수 및 초기상담 단계" },
    { id = "intake",             label = "접수 및 초기상담 단계" },
    { id = "assessment",         label = "사정 단계" },
    { id = "selection",          label = "사정 단계" },
    { id = "planning",           label = "계획수립" },
    { id = "delivery",           label = "실행 및 점검 단계" },
    { id = "monitoring",         label = "실행 및 점검 단계" },
    { id = "closure",            label = "평가 및 종결" },
    { id = "follow_up",          label = "사후관리" },
  },

  -- 단계적으로 실행 (seed 001 I.5): 점검에서 재사정 또는 계획(IAP·ISP) 수정;
  -- 부적합자는 어느 단계에서든 종결(unfit)로 읍·면·동에 돌려보낸다.
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

  -- 사후관리 중 다시 참여하면 접수 또는 사정으로
  reopen_to = { "intake", "assessment" },

  closure_reasons = {
    goal_achieved = "목표달성 (자립)",
    death = "사망",
    moved = "전출",
    refused = "거부",
    lost_contact = "연락두절",
    transferred = "이관",
    -- 자활사례관리 부적합자 → 시·군·구 자활팀이 읍·면·동에 수급자 자격변동
    -- 요청 및 통합사례관리 의뢰 (seed 001 II.1, II.5)
    unfit = "자활사업 참여 부적합 (읍·면·동 자격변동 요청·통합사례관리 의뢰)",
    other = "기타",
  },

  -- 사업대상 (seed 001 I.5): 조건부 수급자, 자활급여 특례자(희망 참여),
  -- 일반수급자(희망 참여), 급여특례가구원(희망 참여), 차상위자(희망 참여),
  -- 시설수급자(희망 참여).
  -- The facts eligibility reads (person.eligibility[key]) and what each means:
  -- GET /v1/programs/self_sufficiency lists them, so a client can ask for them.
  facts = {
    conditional_recipient = "조건부 수급자: 참여 의무 (true/false)",
    self_support_special = "자활급여 특례자 (true/false): 희망 참여",
    livelihood_recipient = "일반수급자 (true/false): 희망 참여",
    benefit_special_household = "급여특례가구원 (true/false): 희망 참여",
    near_poor = "차상위자 (true/false): 희망 참여",
    facility_recipient = "시설수급자 (true/false): 희망 참여",
    self_support_wish = "자활사업 참여 희망 (true/false)",
  },

  eligibility = function(person, case, ctx)
    local e = person.eligibility or {}
    if fact(e, "conditional_recipient") then return true end
    local groups = {}
    for _, g in ipairs(VOLUNTARY) do if fact(e, g.key) then groups[#groups + 1] = g.label end end
    if #groups == 0 then
      return false, "자활사업 대상은 조건부 수급자, 자활급여 특례자·일반수급자·급여특례가구원·차상위자·시설수급자 중 희망 참여자입니다"
    end
    if not fact(e, "self_support_wish") then
      return false, string.format("%s은(는) 희망 참여자만 자활사업 대상입니다 (참여 희망 self_support_wish 미확인)",
                                  table.concat(groups, ", "))
    end
    return true
  end,

  instruments = {
    -- 사업목표 (seed 001 I.5): ① 사회·경제적 자활자립 역량 및 문제해결 능력
    -- ② 공식·비공식 자원 획득 역량 ③ 심리정서적·신체적 안정; and the two
    -- problems that send a participant to another program (II.5).
    self_support = { domains = { "self_reliance", "resources", "psychological", "physical",
                                 "mental_health", "addiction" } },
  },

  records = {
    plan = {
      validate = function(case, plan, ctx)
        local has = { IAP = false, ISP = false }
        for i, goal in ipairs(plan.goals or {}) do
          local tag = goal_tag(goal.text)
          if not tag then
            return false, string.format("목표 %d: 개인별 자립경로는 '[IAP] …', 자활지원계획은 '[ISP] …'로 시작하세요", i)
          end
          if tag == "ISP" and (type(goal.services) ~= "table" or #goal.services == 0) then
            return false, string.format("목표 %d: 자활지원계획(ISP) 목표에는 지원 서비스를 하나 이상 적으세요", i)
          end
          has[tag] = true
        end
        if not has.IAP then return false, "자활 계획에는 맞춤형 자립경로(IAP) 목표가 있어야 합니다" end
        if not has.ISP then return false, "자활 계획에는 자립을 달성하기 위한 자활지원계획(ISP) 목표가 있어야 합니다" end
        return true
      end,
    },
    closure = { required = { "reason", "evaluation" } },
  },

  on_record = {
    -- 중독이나 정신건강 문제로 자활사업 참여에 어려움 → 정신건강복지센터 및
    -- 중독관리통합지원센터 사례관리로 의뢰 (seed 001 II.5); the 자활 case goes on.
    assessment = function(case, a, ctx)
      local d = a.domains or {}
      local function noted(k) return type(d[k]) == "table" and type(d[k].note) == "string" and d[k].note ~= "" end
      local referrals, reasons = {}, {}
      if noted("mental_health") then
        referrals[#referrals + 1] = "mental_health"
        reasons[#reasons + 1] = "정신건강 문제로 자활사업 참여에 어려움: 정신건강복지센터 사례관리 의뢰 검토"
      end
      if noted("addiction") then
        referrals[#referrals + 1] = "addiction"
        reasons[#reasons + 1] = "중독 문제로 자활사업 참여에 어려움: 중독관리통합지원센터 사례관리 의뢰 검토"
      end
      if #reasons > 0 then return { recommendation = { referrals = referrals, reasons = reasons } } end
    end,
    -- 부적격자: 시·군·구 자활팀 → 읍·면·동 수급자 자격변동 요청 및 통합사례관리 의뢰
    closure = function(case, rec, ctx)
      if rec.reason == "unfit" then
        return { send_back = { to = "emd", program = "integrated",
                               requests = { "기초생활수급 자격변동 요청", "통합사례관리 의뢰" } } }
      end
    end,
  },

  guards = {
    -- 사정 없이 계획하지 않는다: 욕구와 개인 상황에 적합한 IAP·ISP (seed 001 I.5)
    ["selection->planning"] = function(case, input, ctx)
      local n = 0
      for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })) do
        if r.kind == nil or r.kind == "assessment" then n = n + 1 end
      end
      if n == 0 then return false, "참여자의 욕구와 개인 상황을 사정(기록)한 뒤에 IAP·ISP를 수립합니다" end
      return true
    end,
    -- IAP 및 ISP를 수립하고 단계적으로 실행 (seed 001 I.5)
    ["planning->delivery"] = function(case, input, ctx)
      if not current_plan(ctx, case) then
        return false, "개인별 자립경로(IAP)와 자활지원계획(ISP)을 수립한 뒤에 실행합니다"
      end
      return true
    end,
  },

  tests = {
    { name = "first stage is 접수 및 초기상담 단계; ten stages", run = function(t)
        local rules = t.rules("self_sufficiency")
        t.eq(rules.first_stage, "discovery")
        t.eq(rules.stages[1].label, "접수 및 초기상담 단계")
        t.eq(rules.stages[3].label, "접수 및 초기상담 단계")
        t.eq(rules.stages[4].label, "사정 단계")
        t.eq(rules.stages[5].label, "사정 단계")
        t.eq(rules.stages[6].label, "계획수립")
        t.eq(rules.stages[7].label, "실행 및 점검 단계")
        t.eq(rules.stages[8].label, "실행 및 점검 단계")
        t.eq(rules.stages[9].label, "평가 및 종결")
        t.eq(rules.stages[10].label, "사후관리")
      end },
    { name = "a conditional recipient is eligible without asking", run = function(t)
        local r = t.open { program = "self_sufficiency",
                           person = { birth_date = "1980-01-01", age = 46, eligibility = { conditional_recipient = true } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "near-poor and other groups only when they wish to take part", run = function(t)
        local r = t.open { program = "self_sufficiency",
                           person = { birth_date = "1980-01-01", age = 46, eligibility = { near_poor = true, self_support_wish = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "self_sufficiency",
                     person = { birth_date = "1980-01-01", age = 46, eligibility = { near_poor = true } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "희망 참여", 1, true), r.reason)
      end },
    { name = "nobody outside the target groups", run = function(t)
        local r = t.open { program = "self_sufficiency",
                           person = { birth_date = "1980-01-01", age = 46, eligibility = { self_support_wish = true, basic_pension = true } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "조건부 수급자", 1, true))
      end },
    { name = "a plan needs tagged IAP and ISP goals", run = function(t)
        local svc = { { type = "service", method = "direct", content = "자활근로사업단 참여", start = "2026-01-01", ["end"] = "2026-06-30" } }
        local r = t.record { program = "self_sufficiency", kind = "plan",
                             record = { goals = { { term = "long", text = "바리스타로 취업" } } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "[IAP]", 1, true))
        r = t.record { program = "self_sufficiency", kind = "plan",
                       record = { goals = { { term = "long", text = "[IAP] 바리스타로 취업" } } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "ISP", 1, true))
        r = t.record { program = "self_sufficiency", kind = "plan",
                       record = { goals = { { term = "long", text = "[IAP] 바리스타로 취업" },
                                            { term = "short", text = "[ISP] 카페 사업단 6개월 근로" } } } }
        t.eq(r.kind, "refused") -- an ISP goal names its services
        r = t.record { program = "self_sufficiency", kind = "plan",
                       record = { goals = { { term = "long", text = "IAP: 바리스타로 취업" },
                                            { term = "short", text = "[isp] 카페 사업단 6개월 근로", services = svc } } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "no plan before an assessment; no delivery before a plan", run = function(t)
        local r = t.transition { program = "self_sufficiency", case = { stage = "selection" }, to = "planning",
                                 queries = { records_of_case = {} } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "self_sufficiency", case = { stage = "selection" }, to = "planning",
                           queries = { records_of_case = { { kind = "assessment", subkind = "self_support" } } } }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "self_sufficiency", case = { stage = "planning" }, to = "delivery",
                           queries = { plans_of_case = { { status = "superseded" } } } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "self_sufficiency", case = { stage = "planning" }, to = "delivery",
                           queries = { plans_of_case = { { status = "draft" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "실행 및 점검 단계")
      end },
    { name = "mental-health and addiction problems suggest a referral", run = function(t)
        local r = t.record { program = "self_sufficiency", kind = "assessment", subkind = "self_support",
                             record = { domains = { addiction = { note = "음주로 결근 반복" }, physical = { note = "요통" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.recommendation.referrals, { "addiction" })
        r = t.record { program = "self_sufficiency", kind = "assessment", subkind = "self_support",
                       record = { domains = { physical = { note = "요통" } } } }
        t.eq(r.result.recommendation, nil)
      end },
    { name = "an unfit participant is sent back to the dong", run = function(t)
        local r = t.record { program = "self_sufficiency", kind = "closure", record = { reason = "unfit", evaluation = "근로 불가" } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.send_back.to, "emd")
        t.eq(r.result.send_back.program, "integrated")
        r = t.transition { program = "self_sufficiency", case = { stage = "assessment" }, to = "closure", data = { reason = "unfit" } }
        t.ok(r.ok, r.reason)
      end },
    { name = "loops, closure from any step, follow-up and reopen", run = function(t)
        local r = t.transition { program = "self_sufficiency", case = { stage = "monitoring" }, to = "planning" }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "self_sufficiency", case = { stage = "intake" }, to = "planning" }
        t.eq(r.kind, "not_allowed")
        for _, s in ipairs({ "discovery", "initial_counseling", "intake", "assessment", "selection", "planning",
                             "delivery", "monitoring" }) do
          r = t.transition { program = "self_sufficiency", case = { stage = s }, to = "closure", data = { reason = "refused" } }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
        end
        r = t.transition { program = "self_sufficiency", case = { stage = "closure" }, to = "follow_up" }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "self_sufficiency", case = { stage = "follow_up", status = "follow_up" },
                           to = "assessment", reopen = true }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "self_sufficiency", case = { stage = "follow_up", status = "follow_up" },
                           to = "planning", reopen = true }
        t.eq(r.kind, "not_allowed")
      end },
  },
}
