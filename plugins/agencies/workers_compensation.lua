-- 근로복지공단 (산재근로자 지원): a connector of the government-wide service referral
-- system (범정부 서비스 의뢰, seed 001 부록3 "서비스 의뢰 활용 기관").
-- 기관 → 지자체 단방향: it refers people to the dong; it takes no referrals.
-- The dong's 접수·반려 의견 and each later processing step (처리단계별 처리내용)
-- go back to it in the system's standard messages (core/lua/host.lua), so that
-- its counselors can use them (seed 001).

---@type sarye.Plugin
return {
  id = "workers_compensation",
  kind = "agency",
  version = "1.1.0",
  api = 1,
  name = "근로복지공단",
  direction = "inbound",

  tests = {
    { name = "it takes no referrals from local government", run = function(t)
        t.eq(t.message { agency = "workers_compensation", kind = "referral", data = {} }.kind, "inbound_only")
      end },
  },
}
