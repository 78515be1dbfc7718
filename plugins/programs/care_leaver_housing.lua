-- 보호종료아동 주거지원 통합서비스 (housing with case management for care
-- leavers): rented housing for young people who have left care, with a case
-- manager beside it.
-- Stage map: seed 003 (희망이음 표준 프로세스 표, row 보호종료아동 주거지원):
--   1 발굴 | 2–3 접수 | 4–5 사정 | 6 계획수립 | 7 실행 | 8 점검 및 평가 |
--   9 종결 | 10 사후관리.
-- The table's empty cells are read as the step to their left spanning them
-- (as "서비스 제공 및 점검" spans 7–8 in the 통합사례관리 row).
--
-- Not in the seeds (seed 003 names the program, "보호종료아동 주거지원 통합서비스",
-- and its stages only), from the brief / 아동복지법 자립지원: 보호종료 후 5년 이내.
--
-- person.eligibility keys read here:
--   care_ended_on  보호종료일 (YYYY-MM-DD)

local SUPPORT_MONTHS = 60 -- 보호종료 후 5년

-- 사정 영역: 주거를 중심으로 자립에 필요한 영역
local DOMAINS = { "housing", "economy", "employment", "education", "health", "daily_living",
                  "social_relations", "safety" }

-- The day the 5 years after 보호종료 run out, or nil.
local function support_ends(ended_on)
  if type(ended_on) ~= "string" or not sarye.date.valid(ended_on) then return nil end
  return sarye.date.add_months(ended_on, SUPPORT_MONTHS)
end

local function care_ended_on(ctx)
  local p = ctx.person() or {}
  return (p.eligibility or {}).care_ended_on
end

---@type sarye.Program
return {
  id = "care_leaver_housing",
  kind = "program",
  version = "1.1.0",
  api = 1,
  name = "보호종료아동 주거지원",

  stages = {
    { id = "discovery",          label = "발굴" },
    { id = "initial_counseling", label = "접수" },
    { id = "intake",             label = "접수" },
    { id = "assessment",         label = "사정" },
    { id = "selection",          label = "사정" },
    { id = "planning",           label = "계획수립" },
    { id = "delivery",           label = "실행" },
    { id = "monitoring",         label = "점검 및 평가" },
    { id = "closure",            label = "종결" },
    { id = "follow_up",          label = "사후관리" },
  },

  -- 점검 및 평가 may send the case back to 실행, 계획수립 or 사정; every open
  -- step may close (the core asks a reason).
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

  -- 사후관리 중 주거 위기 → 다시 사정 (within the 5 years only: see guards)
  reopen_to = { "assessment" },

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
    support_period_ended = "지원기간 경과 (보호종료 후 5년)",
  },

  -- The facts eligibility reads (person.eligibility[key]) and what each means:
  -- GET /v1/programs/care_leaver_housing lists them, so a client can ask for them.
  facts = {
    care_ended_on = "보호종료일 (YYYY-MM-DD): 보호종료 후 5년 이내의 보호종료아동이 대상",
  },

  eligibility = function(person, case, ctx)
    local ended = (person.eligibility or {}).care_ended_on
    local until_ = support_ends(ended)
    if not until_ then
      return false, "보호종료아동이 대상입니다: 보호종료일을 기록해 주세요 (eligibility.care_ended_on)"
    end
    if ended > ctx.today then return false, "보호종료일이 아직 오지 않았습니다 (" .. ended .. ")" end
    if until_ <= ctx.today then
      return false, string.format("보호종료 후 5년 이내의 보호종료아동이 대상입니다 (보호종료일 %s)", ended)
    end
    return true
  end,

  records = {
    closure = { required = { "reason", "evaluation" } },
  },

  guards = {
    -- 지원기간 경과: only once 5 years have passed since 보호종료.
    ["*->closure"] = function(case, input, ctx)
      if input.data.reason ~= "support_period_ended" then return true end
      local until_ = support_ends(care_ended_on(ctx))
      if not until_ or until_ > ctx.today then
        return false, string.format("지원기간(보호종료 후 5년)이 끝나지 않았습니다 (%s까지)", tostring(until_))
      end
      return true
    end,
    -- A reopened case (재개입) is still within the 5 years.
    ["*->assessment"] = function(case, input, ctx)
      if not input.reopen then return true end
      local until_ = support_ends(care_ended_on(ctx))
      if until_ and until_ <= ctx.today then
        return false, string.format("보호종료 후 5년이 지나 다시 지원할 수 없습니다 (%s에 종료)", until_)
      end
      return true
    end,
  },

  hooks = {
    enter = {
      -- An ended case lost its deadlines: a reopened one gets the support period back.
      assessment = function(case, input, ctx)
        local until_ = support_ends(care_ended_on(ctx))
        if input.reopen and until_ then
          ctx.set_deadline("support_period_end", until_, "지원기간 종료 (보호종료 후 5년)")
        end
      end,
    },
  },

  on_record = {
    -- The support runs until 5 years after 보호종료: due from the opening.
    open = function(case, rec, ctx)
      local until_ = support_ends(care_ended_on(ctx))
      if until_ and until_ > ctx.today then
        ctx.set_deadline("support_period_end", until_, "지원기간 종료 (보호종료 후 5년)")
      end
    end,
  },

  tests = {
    { name = "stage map from seed 003", run = function(t)
        local rules = t.rules("care_leaver_housing")
        t.eq(rules.first_stage, "discovery")
        local labels = {}
        for i, s in ipairs(rules.stages) do labels[i] = s.label end
        t.eq(labels, { "발굴", "접수", "접수", "사정", "사정", "계획수립", "실행", "점검 및 평가", "종결", "사후관리" })
      end },
    { name = "a care leaver within 5 years is eligible", run = function(t)
        local r = t.open { program = "care_leaver_housing", today = "2026-03-01",
                           person = { birth_date = "2005-05-01", age = 20, eligibility = { care_ended_on = "2023-05-01" } } }
        t.ok(r.ok, r.reason)
        t.eq(r.first_stage, "discovery")
      end },
    { name = "5 years after 보호종료, not yet left care, or no date → refused", run = function(t)
        local r = t.open { program = "care_leaver_housing", today = "2026-03-01",
                           person = { birth_date = "2002-05-01", age = 23, eligibility = { care_ended_on = "2021-03-01" } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "5년", 1, true))
        r = t.open { program = "care_leaver_housing", today = "2026-03-01",
                     person = { birth_date = "2008-05-01", age = 17, eligibility = { care_ended_on = "2026-05-01" } } }
        t.eq(r.kind, "refused")
        r = t.open { program = "care_leaver_housing", today = "2026-03-01",
                     person = { birth_date = "2005-05-01", age = 20, eligibility = {} } }
        t.eq(r.kind, "refused")
      end },
    { name = "the case opens with the end of the support period due", run = function(t)
        local r = t.record { program = "care_leaver_housing", kind = "open", today = "2026-03-01",
                             person = { eligibility = { care_ended_on = "2023-05-01" } }, record = { source = "referral" } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.set[1].kind, "support_period_end")
        t.eq(r.effects.set[1].due_on, "2028-05-01")
      end },
    { name = "steps in order, with the 점검 및 평가 loops", run = function(t)
        local r = t.transition { program = "care_leaver_housing", case = { stage = "intake" }, to = "planning" }
        t.eq(r.kind, "not_allowed")
        t.eq(r.allowed, { "assessment", "closure" })
        for _, to in ipairs({ "delivery", "planning", "assessment" }) do
          r = t.transition { program = "care_leaver_housing", case = { stage = "monitoring" }, to = to }
          t.ok(r.ok, to .. ": " .. tostring(r.reason))
        end
      end },
    { name = "every open step may close, then follow-up", run = function(t)
        for _, s in ipairs({ "discovery", "initial_counseling", "intake", "assessment", "selection", "planning",
                             "delivery", "monitoring" }) do
          local r = t.transition { program = "care_leaver_housing", case = { stage = s }, to = "closure",
                                   data = { reason = "goal_achieved" } }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
        end
        local r = t.transition { program = "care_leaver_housing", case = { stage = "closure" }, to = "follow_up" }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "사후관리")
      end },
    { name = "지원기간 경과 only after 5 years", run = function(t)
        local r = t.transition { program = "care_leaver_housing", case = { stage = "delivery" }, to = "closure",
                                 today = "2026-03-01", data = { reason = "support_period_ended" },
                                 person = { eligibility = { care_ended_on = "2021-03-02" } } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "care_leaver_housing", case = { stage = "delivery" }, to = "closure",
                           today = "2026-03-01", data = { reason = "support_period_ended" },
                           person = { eligibility = { care_ended_on = "2021-03-01" } } }
        t.ok(r.ok, r.reason)
      end },
    { name = "reopening only within the 5 years", run = function(t)
        local r = t.transition { program = "care_leaver_housing", case = { stage = "follow_up", status = "follow_up" },
                                 to = "assessment", reopen = true, today = "2026-03-01",
                                 person = { eligibility = { care_ended_on = "2022-03-01" } } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.set[1].kind, "support_period_end")
        t.eq(r.effects.set[1].due_on, "2027-03-01")
        r = t.transition { program = "care_leaver_housing", case = { stage = "follow_up", status = "follow_up" },
                           to = "assessment", reopen = true, today = "2026-03-01",
                           person = { eligibility = { care_ended_on = "2021-02-01" } } }
        t.eq(r.kind, "refused")
        -- the ordinary 점검 → 사정 loop is not a reopen
        r = t.transition { program = "care_leaver_housing", case = { stage = "monitoring" }, to = "assessment",
                           today = "2026-03-01", person = { eligibility = { care_ended_on = "2021-02-01" } } }
        t.ok(r.ok, r.reason)
        t.eq(#r.effects.set, 0)
      end },
    { name = "closure reasons and housing needs", run = function(t)
        local r = t.record { program = "care_leaver_housing", kind = "closure",
                             record = { reason = "support_period_ended", evaluation = "5년 경과" } }
        t.eq(r.result.reason_label, "지원기간 경과 (보호종료 후 5년)")
        r = t.record { program = "care_leaver_housing", kind = "closure", record = { reason = "bored", evaluation = "x" } }
        t.eq(r.field, "reason")
        r = t.record { program = "care_leaver_housing", kind = "assessment", subkind = "needs",
                       record = { domains = { housing = { note = "보증금 부족" } } } }
        t.ok(r.ok, r.reason)
      end },
  },
}
