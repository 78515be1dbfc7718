/* keys.h: the key material behind store/pii.h, for the store's own files
 * (keyring.c, audit.c, store.c). A keyset is everything derived from one
 * master key (crypto_kdf, one context per use); the server holds one, the
 * current; `sarye key rotate` holds two at once. */
#ifndef SARYE_STORE_KEYS_H
#define SARYE_STORE_KEYS_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>

#include "store/pii.h"

#define KEY_BYTES 32
/* An Ed25519 signature in hex. */
#define SIG_HEX (crypto_sign_BYTES * 2 + 1)
/* An Ed25519 public key in hex. */
#define PK_HEX (crypto_sign_PUBLICKEYBYTES * 2 + 1)

typedef struct {
    bool ready;
    char id[PII_KEY_ID_HEX];
    unsigned char index[KEY_BYTES];     /* RRN blind index (HMAC-SHA-256) */
    unsigned char seal[KEY_BYTES];      /* RRN seal (XChaCha20-Poly1305) */
    unsigned char idem_hash[KEY_BYTES]; /* Idempotency-Key request digests (keyed BLAKE2b) */
    unsigned char idem_body[KEY_BYTES]; /* Idempotency-Key stored answers (sealed) */
    unsigned char audit_mac[KEY_BYTES]; /* the audit chain (keyed BLAKE2b) */
    unsigned char ring[KEY_BYTES];      /* seals retired audit keys in the keyring */
    unsigned char sign_pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char sign_sk[crypto_sign_SECRETKEYBYTES]; /* audit checkpoints (Ed25519) */
} keyset;

/* The key the process runs with (ready false before pii_load). */
const keyset *keys_current(void);
void keys_set_current(const keyset *ks);
/* Reads the master key in path and derives ks. -1 with err; *missing is
 * set when the file does not exist. */
int keys_read(const char *path, keyset *ks, bool *missing, char *err, size_t errlen);
/* Makes a new random master key in path (must not exist: O_EXCL, mode
 * 0600, fsynced with its folder) and derives ks. */
int keys_create(const char *path, keyset *ks, char *err, size_t errlen);
void keys_wipe(keyset *ks);

void keys_rrn_index(const keyset *ks, const char *digits, char out[65]);
int keys_rrn_seal(const keyset *ks, const char *digits, const char *person_id, char *out, size_t outlen);
int keys_rrn_open(const keyset *ks, const char *sealed, const char *person_id, char digits[14]);

/* Seals len bytes under key, bound to ad: "s1." + base64url(nonce ||
 * ciphertext), malloc'd (NULL when out of memory). */
char *keys_seal(const unsigned char key[KEY_BYTES], const void *ad, size_t adlen, const void *plain, size_t len);
/* Opens what keys_seal made: malloc'd, NUL-terminated, *len without the
 * NUL; NULL if it was sealed under another key or for another ad, or
 * changed. */
unsigned char *keys_open(const unsigned char key[KEY_BYTES], const void *ad, size_t adlen, const char *sealed,
                         size_t *len);
/* True for text keys_seal made (as opposed to text stored in clear by an
 * older sarye). */
bool keys_is_sealed(const char *text);

/* Ed25519 signatures over a message, hex. */
void keys_sign(const keyset *ks, const void *msg, size_t len, char out[SIG_HEX]);
bool keys_signature_ok(const unsigned char pk[crypto_sign_PUBLICKEYBYTES], const void *msg, size_t len,
                       const char *sig_hex);
void keys_hex(const unsigned char *bin, size_t len, char *out);
/* Parses exactly len bytes of hex; false otherwise. */
bool keys_unhex(const char *hex, unsigned char *out, size_t len);

#endif
