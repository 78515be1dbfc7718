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
-- program shares with 통합사례관리 — so it extends `integrated` and keeps only
-- what differs; seed 001 II.1 (사례관리 종결 시 의뢰 기관에
-- 종결 통보, 통보 받은 의뢰 기관은 종결의 적절성 확인). Nothing in the seeds
-- limits who a 복지관 may serve, so there is no eligibility rule; the
-- Dongjak-only rules (30일 내 계획, 종결 1개월 전 고지 …) stay in the region.

local REFERRED = { referral = true, gov_referral = true }

---@type sarye.Program
return {
  id = "welfare_center",
  kind = "program",
  version = "1.2.0",
  api = 1,
  name = "3대 복지관 사례관리",
  -- 종합사회복지관, 노인복지관, 장애인복지관: three kinds of centre, one process
  covers = {
    { name = "3대 복지관(종합/노인/장애인) 사례관리", why = "seed 003: 세 복지관이 같은 표준 프로세스 한 줄 (3대 복지관 사례관리)" },
  },
  -- 대상자 발굴 → … → 사후관리, 욕구·위기도 조사, 선정 기준, 계획 수립·승인, 점검,
  -- 종결 사유: the national process of 통합사례관리 (plugins/programs/integrated.lua)
  extends = "integrated",

  records = {
    -- 초기상담지 필수 기록 사항 (seed 004 III.1): 상담내용, 주요문제 2가지,
    -- 서비스 연계 현황 (기존 받고 있는 서비스), 상담자 종합의견. The 사례 구분
    -- (case type) is the dong's decision, not the 복지관's.
    counseling = {
      required = { "domains", "main_problems", "opinion" },
      validate = function(case, rec, ctx)
        if rec.current_services == nil then
          return false, "초기상담지에 서비스 연계 현황(기존 받고 있는 서비스)을 current_services로 기록하세요 (없으면 빈 목록)"
        end
        return true
      end,
    },
  },

  on_record = {
    -- 사례관리 종결 시 의뢰 기관에 종결 통보, 통보 받은 의뢰 기관은 종결의
    -- 적절성 확인 (seed 001 II.1)
    closure = function(case, rec, ctx)
      if REFERRED[case.source] then
        return { referrer_notice = "의뢰 기관에 종결 통보: 의뢰 기관이 종결의 적절성을 확인합니다" }
      end
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
        local function classified(sel)
          return { meetings_of_case = { { type = "internal", held_on = "2026-03-02", decisions = { { selection = sel } } } } }
        end
        r = t.transition { program = "welfare_center", case = { stage = "selection" }, to = "planning",
                           queries = classified("service_linkage") }
        t.eq(r.kind, "refused")
        r = t.transition { program = "welfare_center", case = { stage = "selection" }, to = "planning",
                           queries = classified("case_management") }
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
