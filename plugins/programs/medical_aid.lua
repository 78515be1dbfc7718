-- 의료급여사례관리: 시·군·구 의료급여관리사가 의료급여수급권자의 자가
-- 건강관리능력을 높이고 합리적 의료이용을 유도한다 (의료급여법 제5조의2).
-- Stage map: seed 003 (희망이음 표준 프로세스 표) "의료급여사례관리 프로세스":
-- 대상자 선정 및 사정 (표준 4–5) → 관리계획 수립 (6) → 수행 (7–8) → 종결 (9);
-- 공통업무 사례회의 관리. The program has no 발굴·초기상담·접수 of its own
-- (cases start at 대상자 선정 및 사정) and no 사후관리.
-- Rules: seed 001 (2020 공공부문 사례관리 연계·협력 업무안내)
--   I.4 의료급여사례관리: 사업대상, 사업 내용, 의뢰기준 및 절차
--   II.3 보건복지 연계: 종결 시 통합사례관리와 연계 구조화
--   부록1 3. 의료급여사례관리 (2020년 의료급여사업안내 제4편 IV.5):
--     연계방법 (방문건강관리·정신건강: 매월 1회 연계), 의뢰받은 경우
--
-- person.eligibility facts read here:
--   medical_aid = true | "1종" | "2종"   의료급여수급권자
--   medical_aid_new = true              의료급여수급권을 처음 취득한 신규 수급자
--   medical_overuse = {...}             질병 대비 부적정 과다 의료이용: any of
--       "doctor_shopping" 의료쇼핑, "duplicate_prescription" 중복처방,
--       "repeated_admission" 입퇴원 반복, "social_admission" 사회적 입원
--   long_stay_discharge = true          장기입원 후 퇴원 (재가급여, 2019.6~ 2년 시범)

local OVERUSE = {
  doctor_shopping = "의료쇼핑",
  duplicate_prescription = "중복처방",
  repeated_admission = "입퇴원 반복",
  social_admission = "사회적 입원",
}
local OVERUSE_ORDER = { "doctor_shopping", "duplicate_prescription", "repeated_admission", "social_admission" }

local fact = sarye.lib.fact -- a recorded fact says yes ("없음", "no", 0 ... say no)

-- The over-use patterns recorded for a person (a list, or one text).
local function overuse_of(e)
  local v = e and e.medical_overuse
  if type(v) == "string" then v = { v } end
  local found = {}
  if type(v) == "table" then
    local set = {}
    for _, x in ipairs(v) do set[x] = true end
    for _, k in ipairs(OVERUSE_ORDER) do if set[k] then found[#found + 1] = OVERUSE[k] end end
  end
  return found
end

-- 1개월마다: 방문건강관리사업·정신건강사업과의 연계 주기 (부록1 3. 다. 연계방법)
local LINKAGE_LABEL = "공공부문 사례관리 연계 (방문건강관리·정신건강사업: 매월 1회 연계; 회신 방문건강 매월, 정신건강 분기)"

---@type sarye.Program
return {
  id = "medical_aid",
  kind = "program",
  version = "1.1.0",
  api = 1,
  name = "의료급여사례관리",

  stages = {
    { id = "assessment", label = "대상자 선정 및 사정" },
    { id = "selection",  label = "대상자 선정 및 사정" },
    { id = "planning",   label = "관리계획 수립" },
    { id = "delivery",   label = "수행" },
    { id = "monitoring", label = "수행" },
    { id = "closure",    label = "종결" },
  },

  -- 수행 중 재사정 (assessment) and 관리계획 변경 (planning); closure from every step.
  transitions = {
    assessment = { "selection", "closure" },
    selection  = { "planning", "closure" },
    planning   = { "delivery", "closure" },
    delivery   = { "monitoring", "assessment", "closure" },
    monitoring = { "delivery", "planning", "assessment", "closure" },
  },

  closure_reasons = {
    goal_achieved = "목표달성 (적정 의료이용)",
    death = "사망",
    moved = "전출",
    refused = "거부",
    lost_contact = "연락두절",
    transferred = "이관",
    -- 의료급여 수급권이 없어지면 이 사업의 대상이 아니다 (seed 001 I.4 사업대상)
    eligibility_lost = "의료급여 수급권 상실",
    -- 신규 수급권자: 제도 및 적정 의료이용 안내로 예방적 관리 (seed 001 I.4 사업 내용)
    guidance_completed = "신규 수급권자 안내 완료 (예방적 관리)",
    -- 의뢰받은 경우 사례관리 여부 결정 및 결과회신 (부록1 3. 라.)
    not_selected = "미선정",
    other = "기타",
  },

  -- 사업대상: 의료급여수급권을 취득한 신규 전체 대상자, 질병 대비
  -- 과다의료이용자 (seed 001 I.4); 의뢰기준: 의료쇼핑, 중복처방, 입퇴원 반복,
  -- 사회적 입원 등 부적정 과다 의료이용.
  -- The facts eligibility reads (person.eligibility[key]) and what each means:
  -- GET /v1/programs/medical_aid lists them, so a client can ask for them.
  facts = {
    medical_aid = "의료급여수급권자: true, \"1종\" 또는 \"2종\"",
    medical_aid_new = "의료급여수급권을 처음 취득한 신규 수급자 (true/false)",
    medical_overuse = "질병 대비 부적정 과다 의료이용 목록: \"doctor_shopping\" 의료쇼핑, \"duplicate_prescription\" 중복처방, \"repeated_admission\" 입퇴원 반복, \"social_admission\" 사회적 입원",
    long_stay_discharge = "장기입원 후 퇴원 (true/false)",
  },

  eligibility = function(person, case, ctx)
    local e = person.eligibility or {}
    if not fact(e, "medical_aid") then
      return false, "의료급여사례관리는 의료급여수급권자가 대상입니다 (medical_aid 미확인)"
    end
    if fact(e, "medical_aid_new") or #overuse_of(e) > 0 or fact(e, "long_stay_discharge") then
      return true
    end
    return false, "의료급여사례관리 대상은 신규 의료급여수급권자 또는 질병 대비 과다의료이용자(의료쇼핑, 중복처방, 입퇴원 반복, 사회적 입원)입니다"
  end,

  instruments = {
    -- 사업목표의 세 축 (seed 001 I.4): 자가 건강관리능력, 합리적 의료이용, 지지체계
    medical_use = { domains = { "self_care", "medical_use", "support_system" } },
  },

  records = {
    closure = { required = { "reason", "evaluation" } },
  },

  on_record = {
    -- 선정: 부적정 의료이용 행태를 보이는 대상자를 선정하여 제도 이용안내,
    -- 의료이용 정보제공, 건강상담, 자원연계 (사례관리); 신규 수급자는 초기에
    -- 제도 및 적정 의료이용 안내로 예방적 관리 (seed 001 I.4 사업 내용).
    assessment = function(case, a, ctx)
      local e = (ctx.person() or {}).eligibility or {}
      local over = overuse_of(e)
      if #over > 0 then
        return { recommendation = { selection = "case_management", reasons = {
          "질병 대비 부적정 과다 의료이용 (" .. table.concat(over, ", ") .. "): 적정 의료이용 유도 사례관리" } } }
      elseif fact(e, "long_stay_discharge") then
        return { recommendation = { selection = "case_management", reasons = {
          "장기입원 후 퇴원: 지역사회 정착 지원 (돌봄, 식사, 이동 지원 등 재가급여)" } } }
      elseif fact(e, "medical_aid_new") then
        return { recommendation = { selection = "service_linkage", reasons = {
          "신규 수급권자: 의료급여 제도 및 적정 의료이용 안내 (잠재적 과다의료이용 예방적 관리)" } } }
      end
      return { recommendation = { selection = "not_selected", reasons = { "신규 수급권자도 과다의료이용자도 아님" } } }
    end,
    -- 연계 중인 사례: 수행 중 점검 한 번마다 다음 달 연계 주기를 다시 잡는다.
    check = function(case, c, ctx)
      if case.stage ~= "delivery" and case.stage ~= "monitoring" then return end
      for _, d in ipairs(ctx.query("deadlines_of_case", { case_id = case.id })) do
        if d.kind == "linkage_monthly" then
          ctx.set_deadline("linkage_monthly", sarye.date.add_months(ctx.today, 1), LINKAGE_LABEL)
          return
        end
      end
    end,
    -- 종결 시 복지 영역과의 연결을 위한 통합사례관리와 연계 (seed 001 II.3)
    closure = function(case, rec, ctx)
      if rec.reason ~= "death" and rec.reason ~= "moved" then
        return { linkage = { program = "integrated",
                             note = "의료급여관리 종결: 복지 욕구가 있으면 읍·면·동 찾아가는 보건복지전담팀(통합사례관리)과 연계" } }
      end
    end,
  },

  -- 연계대상: 지속적인 관리 또는 서비스가 필요하여 개인정보 제3자 제공에
  -- 동의한 대상자 (부록1 3. 나.). Entering 수행 with data.linked_programs (e.g.
  -- {"visiting_health", "mental_health"}) starts the monthly linkage cycle.
  hooks = {
    enter = {
      delivery = function(case, input, ctx)
        local linked = input.data.linked_programs
        if type(linked) == "table" and #linked > 0 then
          ctx.set_deadline("linkage_monthly", sarye.date.add_months(ctx.today, 1), LINKAGE_LABEL)
        end
      end,
      closure = function(case, input, ctx) ctx.clear_deadline("linkage_monthly") end,
    },
  },

  guards = {
    -- 건강상태, 의료이용 형태 등을 종합적으로 파악한 후 사례관리 여부 결정
    -- (부록1 3. 라. 의뢰받은 경우): a 관리계획 only for a selected recipient.
    ["selection->planning"] = function(case, input, ctx)
      local assessed = false
      for _, r in ipairs(ctx.query("records_of_case", { case_id = case.id, kind = "assessment" })) do
        if r.kind == nil or r.kind == "assessment" then assessed = true end
      end
      if not assessed then
        return false, "건강상태, 의료이용 형태 등을 사정(기록)한 뒤에 사례관리 여부를 결정합니다"
      end
      local sel = input.data.selection
      if sel ~= "case_management" and sel ~= "service_linkage" then
        return false, string.format(
          "관리계획은 사례관리 대상으로 선정된 경우에만 수립합니다 (선정 결과: %s; 미선정이면 종결)", tostring(sel))
      end
      return true
    end,
  },

  tests = {
    { name = "first stage is 대상자 선정 및 사정", run = function(t)
        local rules = t.rules("medical_aid")
        t.eq(rules.first_stage, "assessment")
        t.eq(rules.stages[1].label, "대상자 선정 및 사정")
        t.eq(rules.stages[2].label, "대상자 선정 및 사정")
        t.eq(rules.stages[3].label, "관리계획 수립")
        t.eq(rules.stages[4].label, "수행")
        t.eq(rules.stages[5].label, "수행")
        t.eq(rules.stages[6].label, "종결")
      end },
    { name = "a new medical-aid recipient is eligible", run = function(t)
        local r = t.open { program = "medical_aid",
                           person = { birth_date = "1960-01-01", age = 66, eligibility = { medical_aid = "1종", medical_aid_new = true } } }
        t.ok(r.ok, r.reason)
        t.eq(r.first_stage, "assessment")
      end },
    { name = "an over-user is eligible; a recipient with neither is not", run = function(t)
        local r = t.open { program = "medical_aid",
                           person = { birth_date = "1970-01-01", age = 56,
                                      eligibility = { medical_aid = true, medical_overuse = { "doctor_shopping" } } } }
        t.ok(r.ok, r.reason)
        r = t.open { program = "medical_aid",
                     person = { birth_date = "1970-01-01", age = 56, eligibility = { medical_aid = true, medical_overuse = {} } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "과다의료이용자", 1, true))
      end },
    { name = "without medical aid nobody is eligible", run = function(t)
        local r = t.open { program = "medical_aid",
                           person = { birth_date = "1970-01-01", age = 56,
                                      eligibility = { medical_overuse = { "social_admission" }, livelihood_recipient = true } } }
        t.eq(r.kind, "refused")
        t.ok(string.find(r.reason, "의료급여수급권자", 1, true))
      end },
    { name = "over-use → case management, new recipient → guidance", run = function(t)
        local r = t.record { program = "medical_aid", kind = "assessment", subkind = "medical_use",
                             person = { eligibility = { medical_aid = true, medical_overuse = { "social_admission", "duplicate_prescription" } } },
                             record = { domains = { medical_use = { note = "외래 월 40회" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.recommendation.selection, "case_management")
        t.ok(string.find(r.result.recommendation.reasons[1], "중복처방, 사회적 입원", 1, true), r.result.recommendation.reasons[1])
        r = t.record { program = "medical_aid", kind = "assessment", subkind = "medical_use",
                       person = { eligibility = { medical_aid = true, medical_aid_new = true } },
                       record = { domains = { self_care = { note = "양호" } } } }
        t.eq(r.result.recommendation.selection, "service_linkage")
        r = t.record { program = "medical_aid", kind = "assessment", subkind = "medical_use",
                       person = { eligibility = { medical_aid = true } }, record = { domains = { self_care = {} } } }
        t.eq(r.result.recommendation.selection, "not_selected")
      end },
    { name = "a plan needs an assessment and a selection", run = function(t)
        local r = t.transition { program = "medical_aid", case = { stage = "selection" }, to = "planning",
                                 data = { selection = "case_management" }, queries = { records_of_case = {} } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "medical_aid", case = { stage = "selection" }, to = "planning",
                           data = { selection = "not_selected" },
                           queries = { records_of_case = { { kind = "assessment", subkind = "medical_use" } } } }
        t.eq(r.kind, "refused")
        r = t.transition { program = "medical_aid", case = { stage = "selection" }, to = "planning",
                           data = { selection = "case_management" },
                           queries = { records_of_case = { { kind = "assessment", subkind = "medical_use" } } } }
        t.ok(r.ok, r.reason)
        t.eq(r.label, "관리계획 수립")
      end },
    { name = "linkage starts a monthly cycle; checks renew it; closure stops it", run = function(t)
        local r = t.transition { program = "medical_aid", case = { stage = "planning" }, to = "delivery", today = "2026-01-31",
                                 data = { linked_programs = { "visiting_health" } } }
        t.ok(r.ok, r.reason)
        t.eq(r.effects.set[1].kind, "linkage_monthly")
        t.eq(r.effects.set[1].due_on, "2026-02-28")
        r = t.transition { program = "medical_aid", case = { stage = "planning" }, to = "delivery" }
        t.eq(#r.effects.set, 0)
        r = t.record { program = "medical_aid", kind = "check", case = { stage = "monitoring" }, today = "2026-03-05",
                       record = { date = "2026-03-05", with = "대상자", content = "외래 이용 감소" },
                       queries = { deadlines_of_case = { { kind = "linkage_monthly", due_on = "2026-02-28" } } } }
        t.eq(r.effects.set[1].due_on, "2026-04-05")
        r = t.record { program = "medical_aid", kind = "check", case = { stage = "monitoring" }, today = "2026-03-05",
                       record = { date = "2026-03-05", with = "대상자", content = "x" }, queries = { deadlines_of_case = {} } }
        t.eq(#r.effects.set, 0)
        r = t.transition { program = "medical_aid", case = { stage = "monitoring" }, to = "closure",
                           data = { reason = "goal_achieved" } }
        t.eq(r.effects.clear, { "linkage_monthly" })
      end },
    { name = "closure links to integrated case management", run = function(t)
        local r = t.record { program = "medical_aid", kind = "closure", record = { reason = "eligibility_lost", evaluation = "수급권 상실" } }
        t.ok(r.ok, r.reason)
        t.eq(r.result.reason_label, "의료급여 수급권 상실")
        t.eq(r.result.linkage.program, "integrated")
        r = t.record { program = "medical_aid", kind = "closure", record = { reason = "death", evaluation = "사망" } }
        t.eq(r.result.linkage, nil)
      end },
    { name = "steps walk in order, 수행 loops back, closure from any step", run = function(t)
        local r = t.transition { program = "medical_aid", case = { stage = "assessment" }, to = "delivery" }
        t.eq(r.kind, "not_allowed")
        r = t.transition { program = "medical_aid", case = { stage = "monitoring" }, to = "planning" }
        t.ok(r.ok, r.reason)
        r = t.transition { program = "medical_aid", case = { stage = "delivery" }, to = "assessment" }
        t.ok(r.ok, r.reason)
        for _, s in ipairs({ "assessment", "selection", "planning", "delivery", "monitoring" }) do
          r = t.transition { program = "medical_aid", case = { stage = s }, to = "closure", data = { reason = "refused" } }
          t.ok(r.ok, s .. ": " .. tostring(r.reason))
        end
        r = t.transition { program = "medical_aid", case = { stage = "assessment" }, to = "intake" }
        t.eq(r.kind, "stage_unused")
      end },
  },
}
