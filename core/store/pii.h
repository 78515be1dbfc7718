/*
 * pii: protection of personal identifiers at rest. Resident registration
 * numbers are sealed with an AEAD (XChaCha20-Poly1305, libsodium) and found
 * by a keyed blind index (HMAC-SHA-256), both keys derived from one master
 * key kept in a file outside the database (created 0600 on first use, never
 * logged). The index answers "this number is known" and nothing else.
 */
#ifndef SARYE_PII_H
#define SARYE_PII_H

#include <stddef.h>

#include "base/base.h"

/* Loads the master key from path, creating it (0600) if it does not exist. */
int pii_init(const char *path, char *err, size_t errlen);
void pii_shutdown(void);
/* The masked form of a 13-digit RRN, the only one that is ever shown:
 * "YYMMDD-S******". */
void pii_rrn_mask(const char *digits, char out[16]);
/* The blind index of a 13-digit RRN (hex). */
void pii_rrn_index(const char *digits, char out[SHA256_HEX]);
/* Seals digits bound to the person id; out is base64 (at most 128 bytes). */
int pii_rrn_seal(const char *digits, const char *person_id, char *out, size_t outlen);
/* Opens what pii_rrn_seal made for person_id into digits[14]; -1 if it was
 * tampered with or sealed for someone else. */
int pii_rrn_open(const char *sealed, const char *person_id, char digits[14]);

#endif
