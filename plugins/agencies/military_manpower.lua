-- 병무청 (생계곤란 사회복무요원, 병역의무자): a connector of the government-wide service referral
-- system (범정부 서비스 의뢰, seed 001 부록3 "서비스 의뢰 활용 기관").
-- 기관 → 지자체 단방향: it refers people to the dong; it takes no referrals.
-- The dong's 접수·반려 의견 and each later processing step (처리단계별 처리내용)
-- go back to it as messages, so that its counselors can use them (seed 001).

---@type sarye.Plugin
return {
  id = "military_manpower",
  kind = "agency",
  version = "1.0.0",
  api = 1,
  name = "병무청",
  direction = "inbound",

  -- The agency's status codes, as its replies carry them (접수, 진행, 반려, 완료).
  statuses = { RECEIVED = "received", IN_PROGRESS = "in_progress", REJECTED = "rejected",
              COMPLETED = "completed", ["접수"] = "received", ["진행"] = "in_progress",
              ["반려"] = "rejected", ["완료"] = "completed" },

  messages = {
    -- 의뢰 접수·반려 의견
    answer = function(r)
      return { type = "referral_answer", referral_id = r.id, agency_ref = r.agency_ref,
               result = r.status == "accepted" and "접수" or "반려", opinion = r.answer_note,
               case_id = r.case_id }
    end,
    -- 처리단계별 처리내용
    progress = function(s)
      return { type = "referral_progress", referral_id = s.referral_id, agency_ref = s.agency_ref,
               stage = s.stage, status = s.status }
    end,
  },

  tests = {
    { name = "it takes no referrals from local government", run = function(t)
        t.eq(t.message { agency = "military_manpower", kind = "referral", data = {} }.kind, "inbound_only")
      end },
    { name = "the dong's answer goes back as 접수 or 반려", run = function(t)
        local r = t.message { agency = "military_manpower", kind = "answer", data = { id = "ref_1", status = "rejected",
                                                                  answer_note = "관할 아님" } }
        t.eq(r.payload.result, "반려")
        t.eq(r.payload.opinion, "관할 아님")
      end },
  },
}
