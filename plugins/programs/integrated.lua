-- 통합사례관리 (integrated case management), run by 읍·면·동 and the
-- 시·군·구 희망복지지원단.
-- Stage map: seed 003 (희망이음 표준 프로세스 표), where one program step,
-- "서비스 제공 및 점검", spans the standard stages 7 (제공) and 8 (점검).
-- Selection rule: seed 004 II.4 / seed 002 — 개입 기간 1개월 이상 예상 시
-- 사례관리 가구, 1개월 미만 서비스 연계 가구, 그 밖에는 미선정.

---@type sarye.Program
return {
  id = "integrated",
  kind = "program",
  version = "1.0.0",
  api = 1,
  name = "통합사례관리",

  stages = {
    { id = "discovery",          label = "대상자 발굴" },
    { id = "initial_counseling", label = "초기상담" },
    { id = "intake",             label = "대상자 접수" },
    { id = "assessment",         label = "욕구 및 위기도 조사" },
    { id = "selection",          label = "대상자 구분 및 선정" },
    { id = "planning",           label = "서비스 제공계획 수립" },
    { id = "delivery",           label = "서비스 제공 및 점검" },
    { id = "monitoring",         label = "서비스 제공 및 점검" },
    { id = "closure",            label = "종결" },
    { id = "follow_up",          label = "사후관리" },
  },

  -- Every step may also end in closure (비대상, 거부, 사망 …): the core
  -- asks a reason for every closure.
  transitions = {
    discovery          = { "initial_counseling", "closure" },
    initial_counseling = { "intake", "closure" },
    intake             = { "assessment", "closure" },
    assessment         = { "selection", "closure" },
    selection          = { "planning", "closure" },
    planning           = { "delivery", "closure" },
    -- 점검: 재사정 필요성 판단, 조정, 조기종결 (seed 004 II.6)
    delivery           = { "monitoring", "closure" },
    monitoring         = { "delivery", "planning", "assessment", "closure" },
    closure            = { "follow_up" },
  },

  -- 사후관리 중 새로운 문제나 욕구 → 재개입 (seed 004 II.8)
  reopen_to = { "intake", "assessment" },

  guards = {
    -- 대상자 구분: only a case-management household gets a service plan.
    ["selection->planning"] = function(case, input, ctx)
      local sel = input.data.selection
      if sel ~= "case_management" then
        return false, string.format(
          "서비스 제공계획은 사례관리 가구로 선정된 경우에만 수립합니다 (선정 결과: %s)", tostring(sel))
      end
      return true
    end,
  },

  tests = {
    { name = "first stage is 대상자 발굴", run = function(t)
        local rules = t.rules("integrated")
        t.eq(rules.first_stage, "discovery")
        t.eq(rules.stages[7].label, "서비스 제공 및 점검")
      end },
    { name = "a case-management household moves to planning", run = function(t)
        local r = t.transition { program = "integrated", case = { stage = "selection" }, to = "planning",
                                 data = { selection = "case_management" } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "서비스 제공계획 수립")
      end },
    { name = "a service-linkage household gets no plan", run = function(t)
        local r = t.transition { program = "integrated", case = { stage = "selection" }, to = "planning",
                                 data = { selection = "service_linkage" } }
        t.eq(r.ok, false)
        t.eq(r.kind, "refused")
        t.eq(r.plugin, "integrated")
      end },
    { name = "stages cannot be skipped", run = function(t)
        local r = t.transition { program = "integrated", case = { stage = "discovery" }, to = "planning" }
        t.eq(r.kind, "not_allowed")
        t.eq(r.allowed, { "initial_counseling", "closure" })
      end },
  },
}
