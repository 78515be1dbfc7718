-- 중독·정신건강 사례관리: 정신건강복지센터 (중증정신질환관리, 자살예방,
-- 아동청소년 정신건강, 중독관리) and 중독관리통합지원센터 case management
-- (정신건강복지법 제15조, 제15조의3). 법과 정신건강사업안내에서 정하지 않은
-- 사항은 지방자치단체의 자체 조례 및 지침을 따를 수 있다: region overlays.
-- Stage map: seed 003 (희망이음 표준 프로세스 표, 사회서비스 공통업무 지침)
-- "중독·정신건강 사례관리프로세스": 대상자 발굴 (표준 1) → 초기상담 (2–3) →
-- 사정 (4) → 개별서비스 계획수립 (5–6) → 개입 (7) → 점검/평가 (8) → 종결 (9) →
-- 사후관리 (10); 공통업무 사례회의. (The spans follow the cell positions of
-- that table; the earlier overview table in the same seed is ambiguous.)
-- Rules: seed 001 (2020 공공부문 사례관리 연계·협력 업무안내)
--   I.6 중독사례관리: 의뢰기준 및 절차 (응급사례, 의뢰사례: AUDIT-K 등 표준화된
--       평가도구 사전 스크리닝, 정신건강서비스 이용 동의(필수))
--   I.7 정신건강사례관리: 사업대상 (전체 국민), 응급·위기·집중사례별 절차
--   부록1 3. 나. 연계대상: 알코올(F10~F109) 중 연계 제외 F103, F104, F107
--   부록1 4. 다) 개별적 서비스 계획의 수립과 제공: 사회보장 욕구 → 공공부문
--       사례관리 기관 의뢰; 의뢰된 대상자 중 6개월 이상 접촉이 불가능하거나
--       대상자 미동의로 서비스 제공이 불가능한 경우 의뢰 기관에 알림
--
-- person.eligibility facts read here:
--   addiction = true | "alcohol" | "gambling" | …   중독 문제가 있는 사례 (AUDIT-K 등 필요)
--   icd = "F10.3" | {"F10.2", …}                    진단 코드 (연계 제외대상 확인)
-- Transition data read here:
--   addiction = true      this move concerns an addiction case (when not recorded on the person)
--   service_consent = true  정신건강서비스 이용 동의
--   emergency_action = "…"  응급사례 조치 (경찰·119 호출, 응급입원 …)

local REFERRED = { referral = true, gov_referral = true }
local NOTICE_MONTHS = 6

-- 응급·위기·집중사례 (seed 001 I.7 의뢰절차 표; 응급사례 of I.6 for intoxication)
local TIERS = {
  emergency = { label = "응급사례", handling = "경찰 및 119 구급대 호출 후 필요 시 응급입원 조치" },
  crisis = { label = "위기사례", handling = "자·타해 위험에 대한 정보제공, 필요 시 방문 동행(의뢰기관 사례관리자와 동행)" },
  intensive = { label = "집중사례", handling = "자살 위험성에 대한 정보제공, 정신건강서비스 이용 동의, 필요 시 방문 동행(의뢰기관 사례관리자와 동행)" },
  none = { label = "해당 없음", handling = "일반 사례관리" },
}
local RISK_DOMAINS = { "attempt_now", "harm_intoxicated", "attempt_history", "suicide_plan", "repeated_ideation" }

-- 사회보장 욕구 → 공공부문 사례관리 기관 (seed 001 부록1 4. 다))
local SOCIAL_NEEDS = {
  { domain = "income", program = "integrated", label = "소득: 희망복지지원단·읍·면·동 찾아가는 보건복지상담팀" },
  { domain = "medical_cost", program = "medical_aid", label = "의료비: 의료급여사례관리" },
  { domain = "housing", program = "integrated", label = "주거: 희망복지지원단·읍·면·동 찾아가는 보건복지상담팀" },
  { domain = "self_support", program = "self_sufficiency", label = "자활: 자활센터" },
  { domain = "health", program = "visiting_health", label = "건강관리: 방문건강관리" },
  { domain = "care", program = "elderly_care", label = "돌봄: 노인맞춤돌봄서비스" },
  { domain = "child", program = "dream_start", label = "아동: 드림스타트" },
}
local SOCIAL_DOMAINS = {}
for i, n in ipairs(SOCIAL_NEEDS) do SOCIAL_DOMAINS[i] = n.domain end

-- 연계 제외대상: 알코올의 금단상태(F103, F104), 알코올 잔류 및 만기발병
-- 정신병적 장애(F107) (seed 001 부록1 3. 나.)
local EXCLUDED_ICD = { F103 = "알코올의 금단상태", F104 = "알코올의 금단상태 (섬망 동반)",
                       F107 = "알코올 잔류 및 만기발병 정신병적 장애" }

local fact = sarye.lib.fact -- a recorded fact says yes ("없음", "no", 0 ... say no)

-- Which instrument a stored or posted assessment is: its subkind (kind in a
-- posted body), else by its domains.
local function instrument_of(kind, domains)
  if type(kind) == "string" then return kind end
  local d = type(domains) == "table" and domains or {}
  if d.total then return "audit_k" end
  for _, k in ipairs(RISK_DOMAINS) do if d[k] then return "risk_tier" end end
  for _, k in ipairs(SOCIAL_DOMAINS) do if d[k] then return "social_needs" end end
  return nil
end

local function tier_of(d)
  local function yes(k) return type(d[k]) == "table" and type(d[k].score) == "number" and d[k].score >= 1 end
  if yes("attempt_now") or yes("harm_intoxicated") then return "emergency" end
  if yes("attempt_history") or yes("suicide_plan") then return "crisis" end
  if yes("repeated_ideation") then return "intensive" end
  return "none"
end

local function assessments(ctx, case, which)
  local out = {}
  for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })) do
    if (r.kind == nil or r.kind == "assessment") and instrument_of(r.subkind, r.data and r.data.domains) == which then
      out[#out + 1] = r
    end
  end
  return out
end

-- AUDIT-K 총점 0–40. Risk zones of the WHO AUDIT manual (0–7, 8–15, 16–19,
-- 20–40): the seeds give no cut-off; a region may replace them.
local function audit_zone(score)
  if score >= 20 then return "dependence", "알코올 사용장애 의심 (20점 이상): 심층 사정평가 및 치료기관 의뢰 검토" end
  if score >= 16 then return "harmful", "유해음주 (16–19점): 단기개입 및 지속 관찰" end
  if score >= 8 then return "hazardous", "위험음주 (8–15점): 단기개입" end
  return "low", "저위험 음주 (0–7점): 교육"
end

local function icd_excluded(e)
  local v = e and e.icd
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" then return nil end
  for _, code in ipairs(v) do
    local c = string.upper(string.gsub(tostring(code), "[%s%.]", ""))
    if EXCLUDED_ICD[c] then return c, EXCLUDED_ICD[c] end
  end
  return nil
end

local function is_addiction(ctx, input)
  if input and input.data and input.data.addiction == true then return true end
  local p = ctx.person() or {}
  return fact(p.eligibility, "addiction")
end

---@type sarye.Program
return {
  id = "mental_health",
  kind = "program",
  version = "1.1.0",
  api = 1,
  name = "중독·정신건강 사례관리",
  -- Seed 003's overview names them apart (정신건강사례관리, 중독관리통합지원; "정신건강,
  -- 중독" of the 8대 공공 사례관리) but runs them as one process, 중독·정신건강
  -- 사례관리프로세스: one program, addiction cases told apart by their facts.
  covers = {
    { name = "정신건강사례관리", why = "seed 003: 중독·정신건강 사례관리프로세스 하나로 운영 (정신건강정보시스템)" },
    { name = "중독관리통합지원 (중독사례관리)", why = "seed 003: 중독·정신건강 사례관리프로세스 하나로 운영; 중독 사례는 eligibility.addiction으로 구분" },
  },

  stages = {
    { id = "discovery",          label = "대상자 발굴" },
    { id = "initial_counseling", label = "초기상담" },
    { id = "intake",             label = "초기상담" },
    { id = "assessment",         label = "사정" },
    { id = "selection",          label = "개별서비스 계획수립" },
    { id = "planning",           label = "개별서비스 계획수립" },
    { id = "delivery",           label = "개입" },
    { id = "monitoring",         label = "점검/평가" },
    { id = "closure",            label = "종결" },
    { id = "follow_up",          label = "사후관리" },
  },

  -- 점검/평가 → 개입 계속, 개별서비스 계획 수정, 재사정; closure from every step.
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

  -- 사후관리 중 재발·위기 → 재등록(초기상담) 또는 재사정
  reopen_to = { "intake", "assessment" },

  -- Who refers people here (seed 001 II.3 보건복지 연계 모델 — 의료급여,
  -- 방문건강, 정신건강, 복지; II.5 자활–정신건강 연계 모델; the dong gateway).
  referral = { accepts_from = { "integrated", "medical_aid", "visiting_health", "self_sufficiency",
                                "welfare_center", "suicide_crisis", "community_care", "elderly_care" } },

  closure_reasons = {
    goal_achieved = "목표달성",
    death = "사망",
    moved = "전출",
    refused = "거부 (서비스 미동의)",
    lost_contact = "연락두절 (접촉 불가)",
    transferred = "이관",
    -- 응급입원 조치, 치료기관 의뢰 (seed 001 I.6, I.7)
    admitted = "입원 (응급입원·치료기관 의뢰)",
    other = "기타",
  },

  -- 사업대상: 정신건강복지법을 근거로 전체 국민 (seed 001 I.7); 중독: 알코올
  -- 및 기타중독에 문제가 있는 자와 그 가족 등 지역주민 (I.6). The only
  -- refusal: a referral whose diagnosis is a 연계 제외대상 (부록1 3. 나.).
  -- The facts eligibility reads (person.eligibility[key]) and what each means:
  -- GET /v1/programs/mental_health lists them, so a client can ask for them.
  facts = {
    addiction = "중독 문제가 있는 사례: true 또는 \"alcohol\", \"gambling\" …",
    icd = "진단 코드: \"F10.3\" 또는 목록 (중독관리사업 연계 제외대상 확인)",
  },

  eligibility = function(person, case, ctx)
    if REFERRED[case.source] then
      local code, name = icd_excluded(person.eligibility)
      if code then
        return false, string.format("중독관리사업 연계 제외대상입니다 (%s, %s): 의료기관 치료가 우선합니다", name, code)
      end
    end
    return true
  end,

  instruments = {
    -- 표준화된 평가도구(AUDIT-K 등)를 이용한 사전 스크리닝 (seed 001 I.6): 총점 0–40
    audit_k = { domains = { "total" }, scale = { min = 0, max = 40 }, all_domains = true },
    -- 응급·위기·집중사례 구분 (seed 001 I.6, I.7): 0 = 해당 없음, 1 = 해당
    --   attempt_now 자살을 시도하는 상황 · harm_intoxicated 알코올 섭취 상태의
    --   자·타해 또는 신체적 응급상태 → 응급; attempt_history 자살시도 경험 ·
    --   suicide_plan 구체적인 자살 계획 → 위기; repeated_ideation 반복적인
    --   자살사고 → 집중
    risk_tier = { domains = RISK_DOMAINS, scale = { min = 0, max = 1 } },
    -- 개별서비스 계획 수립 시 사회보장 욕구 (부록1 4. 다))
    social_needs = { domains = SOCIAL_DOMAINS },
  },

  records = {
    closure = { required = { "reason", "evaluation" } },
  },

  on_record = {
    -- 의뢰된 대상자 (의뢰, 범정부 서비스 의뢰): 6개월 안에 접촉하지 못하면
    -- 의뢰 기관에 알린다 (부록1 4. 다)).
    open = function(case, rec, ctx)
      if REFERRED[case.source] then
        ctx.set_deadline("referrer_notice", sarye.date.add_months(ctx.today, NOTICE_MONTHS),
                         "의뢰 기관 알림: 의뢰 후 6개월 이상 접촉 불가 또는 미동의 시 의뢰 기관에 알림")
      end
    end,
    assessment = function(case, a, ctx)
      local which = instrument_of(a.kind, a.domains)
      local d = a.domains or {}
      if which == "audit_k" then
        local score = d.total.score
        local zone, label = audit_zone(score)
        return { audit_k = { score = score, zone = zone, label = label } }
      elseif which == "risk_tier" then
        local id = tier_of(d)
        local tier = TIERS[id]
        if id == "emergency" then
          ctx.set_deadline("emergency_response", ctx.today, "응급사례: " .. tier.handling .. " (즉시)")
        else
          ctx.clear_deadline("emergency_response")
        end
        return { tier = { id = id, label = tier.label, handling = tier.handling } }
      elseif which == "social_needs" then
        local referrals, reasons = {}, {}
        for _, n in ipairs(SOCIAL_NEEDS) do
          local v = d[n.domain]
          if type(v) == "table" and type(v.note) == "string" and v.note ~= "" then
            referrals[#referrals + 1] = n.program
            reasons[#reasons + 1] = n.label
          end
        end
        if #referrals > 0 then
          return { recommendation = { referrals = referrals,
                                      reasons = { "사회보장 욕구: 공공부문 사례관리 기관에 의뢰하여 지역사회 서비스 연계 (" ..
                                                  table.concat(reasons, "; ") .. ")" } } }
        end
      end
    end,
    -- 6개월 이상 접촉 불가·미동의로 종결하는 의뢰 사례는 의뢰 기관에 알림
    closure = function(case, rec, ctx)
      if REFERRED[case.source] and (rec.reason == "refused" or rec.reason == "lost_contact") then
        return { referrer_notice = "의뢰 기관에 알림: 접촉 불가 또는 대상자 미동의로 서비스 제공이 현실적으로 불가능" }
      end
    end,
  },

  hooks = {
    enter = {
      -- the person is reached: 초기상담 begins
      initial_counseling = function(case, input, ctx)
        if REFERRED[case.source] then ctx.clear_deadline("referrer_notice") end
      end,
      -- 응급 조치가 기록되어야 여기에 온다 (guard below)
      selection = function(case, input, ctx) ctx.clear_deadline("emergency_response") end,
      closure = function(case, input, ctx)
        if REFERRED[case.source] then ctx.clear_deadline("referrer_notice") end
        ctx.clear_deadline("emergency_response")
      end,
    },
  },

  guards = {
    -- 중독 의뢰사례: AUDIT-K 등 사전 스크리닝, 정신건강서비스 이용 동의(필수)
    -- (seed 001 I.6). No 사정 for an addiction case without them.
    ["intake->assessment"] = function(case, input, ctx)
      if not is_addiction(ctx, input) then return true end
      if #assessments(ctx, case, "audit_k") == 0 then
        return false, "중독 사례는 표준화된 평가도구(AUDIT-K 등)로 사전 스크리닝한 뒤에 사정합니다 (audit_k 기록 필요)"
      end
      if REFERRED[case.source] and input.data.service_consent ~= true then
        return false, "중독 의뢰사례는 정신건강서비스 이용 동의가 필수입니다 (data.service_consent)"
      end
      return true
    end,
    -- 응급·위기·집중사례별 절차 (seed 001 I.7): the latest risk screening
    -- decides what must have happened before the individual service plan.
    ["assessment->selection"] = function(case, input, ctx)
      local recs = assessments(ctx, case, "risk_tier")
      if #recs == 0 then
        return false, "자·타해 위험 구분(응급·위기·집중사례) 사정을 기록한 뒤에 개별서비스 계획을 수립합니다 (risk_tier)"
      end
      local id = tier_of(recs[#recs].data and recs[#recs].data.domains or {})
      if id == "emergency" then
        local act = input.data.emergency_action
        if type(act) ~= "string" or act == "" then
          return false, "응급사례: 경찰 및 119 구급대 호출 후 필요 시 응급입원 조치를 먼저 하고 기록하세요 (data.emergency_action)"
        end
      elseif id == "intensive" and input.data.service_consent ~= true then
        return false, "집중사례: 정신건강서비스 이용 동의를 받은 뒤에 개별서비스 계획을 수립합니다 (data.service_consent)"
      end
      return true
    end,
  },

  tests = {
    { name = "first stage is 대상자 발굴; 초기상담 and 개별서비스 계획수립 span two stages", run = function(t)
        local rules = t.rules("mental_health")
        t.eq(rules.first_stage, "discovery")
        t.eq(rules.stages[1].label, "대상자 발굴")
        t.eq(rules.stages[2].label, "초기상담")
        t.eq(rules.stages[3].label, "초기상담")
        t.eq(rules.stages[4].label, "사정")
        t.eq(rules.stages[5].label, "개별서비스 계획수립")
        t.eq(rules.stages[6].label, "개별서비스 계획수립")
        t.eq(rules.stages[7].label, "개입")
        t.eq(rules.stages[8].label, "점검/평가")
        t.eq(rules.stages[10].label, "사후관리")
      end },
    { name = "everyone is eligible; a referral with an excluded diagnosis is not", run = function(t)
        local r = t.open { program = "mental_health", person = { birth_date = "1990-01-01", age = 36, eligibility = {} } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "mental_health", source = "referral",
                     person = { birth_date = "1970-01-01", age = 56, eligibility = { addiction = "alcohol", icd = "F10.2" } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "mental_health", source = "referral",
                     person = { birth_date = "1970-01-01", age = 56, eligibility = { addiction = "alcohol", icd = { "F10.3" } } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "금단상태", 1, true))
        r = t.open { program = "mental_health", source = "walk_in",
                     person = { birth_date = "1970-01-01", age = 56, eligibility = { icd = "F107" } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "a referred case gets the 6-month referrer notice when it opens", run = function(t)
        local r = t.record { program = "mental_health", kind = "open", case = { source = "referral" },
                             record = { source = "referral" }, today = "2026-01-01" }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.set[1].kind, "referrer_notice")
        t.eq(r.effects.set[1].due_on, "2026-07-01")
        r = t.record { program = "mental_health", kind = "open", case = { source = "gov_referral" },
                       record = { source = "gov_referral" }, today = "2026-08-31" }
        t.eq(r.effects.set[1].due_on, "2027-02-28")
        r = t.record { program = "mental_health", kind = "open", case = { source = "walk_in" },
                       record = { source = "walk_in" }, today = "2026-01-01" }
        t.eq(#r.effects.set, 0)
      end },
    { name = "reaching the person clears the referrer notice", run = function(t)
        local r = t.transition { program = "mental_health", case = { stage = "discovery", source = "referral" },
                                 to = "initial_counseling" }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.clear, { "referrer_notice" })
        r = t.transition { program = "mental_health", case = { stage = "discovery", source = "walk_in" },
                           to = "initial_counseling" }
        t.eq(#r.effects.clear, 0)
      end },
    { name = "an unreachable referred person closes with a notice to the referrer", run = function(t)
        local r = t.record { program = "mental_health", kind = "closure", case = { source = "referral" },
                             record = { reason = "lost_contact", evaluation = "6개월 접촉 불가" } }
        t.ok(r.ok, r.reason)
        t.ok(string.find(r.result.referrer_notice, "의뢰 기관", 1, true))
        r = t.record { program = "mental_health", kind = "closure", case = { source = "walk_in" },
                       record = { reason = "lost_contact", evaluation = "x" } }
        t.eq(r.result.referrer_notice, nil)
      end },
    { name = "an addiction case needs AUDIT-K before 사정", run = function(t)
        local r = t.transition { program = "mental_health", case = { stage = "intake" }, to = "assessment",
                                 person = { eligibility = { addiction = "alcohol" } },
                                 queries = { records_of_case = { { kind = "assessment", subkind = "risk_tier",
                                                                    data = { domains = { attempt_now = { score = 0 } } } } } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "AUDIT-K", 1, true))
        r = t.transition { program = "mental_health", case = { stage = "intake" }, to = "assessment",
                           person = { eligibility = { addiction = "alcohol" } },
                           queries = { records_of_case = { { kind = "assessment", subkind = "audit_k",
                                                              data = { domains = { total = { score = 22 } } } } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "사정")
      end },
    { name = "AUDIT-K is asked also when the move says addiction; not for other cases", run = function(t)
        local r = t.transition { program = "mental_health", case = { stage = "intake" }, to = "assessment",
                                 data = { addiction = true }, queries = { records_of_case = {} } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "mental_health", case = { stage = "intake" }, to = "assessment",
                           person = { eligibility = {} }, queries = { records_of_case = {} } }
        t.ok(r.ok, r.reason)
      end },
    { name = "a referred addiction case needs consent", run = function(t)
        local q = { records_of_case = { { kind = "assessment", subkind = "audit_k", data = { domains = { total = { score = 12 } } } } } }
        local r = t.transition { program = "mental_health", case = { stage = "intake", source = "referral" }, to = "assessment",
                                 person = { eligibility = { addiction = true } }, queries = q }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "이용 동의", 1, true))
        r = t.transition { program = "mental_health", case = { stage = "intake", source = "referral" }, to = "assessment",
                           person = { eligibility = { addiction = true } }, data = { service_consent = true }, queries = q }
        t.ok(r.ok, r.reason)
      end },
    { name = "AUDIT-K scores 0 to 40 with a risk zone", run = function(t)
        local r = t.record { program = "mental_health", kind = "assessment", subkind = "audit_k",
                             record = { domains = { total = { score = 41 } } } }
        t.eq(r.kind, "invalid")
        t.eq(r.field, "domains.total.score")
        r = t.record { program = "mental_health", kind = "assessment", subkind = "audit_k", record = { domains = {} } }
        t.eq(r.field, "domains.total")
        r = t.record { program = "mental_health", kind = "assessment", subkind = "audit_k",
                       record = { domains = { total = { score = 23 } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.audit_k.score, 23)
        t.eq(r.result.audit_k.zone, "dependence")
        r = t.record { program = "mental_health", kind = "assessment", subkind = "audit_k",
                       record = { domains = { total = { score = 5 } } } }
        t.eq(r.result.audit_k.zone, "low")
      end },
    { name = "the risk screening sorts emergency, crisis and intensive cases", run = function(t)
        local r = t.record { program = "mental_health", kind = "assessment", subkind = "risk_tier", today = "2026-02-03",
                             record = { domains = { harm_intoxicated = { score = 1 } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.tier.id, "emergency")
        t.ok(string.find(r.result.tier.handling, "119", 1, true))
        t.eq(r.effects.set[1].kind, "emergency_response")
        t.eq(r.effects.set[1].due_on, "2026-02-03")
        r = t.record { program = "mental_health", kind = "assessment", subkind = "risk_tier",
                       record = { domains = { suicide_plan = { score = 1 }, repeated_ideation = { score = 1 } } } }
        t.eq(r.result.tier.id, "crisis")
        t.eq(#r.effects.set, 0)
        t.eq(r.effects.clear, { "emergency_response" })
        r = t.record { program = "mental_health", kind = "assessment", subkind = "risk_tier",
                       record = { domains = { repeated_ideation = { score = 1 }, attempt_now = { score = 0 } } } }
        t.eq(r.result.tier.id, "intensive")
        r = t.record { program = "mental_health", kind = "assessment", subkind = "risk_tier",
                       record = { domains = { repeated_ideation = { score = 2 } } } }
        t.eq(r.kind, "invalid")
      end },
    { name = "each tier is handled before the individual plan", run = function(t)
        local function q(domains) return { records_of_case = { { kind = "assessment", subkind = "risk_tier", data = { domains = domains } } } } end
        local r = t.transition { program = "mental_health", case = { stage = "assessment" }, to = "selection",
                                 queries = { records_of_case = {} } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "mental_health", case = { stage = "assessment" }, to = "selection",
                           queries = q({ attempt_now = { score = 1 } }) }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "응급사례", 1, true))
        r = t.transition { program = "mental_health", case = { stage = "assessment" }, to = "selection",
                           data = { emergency_action = "119 호출, 응급입원" }, queries = q({ attempt_now = { score = 1 } }) }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.clear, { "emergency_response" })
        r = t.transition { program = "mental_health", case = { stage = "assessment" }, to = "selection",
                           queries = q({ repeated_ideation = { score = 1 } }) }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "집중사례", 1, true))
        r = t.transition { program = "mental_health", case = { stage = "assessment" }, to = "selection",
                           data = { service_consent = true }, queries = q({ repeated_ideation = { score = 1 } }) }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "mental_health", case = { stage = "assessment" }, to = "selection",
                           queries = q({ attempt_history = { score = 1 } }) }
        t.ok(r.ok, r.reason) -- 위기사례: crisis intervention goes ahead
        t.eq(r.label, "개별서비스 계획수립")
      end },
    { name = "social-security needs point to the public programs", run = function(t)
        local r = t.record { program = "mental_health", kind = "assessment", subkind = "social_needs",
                             record = { domains = { medical_cost = { note = "약제비 부담" }, care = { note = "독거" }, income = {} } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.recommendation.referrals, { "medical_aid", "elderly_care" })
      end },
    { name = "walk in order; loops; closure from any step; follow-up and reopen", run = function(t)
        local r = t.transition { program = "mental_health", case = { stage = "discovery" }, to = "intake" }
        t.eq(r.kind, "not_allowed")
        r = t.transition { program = "mental_health", case = { stage = "monitoring" }, to = "planning" }
        t.ok(r.ok, r.reason)
        for _, s in ipairs({ "discovery", "initial_counseling", "intake", "assessment", "selection", "planning",
                             "delivery", "monitoring" }) do
          r = t.transition { program = "mental_health", case = { stage = s, source = "referral" }, to = "closure",
                             data = { reason = "refused" } }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
        end
        r = t.transition { program = "mental_health", case = { stage = "closure" }, to = "follow_up" }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "mental_health", case = { stage = "follow_up", status = "follow_up" },
                           to = "intake", reopen = true }
        t.ok(r.ok, r.reason)
      end },
  },
}
