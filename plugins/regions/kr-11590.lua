-- 서울특별시 동작구 (region code 11590): the district's own rules for
-- 동 사례관리, from its 2016 training for neighbourhood case workers (seed 004).
--   * 대상자 접수일로부터 30일 내 서비스제공계획 수립 (III.2)
--   * 종결과정은 대상자와 함께 준비 (종결 1개월 전 고지) (II.7)
--   * 사후관리: 종결 후 6개월 단위로 1회씩 2회 실시 (II.8)

-- Closures that cannot be announced a month ahead: 사망, 전출, 거부,
-- 연락두절, 이관 (DOMAIN.md, closure reasons).
local NO_NOTICE = { death = true, moved = true, refused = true, lost_contact = true, transferred = true }

---@type sarye.Region
return {
  id = "kr-11590",
  kind = "region",
  version = "1.0.0",
  api = 1,
  name = "서울특별시 동작구",
  regions = { "11590" },

  programs = {
    integrated = {
      deadlines = {
        plan_due = {
          start = "intake", offset = { days = 30 }, stop = { "delivery", "closure" },
          label = "서비스 제공계획 수립 기한 (접수일로부터 30일)",
        },
        follow_up_1 = { start = "follow_up", offset = { months = 6 }, label = "1차 사후관리 (종결 후 6개월)" },
        follow_up_2 = { start = "follow_up", offset = { months = 12 }, label = "2차 사후관리 (종결 후 12개월)" },
      },

      guards = {
        -- 종결 1개월 전 고지
        ["*->closure"] = function(case, input, ctx)
          local reason = input.data.reason
          if NO_NOTICE[reason] then return true end
          local notice = input.data.notice_given_on
          if not notice or not sarye.date.valid(notice) then
            return false, "동작구: 종결 1개월 전에 대상자에게 종결을 알려야 합니다 (data.notice_given_on: 고지일 YYYY-MM-DD)"
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
                                 to = "delivery" }
        t.ok(r.ok)
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
  },
}
