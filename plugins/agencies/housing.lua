-- 한국토지주택공사(LH) (주거 지원): a connector of the government-wide service referral
-- system (범정부 서비스 의뢰, seed 001 부록3 "서비스 의뢰 활용 기관").
-- 지자체 ↔ 기관 양방향: local government refers people to it (the outbox delivers
-- the referral to agency.housing.url) and it refers people to the dong.
-- The dong's 접수·반려 의견 and each later processing step (처리단계별 처리내용)
-- go back to it in the system's standard messages (core/lua/host.lua), so that
-- its counselors can use them (seed 001).

---@type sarye.Plugin
return {
  id = "housing",
  kind = "agency",
  version = "1.1.0",
  api = 1,
  name = "한국토지주택공사(LH)",
  direction = "two_way",

  tests = {
    { name = "a referral to it carries the person with the RRN masked", run = function(t)
        local r = t.message { agency = "housing", kind = "referral", data = { id = "ref_1", reason = "r", opinion = "o",
                              person = { person = { name = "홍길동", rrn = "800101-1******" } } } }
        t.ok(r.ok)
        t.eq(r.payload.person.rrn_masked, "800101-1******")
      end },
  },
}
