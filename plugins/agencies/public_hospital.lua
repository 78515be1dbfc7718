-- 지방의료원 (보건/의료 지원 (지자체→기관 의뢰는 일부 지방의료원만 가능)): a connector of the government-wide service referral
-- system (범정부 서비스 의뢰, seed 001 부록3 "서비스 의뢰 활용 기관").
-- 지자체 ↔ 기관 양방향: local government refers people to it (the outbox delivers
-- the referral to agency.public_hospital.url) and it refers people to the dong.
-- The dong's 접수·반려 의견 and each later processing step (처리단계별 처리내용)
-- go back to it as messages, so that its counselors can use them (seed 001).

---@type sarye.Plugin
return {
  id = "public_hospital",
  kind = "agency",
  version = "1.0.0",
  api = 1,
  name = "지방의료원",
  direction = "two_way",

  -- The agency's status codes, as its replies carry them (접수, 진행, 반려, 완료).
  statuses = { RECEIVED = "received", IN_PROGRESS = "in_progress", REJECTED = "rejected",
              COMPLETED = "completed", ["접수"] = "received", ["진행"] = "in_progress",
              ["반려"] = "rejected", ["완료"] = "completed" },

  messages = {
    -- 서비스 의뢰: who, why, and the referrer's opinion (the RRN stays masked).
    referral = function(r)
      local p = r.person and r.person.person or {}
      return { type = "service_referral", referral_id = r.id, requested_service = "보건/의료 지원",
               person = { name = p.name, birth_date = p.birth_date, sex = p.sex, phone = p.phone,
                          address = p.address, rrn_masked = p.rrn },
               reason = r.reason, opinion = r.opinion, from_org = r.from_org }
    end,
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
    { name = "a referral carries the person with the RRN masked", run = function(t)
        local r = t.message { agency = "public_hospital", kind = "referral", data = { id = "ref_1", reason = "r", opinion = "o",
                              person = { person = { name = "홍길동", rrn = "800101-1******" } } } }
        t.ok(r.ok)
        t.eq(r.payload.person.rrn_masked, "800101-1******")
        t.eq(r.payload.referral_id, "ref_1")
      end },
    { name = "the dong's answer goes back as 접수 or 반려", run = function(t)
        local r = t.message { agency = "public_hospital", kind = "answer", data = { id = "ref_1", status = "rejected",
                                                                  answer_note = "관할 아님" } }
        t.eq(r.payload.result, "반려")
        t.eq(r.payload.opinion, "관할 아님")
      end },
  },
}
