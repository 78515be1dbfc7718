/*
 * rrn: the Korean resident registration number (주민등록번호) and the
 * foreign resident's registration number (외국인등록번호), 13 digits
 * YYMMDD-SNNNNNN. S gives sex (odd: male) and century: 9/0 the 1800s, 1/2
 * the 1900s, 3/4 the 2000s; 5/6 (1900s) and 7/8 (2000s) are foreign
 * residents. Numbers issued since 2020-10-05 have random digits after S
 * and no check digit; older ones end in a mod-11 check digit (foreign
 * residents' a variant of it). A number is refused only when it cannot be
 * real: its shape, a birth date that does not exist or is still to come.
 * A check digit that does not match is a warning, and only for someone
 * born before 2020-10-05 (only their number can be an old-style one).
 */
#ifndef SARYE_RRN_H
#define SARYE_RRN_H

#include <stdbool.h>

typedef enum {
    RRN_OK = 0,
    RRN_FORMAT, /* not 13 digits (one optional hyphen after 6) */
    RRN_DATE,   /* the birth date in it does not exist */
    RRN_FUTURE, /* the birth date in it is after today */
} rrn_status;

typedef struct {
    char digits[14];     /* the 13 digits */
    char birth[11];      /* YYYY-MM-DD */
    bool male;
    bool foreign;        /* a foreign resident's number (S 5-8) */
    bool check_mismatch; /* born before 2020-10-05, and the old check digit does not match */
} rrn_info;

/* Reads s as of today (YYYY-MM-DD); out is filled on RRN_OK. */
rrn_status rrn_read(const char *s, const char *today, rrn_info *out);
const char *rrn_status_text(rrn_status st);
/* The warning a number carries (the check digit), or NULL. */
const char *rrn_warning(const rrn_info *info);

#endif
