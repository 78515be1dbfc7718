/*
 * rrn: the Korean resident registration number (주민등록번호), 13 digits
 * YYMMDD-SGGGGGC. S gives sex and century (1/2: 1900s, 3/4: 2000s,
 * 5-8: foreign residents, 9/0: 1800s); C is a check digit over the first 12.
 */
#ifndef SARYE_RRN_H
#define SARYE_RRN_H

#include <stdbool.h>

typedef enum {
    RRN_OK = 0,
    RRN_FORMAT,      /* not 13 digits (one optional hyphen after 6) */
    RRN_DATE,        /* the birth date in it does not exist */
    RRN_CHECK_DIGIT, /* the check digit does not match */
} rrn_status;

/* Validates s; on RRN_OK writes the 13 digits to digits[14] and the birth
 * date as YYYY-MM-DD to birth[11], and *male. */
rrn_status rrn_parse(const char *s, char digits[14], char birth[11], bool *male);
const char *rrn_status_text(rrn_status st);

#endif
