-- 서울특별시 동작구 (region code 11590): the district's own rules for
-- 동 사례관리, from its 2016 training for neighbourhood case workers (seed 004).
--   * 사례 구분: 일반사례 (동 주민센터), 전문사례 (민간복지기관), 위기사례
--     (희망복지지원단) (I.2)
--   * 위기도 조사: 어떤 욕구영역이든 3점(만점) 해당 있으면 통합사례관리
--     대상자로 선정 (II.2)
--   * 솔루션회의: 사례회의를 2회 이상 진행 후에도 개입이 어렵거나 변화가
--     없는 경우 (II.3)
--   * 대상자 접수일로부터 30일 내 서비스제공계획 수립 (III.2)
--   * 종결과정은 대상자와 함께 준비 (종결 1개월 전 고지) (II.7)
--   * 사후관리: 종결 후 6개월 단위로 1회씩 2회 실시, 만족도 조사 (II.8, III.1)

-- Closures that cannot be announced a month ahead: 사망, 전출, 거부,
-- 연락두절, 이관 (DOMAIN.md, closure reasons).
local NO_NOTICE = { death = true, moved = true, refused = true, lost_contact = true, transferred = true }
local FOLLOW_UPS = { "follow_up_1", "follow_up_2" }
local SOLUTION_AFTER = 2 -- conferences without a change of plan

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

---@type sarye.Region
return {
  id = "kr-11590",
  kind = "region",
  version = "1.1.0",
  api = 1,
  name = "서울특별시 동작구",
  regions = { "11590" },

  programs = {
    integrated = {
      -- 사례유형별 주 사례기관 (the integrated conference may decide otherwise)
      case_types = {
        general = { label = "일반사례", lead = "emd" },
        specialist = { label = "전문사례", lead = "provider" },
        crisis = { label = "위기사례", lead = "district" },
      },

      deadlines = {
        plan_due = {
          start = "intake", offset = { days = 30 }, stop = { "delivery", "closure" },
          label = "서비스 제공계획 수립 기한 (접수일로부터 30일)",
        },
        -- a reopened case (재개입) leaves the follow-up schedule
        follow_up_1 = { start = "follow_up", offset = { months = 6 }, stop = { "intake", "assessment" },
                        label = "1차 사후관리 (종결 후 6개월)" },
        follow_up_2 = { start = "follow_up", offset = { months = 12 }, stop = { "intake", "assessment" },
                        label = "2차 사후관리 (종결 후 12개월)" },
      },

      records = {
        -- 6개월에 한 번씩 2회, 대상자 만족도 조사
        follow_up = {
          required = { "satisfaction" },
          validate = function(case, rec, ctx)
            if case.status ~= "follow_up" then return false, "동작구: 사후관리는 종결 후 사후관리 단계에서 기록합니다" end
            return true
          end,
        },
      },

      on_record = {
        assessment = function(case, a, ctx)
          local threes = {}
          for domain, v in pairs(a.domains or {}) do
            if v.score == 3 then threes[#threes + 1] = domain end
          end
          if #threes > 0 then
            table.sort(threes)
            return { recommendation = { selection = "case_management", reasons = {
              "동작구: 위기도 조사에서 3점(만점) 영역이 있어 통합사례관리 대상자로 선정 (" .. table.concat(threes, ", ") .. ")" } } }
          end
        end,
        -- 사례회의 2회 이상에도 계획에 변화가 없으면 솔루션회의를 검토
        meeting = function(case, m, ctx)
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
        -- 종결 1개월 전 고지
        ["*->closure"] = function(case, input, ctx)
          local reason = input.data.reason
          if NO_NOTICE[reason] then return true end
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
          closure = function(case, input, ctx) ctx.clear_deadline("closure_notice") end,
        },
      },
    },
  },

  tests = {
    { name = "intake starts the 30-day planning deadline", run = function(t)
        local r = t.transition { program = "integrated", region = "11590", case = { stage = "initial_counseling" },
                                 to = "intake", today = "2026-01-15" }
        t.ok(r.ok)
        t.eq(r.effects.set[1].kind, "plan_due")
        t.eq(r.effects.set[1].due_on, "2026-02-14")
      end },
    { name = "the plan being delivered stops the deadline", run = function(t)
        local r = t.transition { program = "integrated", region = "11590", case = { stage = "planning" },
                                 to = "delivery", queries = { plans_of_case = { { status = "approved" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.clear, { "plan_due" })
      end },
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
    { name = "follow-up twice, six months apart", run = function(t)
        local r = t.transition { program = "integrated", region = "11590", case = { stage = "closure" },
                                 to = "follow_up", today = "2026-08-31" }
        t.ok(r.ok)
        local due = {}
        for _, d in ipairs(r.effects.set) do due[d.kind] = d.due_on end
        t.eq(due.follow_up_1, "2027-02-28")
        t.eq(due.follow_up_2, "2027-08-31")
      end },
    { name = "outside Dongjak none of this applies", run = function(t)
        local r = t.transition { program = "integrated", region = "11110", case = { stage = "initial_counseling" },
                                 to = "intake" }
        t.ok(r.ok)
        t.eq(#r.effects.set, 0)
      end },
    { name = "any crisis domain at 3 → selected", run = function(t)
        local r = t.record { program = "integrated", region = "11590", kind = "assessment", subkind = "crisis",
                             record = { domains = { safety = { score = 1 }, economy = { score = 3 } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.recommendation.selection, "case_management")
        t.ok(string.find(r.result.recommendation.reasons[1], "economy", 1, true))
        r = t.record { program = "integrated", region = "11590", kind = "assessment", subkind = "crisis",
                       record = { domains = { safety = { score = 2 } } } }
        t.eq(r.result.recommendation.selection, "not_selected")
      end },
    { name = "case type names the lead organisation", run = function(t)
        local r = t.record { program = "integrated", region = "11590", kind = "counseling",
                             record = { case_type = "crisis", domains = { safety = "위협" }, main_problems = { "safety" }, opinion = "위기" } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.case_type, { id = "crisis", label = "위기사례", lead = "district" })
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
