/* pii.c: the master key file, what is derived from it, and the primitives
 * every secret of the store is made with (keys.h); the RRN seal and blind
 * index and the keyed request digest (pii.h). */
#include "store/pii.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/keys.h"

/* crypto_kdf contexts: eight characters each, one per use. The first two
 * are those of the first sarye, so its sealed numbers still open. */
#define CTX_INDEX "sryindex"
#define CTX_SEAL "sryseal_"
#define CTX_ID "srykeyid"
#define CTX_IDEM_HASH "sryidemh"
#define CTX_IDEM_BODY "sryidemb"
#define CTX_AUDIT "sryaudit"
#define CTX_RING "sryring_"
#define CTX_SIGN "srysign_"

static keyset CUR;

const keyset *keys_current(void) { return &CUR; }

void keys_set_current(const keyset *ks)
{
    sodium_memzero(&CUR, sizeof CUR);
    CUR = *ks;
}

void keys_wipe(keyset *ks) { sodium_memzero(ks, sizeof *ks); }

void keys_hex(const unsigned char *bin, size_t len, char *out) { sodium_bin2hex(out, len * 2 + 1, bin, len); }

bool keys_unhex(const char *hex, unsigned char *out, size_t len)
{
    size_t n = 0;
    const char *end = NULL;
    if (!hex || strlen(hex) != len * 2) return false;
    return sodium_hex2bin(out, len, hex, len * 2, NULL, &n, &end) == 0 && n == len && *end == 0;
}

static void derive(const unsigned char master[crypto_kdf_KEYBYTES], keyset *ks)
{
    unsigned char id[16], seed[crypto_sign_SEEDBYTES];
    memset(ks, 0, sizeof *ks);
    crypto_kdf_derive_from_key(ks->index, sizeof ks->index, 1, CTX_INDEX, master);
    crypto_kdf_derive_from_key(ks->seal, sizeof ks->seal, 2, CTX_SEAL, master);
    crypto_kdf_derive_from_key(id, sizeof id, 3, CTX_ID, master);
    crypto_kdf_derive_from_key(ks->idem_hash, sizeof ks->idem_hash, 4, CTX_IDEM_HASH, master);
    crypto_kdf_derive_from_key(ks->idem_body, sizeof ks->idem_body, 5, CTX_IDEM_BODY, master);
    crypto_kdf_derive_from_key(ks->audit_mac, sizeof ks->audit_mac, 6, CTX_AUDIT, master);
    crypto_kdf_derive_from_key(ks->ring, sizeof ks->ring, 7, CTX_RING, master);
    crypto_kdf_derive_from_key(seed, sizeof seed, 8, CTX_SIGN, master);
    crypto_sign_seed_keypair(ks->sign_pk, ks->sign_sk, seed);
    keys_hex(id, 8, ks->id);
    sodium_memzero(seed, sizeof seed);
    ks->ready = true;
}

int keys_read(const char *path, keyset *ks, bool *missing, char *err, size_t errlen)
{
    unsigned char master[crypto_kdf_KEYBYTES];
    *missing = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *missing = errno == ENOENT;
        snprintf(err, errlen, "cannot read the key file '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    ssize_t n = read(fd, master, sizeof master);
    char extra;
    ssize_t more = n == (ssize_t)sizeof master ? read(fd, &extra, 1) : 0;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077))
        fprintf(stderr, "sarye: warning: key file '%s' is readable by others (chmod 600)\n", path);
    close(fd);
    if (n != (ssize_t)sizeof master || more != 0) {
        sodium_memzero(master, sizeof master);
        snprintf(err, errlen, "the key file '%s' is not a sarye key (%d bytes expected)", path, (int)sizeof master);
        return -1;
    }
    derive(master, ks);
    sodium_memzero(master, sizeof master);
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char tmp[1024];
    str_copy(tmp, sizeof tmp, path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int keys_create(const char *path, keyset *ks, char *err, size_t errlen)
{
    unsigned char master[crypto_kdf_KEYBYTES];
    crypto_kdf_keygen(master);
    mode_t old = umask(077);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    umask(old);
    if (fd < 0 || write(fd, master, sizeof master) != (ssize_t)sizeof master || fsync(fd)) {
        snprintf(err, errlen, "cannot create the key file '%s': %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        sodium_memzero(master, sizeof master);
        return -1;
    }
    close(fd);
    fsync_dir_of(path);
    derive(master, ks);
    sodium_memzero(master, sizeof master);
    return 0;
}

int pii_load(const char *path, bool create, char *err, size_t errlen)
{
    keyset ks;
    bool missing = false;
    int rc = keys_read(path, &ks, &missing, err, errlen);
    if (rc && missing && create) {
        if (keys_create(path, &ks, err, errlen)) return -1;
        rc = 1;
    } else if (rc) {
        return -1;
    }
    keys_set_current(&ks);
    keys_wipe(&ks);
    return rc;
}

void pii_shutdown(void) { sodium_memzero(&CUR, sizeof CUR); }

const char *pii_key_id(void) { return CUR.id; }

void pii_rrn_mask(const char *digits, char out[16]) { snprintf(out, 16, "%.6s-%c******", digits, digits[6]); }

void keys_rrn_index(const keyset *ks, const char *digits, char out[65])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(mac, (const unsigned char *)digits, strlen(digits), ks->index);
    keys_hex(mac, sizeof mac, out);
}

void pii_rrn_index(const char *digits, char out[SHA256_HEX]) { keys_rrn_index(&CUR, digits, out); }

#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define ABYTES crypto_aead_xchacha20poly1305_ietf_ABYTES

int keys_rrn_seal(const keyset *ks, const char *digits, const char *person_id, char *out, size_t outlen)
{
    unsigned char buf[NONCE + 13 + ABYTES];
    unsigned char *nonce = buf, *ct = buf + NONCE;
    unsigned long long ctlen = 0;
    if (!ks->ready || strlen(digits) != 13) return -1;
    randombytes_buf(nonce, NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ctlen, (const unsigned char *)digits, 13,
                                               (const unsigned char *)person_id, strlen(person_id), NULL, nonce,
                                               ks->seal);
    if (sodium_base64_ENCODED_LEN(sizeof buf, sodium_base64_VARIANT_URLSAFE_NO_PADDING) > outlen) return -1;
    sodium_bin2base64(out, outlen, buf, NONCE + (size_t)ctlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return 0;
}

int pii_rrn_seal(const char *digits, const char *person_id, char *out, size_t outlen)
{
    return keys_rrn_seal(&CUR, digits, person_id, out, outlen);
}

int keys_rrn_open(const keyset *ks, const char *sealed, const char *person_id, char digits[14])
{
    unsigned char buf[128];
    size_t n = 0;
    if (!ks->ready || sodium_base642bin(buf, sizeof buf, sealed, strlen(sealed), NULL, &n, NULL,
                                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
        n < NONCE + ABYTES)
        return -1;
    unsigned long long len = 0;
    unsigned char plain[64];
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &len, NULL, buf + NONCE, n - NONCE,
                                                   (const unsigned char *)person_id, strlen(person_id), buf,
                                                   ks->seal) ||
        len != 13)
        return -1;
    memcpy(digits, plain, 13);
    digits[13] = 0;
    sodium_memzero(plain, sizeof plain);
    return 0;
}

int pii_rrn_open(const char *sealed, const char *person_id, char digits[14])
{
    return keys_rrn_open(&CUR, sealed, person_id, digits);
}

void pii_request_hash(const void *data, size_t len, char out[SHA256_HEX])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, data, len, CUR.idem_hash, sizeof CUR.idem_hash);
    keys_hex(h, sizeof h, out);
}

/* ---- sealing any text ---- */
#define SEAL_PREFIX "s1."

bool keys_is_sealed(const char *text) { return text && !strncmp(text, SEAL_PREFIX, 3); }

char *keys_seal(const unsigned char key[KEY_BYTES], const void *ad, size_t adlen, const void *plain, size_t len)
{
    size_t raw = NONCE + len + ABYTES;
    unsigned char *buf = malloc(raw);
    size_t b64 = sodium_base64_ENCODED_LEN(raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(3 + b64);
    if (!buf || !out) {
        free(buf);
        free(out);
        return NULL;
    }
    randombytes_buf(buf, NONCE);
    unsigned long long ctlen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(buf + NONCE, &ctlen, plain, len, ad, adlen, NULL, buf, key);
    memcpy(out, SEAL_PREFIX, 3);
    sodium_bin2base64(out + 3, b64, buf, NONCE + (size_t)ctlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    free(buf);
    return out;
}

unsigned char *keys_open(const unsigned char key[KEY_BYTES], const void *ad, size_t adlen, const char *sealed,
                         size_t *len)
{
    if (!keys_is_sealed(sealed)) return NULL;
    size_t tlen = strlen(sealed + 3), n = 0;
    unsigned char *buf = malloc(tlen + 1);
    if (!buf) return NULL;
    if (sodium_base642bin(buf, tlen + 1, sealed + 3, tlen, NULL, &n, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
        n < NONCE + ABYTES) {
        free(buf);
        return NULL;
    }
    unsigned char *plain = malloc(n - NONCE - ABYTES + 1);
    unsigned long long plen = 0;
    if (!plain || crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, buf + NONCE, n - NONCE, ad, adlen,
                                                             buf, key)) {
        free(buf);
        free(plain);
        return NULL;
    }
    free(buf);
    plain[plen] = 0;
    *len = (size_t)plen;
    return plain;
}

/* ---- signatures ---- */
void keys_sign(const keyset *ks, const void *msg, size_t len, char out[SIG_HEX])
{
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, msg, len, ks->sign_sk);
    keys_hex(sig, sizeof sig, out);
}

bool keys_signature_ok(const unsigned char pk[crypto_sign_PUBLICKEYBYTES], const void *msg, size_t len,
                       const char *sig_hex)
{
    unsigned char sig[crypto_sign_BYTES];
    if (!keys_unhex(sig_hex, sig, sizeof sig)) return false;
    return crypto_sign_verify_detached(sig, msg, len, pk) == 0;
}
