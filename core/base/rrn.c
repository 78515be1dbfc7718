/* rrn.c: reading resident registration numbers (see rrn.h for the rules). */
#include "base/rrn.h"

#include <stdio.h>
#include <string.h>

#include "base/base.h"

/* Since this date the digits after S are random: no check digit. */
#define RANDOM_SINCE "2020-10-05"

rrn_status rrn_read(const char *s, const char *today, rrn_info *out)
{
    memset(out, 0, sizeof *out);
    size_t n = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '-' && i == 6 && n == 6) continue;
        if (s[i] < '0' || s[i] > '9' || n == 13) return RRN_FORMAT;
        out->digits[n++] = s[i];
    }
    if (n != 13) return RRN_FORMAT;
    const char *d = out->digits;
    int yy = (d[0] - '0') * 10 + (d[1] - '0');
    int mm = (d[2] - '0') * 10 + (d[3] - '0');
    int dd = (d[4] - '0') * 10 + (d[5] - '0');
    int sx = d[6] - '0';
    int century = (sx == 9 || sx == 0) ? 1800 : (sx <= 2 || sx == 5 || sx == 6) ? 1900 : 2000;
    if (!date_valid(century + yy, mm, dd)) return RRN_DATE;
    snprintf(out->birth, sizeof out->birth, "%04u-%02u-%02u", (unsigned)(century + yy) % 10000u,
             (unsigned)mm % 100u, (unsigned)dd % 100u);
    if (today && strcmp(out->birth, today) > 0) return RRN_FUTURE;
    out->male = sx % 2 == 1;
    out->foreign = sx >= 5 && sx <= 8;
    if (strcmp(out->birth, RANDOM_SINCE) < 0) {
        static const int w[12] = {2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5};
        int sum = 0;
        for (int i = 0; i < 12; i++) sum += (d[i] - '0') * w[i];
        int check = out->foreign ? (13 - sum % 11) % 10 : (11 - sum % 11) % 10;
        out->check_mismatch = check != d[12] - '0';
    }
    return RRN_OK;
}

const char *rrn_status_text(rrn_status st)
{
    switch (st) {
    case RRN_OK: return "valid";
    case RRN_FORMAT: return "must be 13 digits, as YYMMDD-NNNNNNN or without the hyphen";
    case RRN_DATE: return "its first six digits and the seventh are not a real birth date";
    case RRN_FUTURE: return "the birth date in it is after today";
    }
    return "invalid";
}

const char *rrn_warning(const rrn_info *info)
{
    if (!info->check_mismatch) return NULL;
    return "the last digit does not match the check digit numbers issued before 2020-10-05 carry; "
           "numbers issued or changed since then have none: confirm the number with the person";
}
