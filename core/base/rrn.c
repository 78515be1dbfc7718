/* rrn.c: validation of resident registration numbers. */
#include "base/rrn.h"

#include <stdio.h>
#include <string.h>

#include "base/base.h"

rrn_status rrn_parse(const char *s, char digits[14], char birth[11], bool *male)
{
    size_t n = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '-' && i == 6 && n == 6) continue;
        if (s[i] < '0' || s[i] > '9' || n == 13) return RRN_FORMAT;
        digits[n++] = s[i];
    }
    if (n != 13) return RRN_FORMAT;
    digits[13] = 0;
    int yy = (digits[0] - '0') * 10 + (digits[1] - '0');
    int mm = (digits[2] - '0') * 10 + (digits[3] - '0');
    int dd = (digits[4] - '0') * 10 + (digits[5] - '0');
    int s7 = digits[6] - '0';
    int century = (s7 == 9 || s7 == 0) ? 1800 : (s7 <= 2 || s7 == 5 || s7 == 6) ? 1900 : 2000;
    if (!date_valid(century + yy, mm, dd)) return RRN_DATE;
    static const int w[12] = {2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5};
    int sum = 0;
    for (int i = 0; i < 12; i++) sum += (digits[i] - '0') * w[i];
    if ((11 - sum % 11) % 10 != digits[12] - '0') return RRN_CHECK_DIGIT;
    snprintf(birth, 11, "%04u-%02u-%02u", (unsigned)(century + yy) % 10000u, (unsigned)mm % 100u,
             (unsigned)dd % 100u);
    *male = s7 % 2 == 1;
    return RRN_OK;
}

const char *rrn_status_text(rrn_status st)
{
    switch (st) {
    case RRN_OK: return "valid";
    case RRN_FORMAT: return "must be 13 digits, as YYMMDD-NNNNNNN or without the hyphen";
    case RRN_DATE: return "its first six digits and the seventh are not a real birth date";
    case RRN_CHECK_DIGIT: return "the check digit does not match";
    }
    return "invalid";
}
