-- 가정위탁보호 (foster care), case management by the 가정위탁지원센터 for a
-- child the 시·군·구 has placed in a foster family.
-- Stage map: seed 003 (희망이음 표준 프로세스 표, row 가정위탁보호): the
-- program's own step "4. 사례관리" spans the standard stages 1–8 and "5. 종결"
-- is stage 9; there is no 사후관리. The numbering says that steps 1–3 of the
-- foster-care process (위탁 신청·조사·결정) come before the case reaches this
-- system: seed 003 "서비스 업무 절차 - 신청·접수" — 지자체에서 기관을 지정하여
-- 보호를 결정한 경우(예: 요보호 아동 보호) 서비스 의뢰를 통해 해당 기관에 전달;
-- 신청 창구 표: 지자체 → 가정위탁 지원센터.
--
-- Not in the seeds (they name the program but give no rule for it), from
-- the brief / 아동복지법: 아동 = 18세 미만; 보호기간 연장 시 만 24세까지.
--
-- person.eligibility keys read here:
--   placement_decided     시·군·구의 가정위탁 보호조치 결정 (true)
--   protection_extended   보호기간 연장 결정 (true): 만 24세까지

local CHILD_UNDER = 18    -- 아동: 18세 미만
local EXTENDED_UNDER = 25 -- 보호기간 연장: 만 24세까지

-- 아동 영역 (seed 001 I.2 드림스타트 영역별 지원 내용: 신체/건강, 인지/언어,
-- 정서/행동, 부모·가족), with the foster family (위탁가정) beside the birth family.
local DOMAINS = { "health", "cognition_language", "emotion_behavior", "birth_family", "foster_family" }

-- 만 나이 (international age): the server's person.age, else from birth_date.
local age_of = sarye.lib.age

---@type sarye.Program
return {
  id = "foster_care",
  kind = "program",
  version = "1.1.0",
  api = 1,
  name = "가정위탁보호",

  stages = {
    { id = "discovery",          label = "사례관리" },
    { id = "initial_counseling", label = "사례관리" },
    { id = "intake",             label = "사례관리" },
    { id = "assessment",         label = "사례관리" },
    { id = "selection",          label = "사례관리" },
    { id = "planning",           label = "사례관리" },
    { id = "delivery",           label = "사례관리" },
    { id = "monitoring",         label = "사례관리" },
    { id = "closure",            label = "종결" },
  },

  -- Inside "사례관리" the standard steps in order; 점검 loops back to 제공,
  -- 계획 or 조사 (재사정); every step may close (the core asks a reason).
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

  -- No 사후관리 (seed 003): an ended case may be reopened into 사례관리
  -- (the core default: any stage before closure).

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
    reunified = "원가정 복귀",
    adopted = "입양",
    placement_changed = "보호조치 변경 (시설 입소 등)",
    protection_ended = "보호종료 (연령 도래)",
  },

  -- The facts eligibility reads (person.eligibility[key]) and what each means:
  -- GET /v1/programs/foster_care lists them, so a client can ask for them.
  facts = {
    placement_decided = "시·군·구의 가정위탁 보호조치 결정 (true/false)",
    protection_extended = "보호기간 연장 (true/false)",
  },

  eligibility = function(person, case, ctx)
    local e = person.eligibility or {}
    if e.placement_decided ~= true then
      return false, "가정위탁보호는 시·군·구의 가정위탁 보호조치 결정 후 의뢰된 아동이 대상입니다 (eligibility.placement_decided)"
    end
    local age = age_of(person, ctx.today)
    if not age then return false, "아동의 생년월일이 필요합니다" end
    if age < CHILD_UNDER then return true end
    if e.protection_extended == true and age < EXTENDED_UNDER then return true end
    return false, string.format("가정위탁보호 대상은 18세 미만 아동입니다 (보호기간 연장 시 만 24세까지; 나이 %d세)", age)
  end,

  records = {
    closure = { required = { "reason", "evaluation" } },
  },

  guards = {
    -- 보호종료 (연령 도래): only once the child is 18.
    ["*->closure"] = function(case, input, ctx)
      if input.data.reason ~= "protection_ended" then return true end
      local age = age_of(ctx.person() or {}, ctx.today)
      if not age or age < CHILD_UNDER then
        return false, string.format("연령 도래에 의한 보호종료는 만 18세부터입니다 (나이 %s세)", tostring(age))
      end
      return true
    end,
  },

  hooks = {
    enter = { closure = function(case, input, ctx) ctx.clear_deadline("protection_end") end },
  },

  on_record = {
    -- The protection ends at 18 (or 25 when extended): the case opens with
    -- that date due, so 자립준비 starts in time.
    open = function(case, rec, ctx)
      local p = ctx.person() or {}
      local b = p.birth_date
      if type(b) ~= "string" or not sarye.date.valid(b) then return end
      local extended = p.eligibility and p.eligibility.protection_extended == true
      local due = sarye.date.add_months(b, 12 * (extended and EXTENDED_UNDER or CHILD_UNDER))
      if due > ctx.today then
        ctx.set_deadline("protection_end", due, extended and "보호기간 종료 예정 (연장, 만 24세까지)"
                                                 or "보호종료 예정 (만 18세)")
      end
    end,
    -- 보호종료 후 지속적 사례관리가 필요하면 의뢰 (seed 001 II.2: 아동 사례관리 제한
    -- 연령 도래로 인한 종결 시 … 대상자 의뢰; seed 003 사례관리 간 연계): 보호아동 자립지원.
    closure = function(case, rec, ctx)
      if rec.reason == "protection_ended" then
        return { recommendation = { referrals = { "youth_independence" },
                                    reasons = { "보호종료: 지속적 사례관리가 필요하면 보호아동 자립지원(보호종료 후 5년 이내)으로 의뢰" } } }
      end
    end,
  },

  tests = {
    { name = "stage map: 사례관리 spans stages 1–8, then 종결", run = function(t)
        local rules = t.rules("foster_care")
        t.eq(rules.first_stage, "discovery")
        t.eq(#rules.stages, 9)
        for i = 1, 8 do t.eq(rules.stages[i].label, "사례관리") end
        t.eq(rules.stages[9].id, "closure")
        t.eq(rules.stages[9].label, "종결")
      end },
    { name = "a placed child under 18 is eligible; 18 is not", run = function(t)
        local r = t.open { program = "foster_care", today = "2026-03-01",
                           person = { birth_date = "2015-07-01", age = 10, eligibility = { placement_decided = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "foster_care", today = "2026-03-01",
                     person = { birth_date = "2008-01-10", age = 18, eligibility = { placement_decided = true } } }
        t.eq(r.kind, "refused")
      end },
    { name = "extended protection runs to 24", run = function(t)
        local r = t.open { program = "foster_care", today = "2026-03-01",
                           person = { birth_date = "2002-01-10", age = 24,
                                      eligibility = { placement_decided = true, protection_extended = true } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "foster_care", today = "2026-03-01",
                     person = { birth_date = "2001-01-10", age = 25,
                                eligibility = { placement_decided = true, protection_extended = true } } }
        t.eq(r.kind, "refused")
      end },
    { name = "no foster-care case without the district's placement decision", run = function(t)
        local r = t.open { program = "foster_care", today = "2026-03-01",
                           person = { birth_date = "2015-07-01", age = 10, eligibility = {} } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "보호조치 결정", 1, true))
      end },
    { name = "the case opens with the end of protection due", run = function(t)
        local r = t.record { program = "foster_care", kind = "open", today = "2026-03-01",
                             person = { birth_date = "2015-07-01", eligibility = { placement_decided = true } },
                             record = { source = "referral" } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.set[1].kind, "protection_end")
        t.eq(r.effects.set[1].due_on, "2033-07-01")
        r = t.record { program = "foster_care", kind = "open", today = "2026-03-01",
                       person = { birth_date = "2007-02-28",
                                  eligibility = { placement_decided = true, protection_extended = true } },
                       record = { source = "referral" } }
        t.eq(r.effects.set[1].due_on, "2032-02-28")
      end },
    { name = "steps follow the standard order inside 사례관리", run = function(t)
        local r = t.transition { program = "foster_care", case = { stage = "discovery" }, to = "planning" }
        t.eq(r.kind, "not_allowed")
        t.eq(r.allowed, { "initial_counseling", "closure" })
        r = t.transition { program = "foster_care", case = { stage = "monitoring" }, to = "assessment" }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "사례관리")
      end },
    { name = "every open step may close; there is no follow-up stage", run = function(t)
        for _, s in ipairs({ "discovery", "initial_counseling", "intake", "assessment", "selection", "planning",
                             "delivery", "monitoring" }) do
          local r = t.transition { program = "foster_care", case = { stage = s }, to = "closure",
                                   data = { reason = "reunified" } }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
          t.eq(r.label, "종결")
          t.eq(r.effects.clear, { "protection_end" })
        end
        local r = t.transition { program = "foster_care", case = { stage = "closure" }, to = "follow_up" }
        t.eq(r.kind, "stage_unused")
      end },
    { name = "보호종료 (연령 도래) only from 18", run = function(t)
        local r = t.transition { program = "foster_care", case = { stage = "monitoring" }, to = "closure",
                                 today = "2026-03-01", data = { reason = "protection_ended" },
                                 person = { birth_date = "2009-01-01", age = 17 } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "foster_care", case = { stage = "monitoring" }, to = "closure",
                           today = "2026-03-01", data = { reason = "protection_ended" },
                           person = { birth_date = "2008-01-01", age = 18 } }
        t.ok(r.ok, r.reason)
      end },
    { name = "closing on 보호종료 suggests 자립지원", run = function(t)
        local r = t.record { program = "foster_care", kind = "closure",
                             record = { reason = "protection_ended", evaluation = "만 18세 보호종료" } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.reason_label, "보호종료 (연령 도래)")
        t.eq(r.result.recommendation.referrals, { "youth_independence" })
        r = t.record { program = "foster_care", kind = "closure", record = { reason = "adopted", evaluation = "입양" } }
        t.eq(r.result.recommendation, nil)
        r = t.record { program = "foster_care", kind = "closure", record = { reason = "bored", evaluation = "x" } }
        t.eq(r.field, "reason")
      end },
    { name = "child needs are recorded by domain", run = function(t)
        local r = t.record { program = "foster_care", kind = "assessment", subkind = "needs",
                             record = { domains = { emotion_behavior = { note = "애착 문제" }, foster_family = { note = "양육 스트레스" } } } }
        t.ok(r.ok, r.reason)
        r = t.record { program = "foster_care", kind = "assessment", subkind = "needs",
                       record = { domains = { employment = { note = "x" } } } }
        t.eq(r.field, "domains.employment")
      end },
  },
}
