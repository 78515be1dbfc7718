/*
 * messages_ko.c: the Korean catalogue of error messages, and the choice of
 * language from Accept-Language. A new error code needs its line here
 * (tests/unit/test_messages.c finds every code in core/ and fails on one
 * without it). Keep the table sorted by code.
 */
#include "http/messages.h"

#include "base/base.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *code, *ko;
} entry;

static const entry CATALOGUE[] = {
    {"agency_busy", "연계 기관에 보낸 조회가 너무 많아 지금은 받을 수 없습니다"},
    {"agency_error", "연계 기관이 오류로 응답했습니다"},
    {"agency_unavailable", "연계 기관을 사용할 수 없습니다"},
    {"allocation_not_confirmed", "확정된 자원 배정이 아닙니다"},
    {"already_reserved", "이 사례는 이미 이 자원을 예약했거나 대기 중입니다"},
    {"archive_unverified", "감사 기록 보관 파일을 검증할 수 없어 기록을 지우지 않았습니다"},
    {"audit_broken", "감사 기록이 변경되었거나 빠져 있습니다"},
    {"audit_unavailable", "감사 기록을 남길 수 없어 아무것도 공개하지 않았습니다"},
    {"body_required", "요청 본문(JSON 객체)이 필요합니다"},
    {"body_too_large", "요청 본문이 허용된 크기보다 큽니다"},
    {"capacity_below_use", "이미 쓰고 있는 자리보다 정원을 줄일 수 없습니다"},
    {"case_changed", "사례가 그사이 바뀌었습니다"},
    {"case_ended", "이미 끝난 사례입니다"},
    {"clock_not_adjustable", "이 서버에서는 업무 날짜를 바꿀 수 없습니다"},
    {"conflict", "현재 상태와 맞지 않아 처리할 수 없습니다"},
    {"consent_invalid", "동의 내용이 올바르지 않습니다"},
    {"consent_required", "당사자의 정보제공 동의가 필요합니다"},
    {"consent_revoked", "이미 철회된 동의입니다"},
    {"duplicate", "이미 등록되어 있습니다"},
    {"forbidden", "이 역할로는 할 수 없는 작업입니다"},
    {"guard_refused", "업무 규칙에 따라 거부되었습니다"},
    {"headers_too_large", "요청 헤더가 너무 큽니다"},
    {"idempotency_key_reused", "같은 Idempotency-Key가 다른 요청에 이미 쓰였습니다"},
    {"incomplete_body", "요청 본문이 중간에 끊겼습니다"},
    {"internal", "서버 내부 오류가 발생했습니다"},
    {"internal_error", "서버 내부 오류가 발생했습니다"},
    {"invalid_cursor", "이 서버가 준 커서가 아닙니다"},
    {"invalid_date", "날짜가 올바르지 않습니다"},
    {"invalid_idempotency_key", "Idempotency-Key는 보이는 ASCII 문자 1~255자여야 합니다"},
    {"invalid_path", "요청 경로가 올바르지 않습니다"},
    {"invalid_query", "조회 조건이 올바르지 않습니다"},
    {"io_error", "파일을 읽거나 쓸 수 없습니다"},
    {"lookup_approval_required", "기관장의 정보조회 승인이 먼저 필요합니다"},
    {"malformed_json", "요청 본문이 올바른 JSON 객체가 아닙니다"},
    {"malformed_request", "요청을 해석할 수 없습니다"},
    {"merge_conflict", "두 기록을 합칠 수 없습니다"},
    {"merge_undone", "이미 되돌린 병합입니다"},
    {"method_not_allowed", "이 주소에서 허용되지 않는 메서드입니다"},
    {"no_offer", "제안된 자원이 없습니다"},
    {"not_dead", "재전송할 수 있는 실패 메시지가 아닙니다"},
    {"not_eligible", "대상 요건에 맞지 않습니다"},
    {"not_found", "찾을 수 없습니다"},
    {"not_needed", "이 기관에는 필요하지 않은 절차입니다"},
    {"not_ready", "서버가 아직 준비되지 않았습니다. 잠시 후 다시 시도하세요"},
    {"offer_expired", "자원 제안의 기한이 지났습니다"},
    {"overloaded", "서버에 요청이 몰려 있습니다. 잠시 후 다시 시도하세요"},
    {"person_exists", "이미 등록된 사람입니다"},
    {"person_merged", "다른 기록으로 합쳐진 사람입니다"},
    {"plan_not_draft", "초안 상태의 계획이 아닙니다"},
    {"plugin_error", "플러그인 실행 중 오류가 발생했습니다"},
    {"plugin_invalid", "플러그인 묶음에 오류가 있어 적용하지 않았습니다. 기존 규칙이 계속 쓰입니다"},
    {"plugin_memory", "플러그인이 메모리 한도를 넘었습니다"},
    {"plugin_timeout", "플러그인이 CPU 시간 한도를 넘었습니다"},
    {"program_not_offered", "이 기관이 운영하지 않는 사업입니다"},
    {"program_unavailable", "이 사업의 규칙이 적재되어 있지 않습니다"},
    {"rate_limited", "요청이 너무 많습니다. 잠시 후 다시 시도하세요"},
    {"reason_required", "사유를 적어야 합니다"},
    {"referral_answered", "이미 응답한 의뢰입니다"},
    {"referral_not_allowed", "허용되지 않는 의뢰입니다"},
    {"referral_not_closed", "의뢰받은 사례가 아직 종결되지 않았습니다"},
    {"region_busy", "이 지역의 요청이 처리 한도에 이르렀습니다. 잠시 후 다시 시도하세요"},
    {"region_suspended", "이 지역의 규칙이 잠시 중지되었습니다. 잠시 후 다시 시도하세요"},
    {"replay_differs", "재실행 결과가 예상과 다릅니다"},
    {"replay_running", "다른 재실행이 진행 중입니다"},
    {"resource_closed", "운영을 마친 자원입니다"},
    {"sharing_right_incomplete", "정보공유 권한 요건(교육 이수, 서약)이 갖추어지지 않았습니다"},
    {"sharing_right_required", "정보공유 권한이 필요합니다"},
    {"shutting_down", "서버가 종료하는 중입니다. 다른 서버로 다시 시도하세요"},
    {"store_busy", "데이터베이스가 바쁩니다. 잠시 후 다시 시도하세요"},
    {"store_unavailable", "데이터베이스를 사용할 수 없습니다"},
    {"token_revoked", "이미 폐기된 토큰입니다"},
    {"too_many_generations", "적재된 플러그인 세대가 너무 많습니다"},
    {"too_recent", "보존 기간이 지나지 않은 기록입니다"},
    {"transition_not_allowed", "이 단계로 옮길 수 없습니다"},
    {"unauthorized", "인증 토큰이 없거나 유효하지 않습니다"},
    {"unavailable", "지금은 사용할 수 없습니다"},
    {"unknown_area", "알 수 없는 행정동입니다"},
    {"unknown_assignee", "배정할 수 없는 담당자입니다"},
    {"unknown_case", "알 수 없는 사례입니다"},
    {"unknown_household", "알 수 없는 가구입니다"},
    {"unknown_org", "알 수 없는 기관입니다"},
    {"unknown_person", "알 수 없는 대상자입니다"},
    {"unknown_program", "알 수 없는 사업입니다"},
    {"unknown_resource", "알 수 없는 자원입니다"},
    {"unsupported_media_type", "요청 본문은 application/json 형식이어야 합니다"},
    {"validation_failed", "입력값이 올바르지 않습니다"},
    {"version_mismatch", "다른 사용자가 먼저 바꾸었습니다. 최신 내용을 다시 읽은 뒤 시도하세요"},
    {"waitlist_ended", "이미 끝난 대기입니다"},
};
#define N_CATALOGUE ((int)(sizeof CATALOGUE / sizeof CATALOGUE[0]))

static int cmp_code(const void *key, const void *e) { return strcmp(key, ((const entry *)e)->code); }

const char *messages_ko(const char *code)
{
    if (!code) return NULL;
    const entry *hit = bsearch(code, CATALOGUE, (size_t)N_CATALOGUE, sizeof CATALOGUE[0], cmp_code);
    return hit ? hit->ko : NULL;
}

const char *messages_ko_at(int i, const char **text)
{
    if (i < 0 || i >= N_CATALOGUE) return NULL;
    if (text) *text = CATALOGUE[i].ko;
    return CATALOGUE[i].code;
}

/* ---- Accept-Language (RFC 9110 12.5.4) ---- */
/* The q of one list member's parameters: 1 without q, -1 when malformed. */
static double parse_q(const char *p, const char *end)
{
    double q = 1;
    while (p < end) {
        while (p < end && (*p == ';' || *p == ' ' || *p == '\t')) p++;
        if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            p += 2;
            /* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
            if (p >= end || (*p != '0' && *p != '1')) return -1;
            int whole = *p++ - '0', frac = 0, digits = 0;
            if (p < end && *p == '.') {
                p++;
                while (p < end && isdigit((unsigned char)*p) && digits < 3) {
                    frac = frac * 10 + (*p++ - '0');
                    digits++;
                }
            }
            while (digits < 3) { frac *= 10; digits++; }
            if (whole == 1 && frac) return -1;
            q = whole + frac / 1000.0;
            while (p < end && (*p == ' ' || *p == '\t')) p++;
            if (p < end && *p != ';') return -1;
        } else {
            while (p < end && *p != ';') p++; /* another parameter: ignored */
        }
    }
    return q;
}

/* 2: the range names the language (or a subtag of it), 1: "*", 0: neither. */
static int range_matches(const char *tag, size_t n, const char *lang)
{
    size_t l = strlen(lang);
    if (n == 1 && tag[0] == '*') return 1;
    if (n >= l && !strncasecmp(tag, lang, l) && (n == l || tag[l] == '-')) return 2;
    return 0;
}

bool messages_prefers_ko(const char *h)
{
    if (!h || !*h) return false;
    /* For each language: the q of its most specific matching range (an
     * explicit range beats "*"), and where that range stood. */
    double q[2] = {-1, -1};
    int spec[2] = {0, 0}, pos[2] = {0, 0};
    static const char *const langs[2] = {"ko", "en"};
    int index = 0;
    for (const char *p = h; *p;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *t = p;
        while (t < end && (*t == ' ' || *t == '\t')) t++;
        const char *te = t;
        while (te < end && *te != ';' && *te != ' ' && *te != '\t') te++;
        double v = parse_q(te, end);
        if (te > t && v >= 0) {
            for (int k = 0; k < 2; k++) {
                int m = range_matches(t, (size_t)(te - t), langs[k]);
                if (m && (m > spec[k] || (m == spec[k] && v > q[k]))) {
                    spec[k] = m;
                    q[k] = v;
                    pos[k] = index;
                }
            }
        }
        index++;
        p = *end ? end + 1 : end;
    }
    if (q[0] <= 0) return false;
    if (q[1] < 0) return true;
    return q[0] > q[1] || (q[0] == q[1] && spec[0] == 2 && (spec[1] < 2 || pos[0] < pos[1]));
}

/* ---- translation ---- */
/* buf += a b c (cut to cap). */
static void append(char *buf, size_t cap, const char *a, const char *b, const char *c)
{
    size_t n = strlen(buf);
    if (n + 1 < cap) snprintf(buf + n, cap - n, "%s%s%s", a, b, c);
}

bool messages_translate_ko(err_t *e)
{
    const char *ko = messages_ko(e->code[0] ? e->code : "internal_error");
    if (!ko) return false;
    char msg[sizeof e->message];
    str_copy(msg, sizeof msg, ko);
    json_t *d = e->details;
    const char *field = json_string_value(json_object_get(d, "field"));
    if (field) append(msg, sizeof msg, " (항목: ", field, ")");
    json_t *allowed = json_object_get(d, "allowed");
    if (json_is_array(allowed)) {
        char list[200] = "";
        size_t i;
        json_t *v;
        json_array_foreach(allowed, i, v) {
            if (!json_is_string(v)) continue;
            append(list, sizeof list, list[0] ? ", " : "", json_string_value(v), "");
        }
        append(msg, sizeof msg, " (허용: ", list[0] ? list : "없음", ")");
    } else if (json_is_string(allowed)) {
        append(msg, sizeof msg, " (허용: ", json_string_value(allowed), ")");
    }
    json_t *errors = json_object_get(d, "errors");
    if (json_is_array(errors) && json_array_size(errors)) {
        char k[32];
        snprintf(k, sizeof k, "%zu", json_array_size(errors));
        append(msg, sizeof msg, " (오류 ", k, "개)");
    }
    const char *reason = json_string_value(json_object_get(d, "reason"));
    if (reason && *reason) append(msg, sizeof msg, ": ", reason, "");
    const char *file = json_string_value(json_object_get(d, "file"));
    json_t *line = json_object_get(d, "line");
    if (file && json_is_integer(line)) {
        char ln[32];
        snprintf(ln, sizeof ln, ":%lld)", (long long)json_integer_value(line));
        append(msg, sizeof msg, " (", file, ln);
    }
    json_t *ra = json_object_get(d, "retry_after");
    if (json_is_integer(ra)) {
        char s[24];
        snprintf(s, sizeof s, "%lld", (long long)json_integer_value(ra));
        append(msg, sizeof msg, " (", s, "초 뒤 다시 시도)");
    }
    /* A message cut short must not end inside a character. */
    size_t n = strlen(msg);
    while (n && !utf8_valid(msg, n)) msg[--n] = 0;
    err_detail(e, "message_en", json_string(e->message));
    str_copy(e->message, sizeof e->message, msg);
    return true;
}
