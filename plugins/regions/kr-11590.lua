-- 서울특별시 동작구 (region code 11590): the district's own rules for
-- 동 사례관리, from its 2016 training for neighbourhood case workers (seed 004).
-- Each rule below names the passage it encodes (section of seed 004 and its
-- own words). In short:
--   * 사례 구분과 주 사례기관: 일반사례 (동 주민센터), 전문사례 (민간복지기관), 위기사례
--     (희망복지지원단) (I 과정 표); "초기상담을 바탕으로 일반사례, 위기사례로 구분하여
--     해당 기관이 담당 하도록 분배", "기타 모호한 대상은 희망복지지원팀과의 사전 협의를
--     통해 결정" (II.1); "사례유형별 주 사례기관 선정은, 역할구분(안)과 별개로
--     통합사례회의 내부 합의를 존중한다" (I 착안사항)
--   * 위기도 조사: "어떤 욕구영역이든 3점(만점) 해당 있으면 통합사례관리대상자로 선정" (II.2)
--   * 솔루션회의: "동주민센터 사례관리 가구에 대한 솔루션 회의 요청", "사례회의를 2회 이상
--     진행 후에도 개입이 어렵거나 변화가 없어", "참석대상 : 내부사례회의 참석자,
--     민간협력기관, 전문 수퍼바이저" (II.3)
--   * "대상자 접수일로부터 30일내 서비스제공계획 수립" (III.2)
--   * 종결: "가급적 사례회의를 통해 종결여부 및 사후관리 계획 결정", "종결과정은
--     대상자와 함께 준비 (종결 1개월 전 고지)" (II.7)
--   * 사후관리: "종결 후 6개월 단위로 1회씩 2회 실시", 만족도 조사 (II.8, III.1)

local lib = sarye.lib

-- Closures that cannot be announced a month ahead: 사망, 전출, 거부,
-- 연락두절, 이관 (DOMAIN.md, closure reasons).
local NO_NOTICE = { death = true, moved = true, refused = true, lost_contact = true, transferred = true }
-- Households that get no case management (seed 004 II.4 "사례관리, 서비스 연계,
-- 미선정 가구로 구분"): no intervention to prepare the end of with the person,
-- no follow-up of an intervention that did not take place.
local NO_INTERVENTION = { service_linkage = true, not_selected = true }
local FOLLOW_UPS = { "follow_up_1", "follow_up_2" }
local SOLUTION_AFTER = 2 -- "사례회의를 2회 이상 진행 후에도"
-- "전문적 수퍼비전과 지식을 필요로 하는 경우 … 참석대상 : … 전문 수퍼바이저": the
-- roles a participant gives that name one.
local SUPERVISION = { "supervisor", "expert", "수퍼바이저", "슈퍼바이저", "전문가" }

-- The class a conference gave the household (seed 004 II.4), or nil.
-- (the same reading as the integrated program's: the conference's
-- classification, else a selection rule on an assessment, else the
-- assessment's expected intervention by the 1-month rule)
local function household_class(ctx, case)
  local last
  for _, d in ipairs(lib.decisions(ctx, case, "selection")) do last = d.decision.selection end
  if last then return last end
  local rule, months
  for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })) do
    if type(r.result) == "table" and r.result.selection then rule = r.result.selection end
    local m = type(r.data) == "table" and r.data.expected_intervention_months
    if type(m) == "number" then months = m >= 1 and "case_management" or m > 0 and "service_linkage" or "not_selected" end
  end
  return rule or months
end

-- The last change of plan: the newest plan written or approved (the
-- business dates it was recorded and decided on).
local function last_plan_change(ctx, case)
  local last = ""
  for _, p in ipairs(ctx.query("plans_of_case", { case_id = case.id })) do
    for _, on in ipairs({ p.recorded_on or "", p.decided_on or "" }) do
      if on > last then last = on end
    end
  end
  return last
end

-- The case type decided for the case: by the latest consultation with the
-- 희망복지지원팀 that decided one, else by the latest initial counseling.
local function case_type_of(ctx, case)
  local t
  for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "counseling" })) do
    if r.data and r.data.case_type then t = r.data.case_type end
  end
  for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "consultation" })) do
    if r.data and r.data.case_type then t = r.data.case_type end
  end
  return t
end

-- Hands the case to the organisation its type names (seed 004 II.1 "해당
-- 기관이 담당 하도록 분배"): the one the record names, or the one organisation
-- of that type in the district; nothing when the case's own organisation
-- is of that type.
local CASE_TYPES = {
  general = { label = "일반사례", lead = "emd" },
  specialist = { label = "전문사례", lead = "provider" },
  crisis = { label = "위기사례", lead = "district" },
}
local function distribute(case, rec, ctx, why)
  local t = CASE_TYPES[rec.case_type]
  if not t then return end
  if rec.lead_org then
    ctx.set_lead { org = rec.lead_org, type = t.lead, reason = why }
    return
  end
  local own = lib.org(ctx, case.region, case.org)
  if own and own.type == t.lead then
    if (case.lead_org or case.org) ~= case.org then ctx.set_lead { org = case.org, reason = why } end
    return
  end
  ctx.set_lead { type = t.lead, reason = why }
end

---@type sarye.Region
return {
  id = "kr-11590",
  kind = "region",
  version = "1.2.0",
  api = 1,
  name = "서울특별시 동작구",
  regions = { "11590" },

  programs = {
    integrated = {
      -- 사례유형별 수행 기관 (seed 004 I 과정 표; the integrated conference may decide otherwise)
      case_types = {
        general = CASE_TYPES.general,       -- 일반사례: 동 주민센터 등
        specialist = CASE_TYPES.specialist, -- 전문사례: 민간복지기관 등
        crisis = CASE_TYPES.crisis,         -- 위기사례: 희망복지지원단 등
      },

      deadlines = {
        -- "대상자 접수일로부터 30일내 서비스제공계획 수립" (III.2): counted from 접수,
        -- met when the plan is drawn up (on_record.plan below), not when it is
        -- approved or delivered; a case closed first owes none.
        plan_due = {
          start = "intake", offset = { days = 30 }, stop = { "closure" },
          label = "서비스 제공계획 수립 기한 (접수일로부터 30일)",
        },
      },

      records = {
        -- 6개월에 한 번씩 2회, 대상자 만족도 조사 (III.1)
        follow_up = {
          required = { "satisfaction" },
          validate = function(case, rec, ctx)
            if case.status ~= "follow_up" then return false, "동작구: 사후관리는 종결 후 사후관리 단계에서 기록합니다" end
            return true
          end,
        },
        -- "기타 모호한 대상은 희망복지지원팀과의 사전 협의를 통해 결정" (II.1): a
        -- consultation is held with the district's 희망복지지원단.
        consultation = {
          required = { "with_org", "content" },
          validate = function(case, rec, ctx)
            local o = lib.org(ctx, case.region, rec.with_org)
            if not o or o.type ~= "district" then
              return false, string.format("동작구: 모호한 대상은 희망복지지원팀(구청, district)과 사전 협의합니다 ('%s'는 구의 희망복지지원단이 아닙니다; seed 004 II.1)",
                                          tostring(rec.with_org))
            end
            if rec.case_type ~= nil and not CASE_TYPES[rec.case_type] then
              return false, string.format("동작구: '%s'는 사례 유형이 아닙니다 (general, specialist, crisis)", tostring(rec.case_type))
            end
            return true
          end,
        },
        meeting = {
          validate = function(case, m, ctx)
            -- "사례유형별 주 사례기관 선정은, 역할구분(안)과 별개로 통합사례회의 내부 합의를
            -- 존중한다" (I 착안사항): only an integrated conference hands a case over.
            for _, d in ipairs(m.decisions or {}) do
              if type(d) == "table" and d.lead_org ~= nil and (d.case_id == nil or d.case_id == case.id)
                 and m.type ~= "integrated" then
                return false, "동작구: 주 사례기관은 통합사례회의의 합의로 바꿉니다 (seed 004 I 착안사항)"
              end
            end
            -- "어떤 욕구영역이든 3점(만점) 해당 있으면 통합사례관리대상자로 선정" (II.2)
            for _, d in ipairs(m.decisions or {}) do
              if type(d) == "table" and d.selection ~= nil and d.selection ~= "case_management"
                 and (d.case_id == nil or d.case_id == case.id) then
                local crisis -- the latest 위기도 조사
                for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })) do
                  if r.subkind == "crisis" then crisis = r end
                end
                for domain, v in pairs(crisis and crisis.data and crisis.data.domains or {}) do
                  if type(v) == "table" and v.score == 3 then
                    return false, string.format("동작구: 위기도 조사에서 3점(만점) 영역(%s)이 있으면 통합사례관리대상자로 선정합니다 (seed 004 II.2)", domain)
                  end
                end
              end
            end
            if m.type ~= "solution" then return true end
            -- 솔루션회의 (II.3): "동주민센터 사례관리 가구에 대한 솔루션 회의 요청 - 사례회의를
            -- 2회 이상 진행 후에도 개입이 어렵거나 변화가 없어 전문적 수퍼비전과 지식을
            -- 필요로 하는 경우 - 참석대상 : 내부사례회의 참석자, 민간협력기관, 전문 수퍼바이저"
            local own = lib.org(ctx, case.region, case.org)
            if own and own.type ~= "emd" then
              return false, "동작구: 솔루션회의는 동주민센터 사례관리 가구에 대한 회의입니다 (seed 004 II.3)"
            end
            if household_class(ctx, case) ~= "case_management" then
              return false, "동작구: 솔루션회의는 사례관리 가구로 구분된 가구에 대해 요청합니다 (seed 004 II.3)"
            end
            local held = 0
            for _, x in ipairs(ctx.query("meetings_of_case", { case_id = case.id })) do
              if (x.type == "internal" or x.type == "integrated") and x.held_on <= m.held_on then held = held + 1 end
            end
            if held < SOLUTION_AFTER then
              return false, string.format("동작구: 솔루션회의는 사례회의를 2회 이상 진행 후에도 개입이 어렵거나 변화가 없는 경우에 엽니다 (지금까지 %d회; seed 004 II.3)", held)
            end
            local supervisor = false
            for _, p in ipairs(m.participants or {}) do
              for _, word in ipairs(SUPERVISION) do
                if string.find(string.lower(tostring(p.role)), word, 1, true) then supervisor = true end
              end
            end
            if not supervisor then
              return false, "동작구: 솔루션회의에는 전문적 수퍼비전을 줄 전문 수퍼바이저(role supervisor 또는 expert)가 참석합니다 (seed 004 II.3)"
            end
            return true
          end,
        },
      },

      -- 위기사례 우선 (seed 004 I 과정 표, 위기사례: "위기 안정화를 주요 목적으로 하며,
      -- 현재 당사자의 삶을 위협하는 요소를 제거 혹은 보호장치를 마련함으로써 위기를
      -- 안정화하는 것에 초점"): a crisis case goes ahead on a resource's waitlist.
      waitlist = {
        priority = function(case, entry, ctx)
          if case_type_of(ctx, case) == "crisis" then
            return 10, "동작구: 위기사례 우선 (위기 안정화를 주요 목적으로 하는 사례; seed 004 I)"
          end
          return 0
        end,
      },

      on_record = {
        -- "초기상담을 바탕으로 일반사례, 위기사례로 구분하여 해당 기관이 담당 하도록 분배" (II.1)
        counseling = function(case, rec, ctx)
          distribute(case, rec, ctx, "동작구: 초기상담을 바탕으로 해당 기관이 담당하도록 분배 (seed 004 II.1)")
        end,
        -- "기타 모호한 대상은 희망복지지원팀과의 사전 협의를 통해 결정" (II.1)
        consultation = function(case, rec, ctx)
          if rec.case_type then
            distribute(case, rec, ctx, "동작구: 희망복지지원팀과의 사전 협의로 결정 (seed 004 II.1)")
            local t = CASE_TYPES[rec.case_type]
            return { case_type = { id = rec.case_type, label = t.label, lead = t.lead } }
          end
        end,
        assessment = function(case, a, ctx)
          local threes = {}
          for domain, v in pairs(a.domains or {}) do
            if v.score == 3 then threes[#threes + 1] = domain end
          end
          if #threes > 0 then
            -- a selection, not only a recommendation: the household is selected
            -- for 통합사례관리 (a 사례관리 가구) without waiting for a conference
            table.sort(threes)
            return { selection = "case_management", recommendation = { selection = "case_management", reasons = {
              "동작구: 위기도 조사에서 3점(만점) 영역이 있어 통합사례관리 대상자로 선정 (" .. table.concat(threes, ", ") .. ")" } } }
          end
        end,
        -- 서비스제공계획 수립 (III.2): the plan drawn up meets the 30-day deadline.
        plan = function(case, plan, ctx) ctx.clear_deadline("plan_due") end,
        meeting = function(case, m, ctx)
          -- 통합사례회의 합의: the case goes to the organisation it agreed on (I 착안사항)
          for _, d in ipairs(m.decisions or {}) do
            if type(d) == "table" and d.lead_org ~= nil and (d.case_id == nil or d.case_id == case.id) then
              ctx.set_lead { org = d.lead_org, reason = "동작구: 통합사례회의 내부 합의 (사례유형별 주 사례기관 선정은 역할구분(안)과 별개로 통합사례회의 내부 합의를 존중한다; seed 004 I)" }
            end
          end
          -- 사례회의 2회 이상에도 계획에 변화가 없으면 솔루션회의를 검토 (II.3)
          if m.type == "solution" then ctx.clear_deadline("solution_conference") return end
          local since = last_plan_change(ctx, case)
          local held = 0
          for _, x in ipairs(ctx.query("meetings_of_case", { case_id = case.id })) do
            if x.type == "solution" and x.held_on >= since then return end
            if x.type ~= "solution" and x.type ~= "closure" and x.held_on >= since then held = held + 1 end
          end
          if held >= SOLUTION_AFTER then
            ctx.set_deadline("solution_conference", sarye.date.add_days(ctx.today, 14),
                             "솔루션회의 개최 검토 (사례회의 2회 이상에도 변화 없음)")
          end
        end,
        plan_approval = function(case, plan, ctx) ctx.clear_deadline("solution_conference") end,
        -- "가급적 사례회의를 통해 종결여부 및 사후관리 계획 결정" (II.7): the closure
        -- says which conference decided it, or that none did.
        closure = function(case, rec, ctx)
          local decided
          for _, x in ipairs(ctx.query("meetings_of_case", { case_id = case.id })) do
            if x.type == "closure" then decided = x end
            for _, d in ipairs(type(x.decisions) == "table" and x.decisions or {}) do
              if type(d) == "table" and d.closure ~= nil and (d.case_id == nil or d.case_id == case.id) then decided = x end
            end
          end
          if decided then
            return { closure_conference = { meeting_id = decided.id, held_on = decided.held_on, type = decided.type } }
          end
          return { closure_conference = { meeting_id = nil,
                   note = "동작구: 종결여부와 사후관리 계획은 가급적 사례회의를 통해 결정합니다 (seed 004 II.7); 이 종결은 사례회의 결정 없이 기록되었습니다" } }
        end,
        -- Each follow-up done clears the next one due; after the second the case ends.
        follow_up = function(case, rec, ctx)
          local open = {}
          for _, d in ipairs(ctx.query("deadlines_of_case", { case_id = case.id })) do open[d.kind] = true end
          local remaining = 0
          local cleared = false
          for _, kind in ipairs(FOLLOW_UPS) do
            if open[kind] and not cleared then ctx.clear_deadline(kind); cleared = true
            elseif open[kind] then remaining = remaining + 1 end
          end
          if remaining == 0 then ctx.end_case() end
        end,
      },

      guards = {
        -- "종결과정은 대상자와 함께 준비 (종결 1개월 전 고지)" (II.7): the intervention's
        -- end is announced a month ahead; households given no case management
        -- (서비스 연계, 미선정: II.4) have none to announce.
        ["*->closure"] = function(case, input, ctx)
          local reason = input.data.reason
          if NO_NOTICE[reason] or NO_INTERVENTION[reason] then return true end
          if NO_INTERVENTION[household_class(ctx, case)] then return true end
          local notice = input.data.notice_given_on
          if not notice or not sarye.date.valid(notice) then
            return false, "동작구: 종결 1개월 전에 대상자에게 종결을 알려야 합니다 (notice_given_on: 고지일 YYYY-MM-DD)"
          end
          if sarye.date.add_months(notice, 1) > ctx.today then
            return false, string.format("동작구: 종결 고지(%s) 후 1개월이 지나야 종결할 수 있습니다 (%s부터)",
                                        notice, sarye.date.add_months(notice, 1))
          end
          return true
        end,
        -- "기타 모호한 대상은 희망복지지원팀과의 사전 협의를 통해 결정" (II.1): an initial
        -- counseling that left the case type open is decided with the district
        -- team before the case is taken in.
        ["initial_counseling->intake"] = function(case, input, ctx)
          local counseled = #ctx.query("records_of_case", { case_id = case.id, kind = "counseling" }) > 0
          if counseled and not case_type_of(ctx, case) then
            return false, "동작구: 초기상담으로 사례 유형을 정하지 못한 모호한 대상은 희망복지지원팀과의 사전 협의(consultation)로 결정합니다 (seed 004 II.1)"
          end
          return true
        end,
      },

      hooks = {
        enter = {
          -- A planned closure date known at monitoring → the notice is due a month before.
          monitoring = function(case, input, ctx)
            local planned = input.data.planned_closure_on
            if planned and sarye.date.valid(planned) then
              ctx.set_deadline("closure_notice", sarye.date.add_months(planned, -1),
                               "종결 예고 (종결 1개월 전 고지)")
            end
          end,
          -- "종결 후 6개월 단위로 1회씩 2회 실시" (II.8): counted from the closure, for
          -- the households whose intervention ended (not 서비스 연계, 미선정).
          closure = function(case, input, ctx)
            ctx.clear_deadline("closure_notice")
            if NO_INTERVENTION[input.data.reason] or NO_INTERVENTION[household_class(ctx, case)] then return end
            ctx.set_deadline("follow_up_1", sarye.date.add_months(ctx.today, 6), "1차 사후관리 (종결 후 6개월)")
            ctx.set_deadline("follow_up_2", sarye.date.add_months(ctx.today, 12), "2차 사후관리 (종결 후 12개월)")
          end,
          -- a reopened case (재개입, II.8) leaves the follow-up schedule
          intake = function(case, input, ctx)
            if input.reopen then for _, k in ipairs(FOLLOW_UPS) do ctx.clear_deadline(k) end end
          end,
          assessment = function(case, input, ctx)
            if input.reopen then for _, k in ipairs(FOLLOW_UPS) do ctx.clear_deadline(k) end end
          end,
        },
      },
    },
  },

  tests = {
    -- III.2 "대상자 접수일로부터 30일내 서비스제공계획 수립"
    { name = "intake starts the 30-day planning deadline", run = function(t)
        local r = t.transition { program = "integrated", region = "11590", case = { stage = "initial_counseling" },
                                 to = "intake", today = "2026-01-15" }
        t.ok(r.ok)
        t.eq(r.effects.set[1].kind, "plan_due")
        t.eq(r.effects.set[1].due_on, "2026-02-14")
      end },
    { name = "the plan drawn up meets the deadline (수립), not its delivery", run = function(t)
        local r = t.record { program = "integrated", region = "11590", kind = "plan", case = { stage = "planning" },
                             record = { goals = { { term = "short", text = "월세 체납 해소" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.clear, { "plan_due" })
        r = t.transition { program = "integrated", region = "11590", case = { stage = "planning" },
                           to = "delivery", queries = { plans_of_case = { { status = "approved" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.clear, {})
      end },
    -- II.7 "종결과정은 대상자와 함께 준비 (종결 1개월 전 고지)"
    { name = "closure without a month's notice is refused", run = function(t)
        local r = t.transition { program = "integrated", region = "11590", case = { stage = "monitoring" },
                                 to = "closure", today = "2026-03-10",
                                 data = { reason = "goal_achieved", notice_given_on = "2026-02-20" } }
        t.eq(r.kind, "refused")
        t.eq(r.plugin, "kr-11590")
      end },
    { name = "closure a month after notice is allowed", run = function(t)
        local r = t.transition { program = "integrated", region = "11590", case = { stage = "monitoring" },
                                 to = "closure", today = "2026-03-20",
                                 data = { reason = "goal_achieved", notice_given_on = "2026-02-20" } }
        t.ok(r.ok, r.reason)
      end },
    { name = "death needs no notice", run = function(t)
        local r = t.transition { program = "integrated", region = "11590", case = { stage = "delivery" },
                                 to = "closure", data = { reason = "death" } }
        t.ok(r.ok, r.reason)
      end },
    -- II.4 "사례관리, 서비스 연계, 미선정 가구로 구분"; II.7, II.8 for the households
    -- whose intervention ends
    { name = "households given no case management close without notice and without follow-ups", run = function(t)
        local as = function(class)
          return { meetings_of_case = { { type = "internal", held_on = "2026-03-02", decisions = { { selection = class } } } } }
        end
        local r = t.transition { program = "integrated", region = "11590", case = { stage = "selection" }, to = "closure",
                                 data = { reason = "not_selected" }, queries = as("not_selected"), today = "2026-03-05" }
        t.ok(r.ok, r.reason)
        local kinds = {}
        for _, d in ipairs(r.effects.set) do kinds[#kinds + 1] = d.kind end
        t.eq(kinds, {})
        r = t.transition { program = "integrated", region = "11590", case = { stage = "selection" }, to = "closure",
                           data = { reason = "service_linkage" }, queries = as("service_linkage") }
        t.ok(r.ok, r.reason)
        -- a case-management household still owes its notice
        r = t.transition { program = "integrated", region = "11590", case = { stage = "monitoring" }, to = "closure",
                           data = { reason = "goal_achieved" }, queries = as("case_management") }
        t.eq(r.kind, "refused")
      end },
    -- II.8 "종결 후 6개월 단위로 1회씩 2회 실시"
    { name = "follow-up twice, six months apart, counted from the closure", run = function(t)
        local r = t.transition { program = "integrated", region = "11590", case = { stage = "monitoring" },
                                 to = "closure", today = "2026-08-31", data = { reason = "moved" } }
        t.ok(r.ok, r.reason)
        local due = {}
        for _, d in ipairs(r.effects.set) do due[d.kind] = d.due_on end
        t.eq(due.follow_up_1, "2027-02-28")
        t.eq(due.follow_up_2, "2027-08-31")
        -- entering follow-up later does not move them
        r = t.transition { program = "integrated", region = "11590", case = { stage = "closure" },
                           to = "follow_up", today = "2026-10-15" }
        t.ok(r.ok)
        t.eq(#r.effects.set, 0)
      end },
    { name = "a reopened case leaves the follow-up schedule", run = function(t)
        local r = t.transition { program = "integrated", region = "11590", case = { stage = "follow_up", status = "follow_up" },
                                 to = "intake", reopen = true }
        t.ok(r.ok, r.reason)
        local cleared = {}
        for _, kind in ipairs(r.effects.clear) do cleared[kind] = true end
        t.ok(cleared.follow_up_1 and cleared.follow_up_2, "both follow-ups cleared")
      end },
    { name = "outside Dongjak none of this applies", run = function(t)
        local r = t.transition { program = "integrated", region = "11110", case = { stage = "initial_counseling" },
                                 to = "intake" }
        t.ok(r.ok)
        t.eq(#r.effects.set, 0)
      end },
    -- II.2 "어떤 욕구영역이든 3점(만점) 해당 있으면 통합사례관리대상자로 선정"
    { name = "any crisis domain at 3 → selected", run = function(t)
        local r = t.record { program = "integrated", region = "11590", kind = "assessment", subkind = "crisis",
                             record = { domains = { safety = { score = 1 }, economy = { score = 3 } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.recommendation.selection, "case_management")
        t.eq(r.result.selection, "case_management")
        t.ok(string.find(r.result.recommendation.reasons[1], "economy", 1, true))
        -- so selected, the household gets its plan without a conference
        r = t.transition { program = "integrated", region = "11590", case = { stage = "selection" }, to = "planning",
                           queries = { meetings_of_case = {}, records_of_case = {
                             { kind = "assessment", subkind = "crisis", result = { selection = "case_management" } } } } }
        t.ok(r.ok, r.reason)
        r = t.record { program = "integrated", region = "11590", kind = "assessment", subkind = "crisis",
                       record = { domains = { safety = { score = 2 } } } }
        t.eq(r.result.recommendation.selection, "not_selected")
      end },
    { name = "a conference does not leave a crisis-3 household out", run = function(t)
        local q = { records_of_case = { { kind = "assessment", subkind = "crisis", data = { domains = { economy = { score = 3 } } } } } }
        local m = { type = "internal", participants = { { org = "dong", role = "case_worker" } },
                    decisions = { { selection = "service_linkage" } } }
        local r = t.record { program = "integrated", region = "11590", kind = "meeting", subkind = "internal",
                             record = m, queries = q }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "3점(만점)", 1, true))
        m.decisions = { { selection = "case_management" } }
        t.ok(t.record { program = "integrated", region = "11590", kind = "meeting", subkind = "internal",
                        record = m, queries = q }.ok)
      end },
    -- I 과정 표 (수행 기관) and II.1 "초기상담을 바탕으로 … 해당 기관이 담당 하도록 분배"
    { name = "case type names the lead organisation, and the case goes to it", run = function(t)
        local orgs = { orgs = { { id = "dj-sangdo1", type = "emd" }, { id = "dj-hope", type = "district" },
                                { id = "sangdo-welfare", type = "provider" } } }
        local case = { org = "dj-sangdo1", region = "11590" }
        local r = t.record { program = "integrated", region = "11590", kind = "counseling", case = case, queries = orgs,
                             record = { case_type = "crisis", domains = { safety = "위협" }, main_problems = { "safety" }, opinion = "위기" } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.case_type, { id = "crisis", label = "위기사례", lead = "district" })
        t.eq(r.effects.lead.type, "district")
        r = t.record { program = "integrated", region = "11590", kind = "counseling", case = case, queries = orgs,
                       record = { case_type = "specialist", lead_org = "sangdo-welfare", domains = { health = "우울" },
                                  main_problems = { "health" }, opinion = "심층 상담" } }
        t.eq(r.effects.lead, { org = "sangdo-welfare", type = "provider", plugin = "kr-11590",
                               reason = "동작구: 초기상담을 바탕으로 해당 기관이 담당하도록 분배 (seed 004 II.1)" })
        r = t.record { program = "integrated", region = "11590", kind = "counseling", case = case, queries = orgs,
                       record = { case_type = "general", domains = { economy = "체납" }, main_problems = { "economy" }, opinion = "연계" } }
        t.eq(r.effects.lead, nil)
      end },
    -- II.1 "기타 모호한 대상은 희망복지지원팀과의 사전 협의를 통해 결정"
    { name = "an ambiguous case is decided with the district team", run = function(t)
        local counseled = { { kind = "counseling", data = { domains = { economy = "체납" }, opinion = "모호" } } }
        local r = t.transition { program = "integrated", region = "11590", case = { stage = "initial_counseling" },
                                 to = "intake", queries = { records_of_case = counseled } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "희망복지지원팀", 1, true))
        local orgs = { orgs = { { id = "dj-sangdo1", type = "emd" }, { id = "dj-hope", type = "district" } } }
        r = t.record { program = "integrated", region = "11590", kind = "consultation",
                       case = { org = "dj-sangdo1", region = "11590" }, queries = orgs,
                       record = { with_org = "dj-sangdo1", content = "협의" } }
        t.eq(r.kind, "refused")
        r = t.record { program = "integrated", region = "11590", kind = "consultation",
                       case = { org = "dj-sangdo1", region = "11590" }, queries = orgs,
                       record = { with_org = "dj-hope", content = "위기 개입 필요", case_type = "crisis" } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.case_type.lead, "district")
        t.eq(r.effects.lead.type, "district")
        r = t.transition { program = "integrated", region = "11590", case = { stage = "initial_counseling" }, to = "intake",
                           queries = { records_of_case = { counseled[1], { kind = "consultation", data = { case_type = "crisis" } } } } }
        t.ok(r.ok, r.reason)
      end },
    -- I 착안사항 "사례유형별 주 사례기관 선정은, 역할구분(안)과 별개로 통합사례회의 내부 합의를 존중한다"
    { name = "the integrated conference may hand the case to another lead", run = function(t)
        local m = { type = "integrated", participants = { { org = "dj-hope", role = "case_manager" } },
                    decisions = { { lead_org = "sangdo-welfare", text = "복지관이 주 사례관리" } } }
        local r = t.record { program = "integrated", region = "11590", kind = "meeting", subkind = "integrated", record = m }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.lead.org, "sangdo-welfare")
        m.type = "internal"
        r = t.record { program = "integrated", region = "11590", kind = "meeting", subkind = "internal", record = m }
        t.eq(r.kind, "refused")
      end },
    { name = "two conferences without a plan change suggest a solution conference", run = function(t)
        local r = t.record { program = "integrated", region = "11590", kind = "meeting", today = "2026-05-01",
                             record = { type = "integrated" },
                             queries = { plans_of_case = { { recorded_on = "2026-03-01", decided_on = "2026-03-02" } },
                                         meetings_of_case = { { type = "internal", held_on = "2026-04-01" },
                                                              { type = "integrated", held_on = "2026-05-01" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.set[1].kind, "solution_conference")
        t.eq(r.effects.set[1].due_on, "2026-05-15")
        r = t.record { program = "integrated", region = "11590", kind = "meeting", record = { type = "internal" },
                       queries = { plans_of_case = { { recorded_on = "2026-04-15" } },
                                   meetings_of_case = { { type = "internal", held_on = "2026-04-01" },
                                                        { type = "internal", held_on = "2026-05-01" } } } }
        t.eq(#r.effects.set, 0)
      end },
    -- II.3 솔루션회의: "동주민센터 사례관리 가구 … 사례회의를 2회 이상 진행 후에도 …
    -- 참석대상 : 내부사례회의 참석자, 민간협력기관, 전문 수퍼바이저"
    { name = "a solution conference needs two conferences first and an expert supervisor", run = function(t)
        local orgs = { { id = "dj-sangdo1", type = "emd" }, { id = "dj-hope", type = "district" } }
        local classified = { type = "internal", held_on = "2026-03-02", decisions = { { selection = "case_management" } } }
        local function solution(meetings, roles)
          local parts = {}
          for _, role in ipairs(roles) do parts[#parts + 1] = { org = "dj-hope", role = role } end
          local m = { type = "solution", held_on = "2026-06-01", participants = parts }
          local all = {}
          for _, x in ipairs(meetings) do all[#all + 1] = x end
          all[#all + 1] = m
          return t.record { program = "integrated", region = "11590", kind = "meeting", subkind = "solution",
                            case = { org = "dj-sangdo1", region = "11590" }, record = m,
                            queries = { orgs = orgs, meetings_of_case = all } }
        end
        local r = solution({ classified }, { "case_worker", "supervisor" })
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "2회 이상", 1, true))
        local second = { type = "integrated", held_on = "2026-05-01" }
        r = solution({ classified, second }, { "case_worker", "team_lead" })
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "수퍼바이저", 1, true))
        r = solution({ classified, second }, { "case_worker", "supervisor" })
        t.ok(r.ok, r.reason)
        t.ok(solution({ classified, second }, { "case_worker", "expert" }).ok)
        -- not for a household that is not a case-management household
        r = solution({ { type = "internal", held_on = "2026-03-02", decisions = { { selection = "service_linkage" } } }, second },
                     { "supervisor" })
        t.eq(r.kind, "refused")
      end },
    -- II.7 "가급적 사례회의를 통해 종결여부 및 사후관리 계획 결정"
    { name = "a closure says which conference decided it, or that none did", run = function(t)
        local r = t.record { program = "integrated", region = "11590", kind = "closure",
                             record = { reason = "goal_achieved", evaluation = "목표 달성" },
                             queries = { meetings_of_case = { { id = "mtg_1", type = "closure", held_on = "2026-09-01" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.closure_conference.meeting_id, "mtg_1")
        r = t.record { program = "integrated", region = "11590", kind = "closure",
                       record = { reason = "goal_achieved", evaluation = "목표 달성" }, queries = { meetings_of_case = {} } }
        t.ok(string.find(r.result.closure_conference.note, "가급적 사례회의", 1, true))
      end },
    { name = "a crisis case goes ahead on a resource's waitlist", run = function(t)
        local r = t.waitlist { program = "integrated", region = "11590",
                               queries = { records_of_case = { { kind = "counseling", data = { case_type = "crisis" } } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.priority, 10)
        r = t.waitlist { program = "integrated", region = "11590",
                         queries = { records_of_case = { { kind = "counseling", data = { case_type = "general" } } } } }
        t.eq(r.result.priority, 0)
        t.eq(r.result.offer_days, 7)
      end },
    { name = "the second follow-up ends the case", run = function(t)
        local r = t.record { program = "integrated", region = "11590", kind = "follow_up",
                             case = { stage = "follow_up", status = "follow_up" }, record = { satisfaction = 4 },
                             queries = { deadlines_of_case = { { kind = "follow_up_1" }, { kind = "follow_up_2" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.clear, { "follow_up_1" })
        t.eq(r.end_case, false)
        r = t.record { program = "integrated", region = "11590", kind = "follow_up",
                       case = { stage = "follow_up", status = "follow_up" }, record = { satisfaction = 5 },
                       queries = { deadlines_of_case = { { kind = "follow_up_2" } } } }
        t.eq(r.effects.clear, { "follow_up_2" })
        t.eq(r.end_case, true)
      end },
    { name = "follow-ups need a satisfaction score and a closed case", run = function(t)
        local r = t.record { program = "integrated", region = "11590", kind = "follow_up",
                             case = { stage = "follow_up", status = "follow_up" }, record = {} }
        t.eq(r.field, "satisfaction")
        r = t.record { program = "integrated", region = "11590", kind = "follow_up",
                       case = { stage = "monitoring", status = "open" }, record = { satisfaction = 3 } }
        t.eq(r.kind, "refused")
      end },
  },
}
