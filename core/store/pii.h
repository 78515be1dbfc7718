/*
 * pii: the secrets that protect personal data at rest, all derived from one
 * master key kept in a file outside the database (never logged):
 *
 *   - resident registration numbers, sealed with an AEAD (XChaCha20-Poly1305)
 *     bound to their person and found by a keyed blind index (HMAC-SHA-256);
 *   - Idempotency-Key records: the request's digest is keyed (BLAKE2b), the
 *     stored answer sealed (store.c);
 *   - the audit trail: records are chained with a keyed MAC and checkpoints
 *     signed with Ed25519 (audit.c, keyring.c).
 *
 * The database records which key it was sealed with (a key id derived from
 * the key, which does not reveal it): a server started with a missing or
 * different key file refuses to start (keyring.c); `sarye key rotate`
 * re-seals everything under a new one.
 */
#ifndef SARYE_PII_H
#define SARYE_PII_H

#include <stdbool.h>
#include <stddef.h>

#include "base/base.h"

/* A key id: 16 lower-case hex characters (64 bits of a one-way derivation). */
#define PII_KEY_ID_HEX 17

/* Loads the master key from path. With create, a file that does not exist
 * is made (a new random key, mode 0600) and 1 is returned; without, a
 * missing file is an error. 0 loaded, -1 with err. Every subkey is derived
 * at once. The server opens the key through store_keyring_open, which
 * decides whether creating one is right. */
int pii_load(const char *path, bool create, char *err, size_t errlen);
/* Forgets every key (zeroed). */
void pii_shutdown(void);
/* The id of the loaded key ("" before pii_load). */
const char *pii_key_id(void);

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

/* The keyed digest (BLAKE2b-256, hex) of a request, for Idempotency-Key
 * records: without the key it cannot be tested against guesses of what the
 * request held. */
void pii_request_hash(const void *data, size_t len, char out[SHA256_HEX]);

#endif
