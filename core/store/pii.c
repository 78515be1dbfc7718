/* pii.c: the master key file and the RRN seal and blind index. */
#include "store/pii.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_CONTEXT "sryindex"
#define SEAL_CONTEXT "sryseal_"

static struct {
    unsigned char index_key[crypto_auth_hmacsha256_KEYBYTES];
    unsigned char seal_key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    int ready;
} K;

int pii_init(const char *path, char *err, size_t errlen)
{
    unsigned char master[crypto_kdf_KEYBYTES];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        crypto_kdf_keygen(master);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, master, sizeof master) != (ssize_t)sizeof master || fsync(fd)) {
            snprintf(err, errlen, "cannot create the key file '%s': %s", path, strerror(errno));
            if (fd >= 0) close(fd);
            sodium_memzero(master, sizeof master);
            return -1;
        }
        close(fd);
    } else if (fd < 0) {
        snprintf(err, errlen, "cannot read the key file '%s': %s", path, strerror(errno));
        return -1;
    } else {
        struct stat st;
        ssize_t n = read(fd, master, sizeof master);
        if (fstat(fd, &st) == 0 && (st.st_mode & 077))
            fprintf(stderr, "sarye: warning: key file '%s' is readable by others (chmod 600)\n", path);
        close(fd);
        if (n != (ssize_t)sizeof master) {
            snprintf(err, errlen, "the key file '%s' is not a sarye key (%d bytes expected)", path,
                     (int)sizeof master);
            return -1;
        }
    }
    crypto_kdf_derive_from_key(K.index_key, sizeof K.index_key, 1, INDEX_CONTEXT, master);
    crypto_kdf_derive_from_key(K.seal_key, sizeof K.seal_key, 2, SEAL_CONTEXT, master);
    sodium_memzero(master, sizeof master);
    K.ready = 1;
    return 0;
}

void pii_shutdown(void) { sodium_memzero(&K, sizeof K); }

void pii_rrn_mask(const char *digits, char out[16]) { snprintf(out, 16, "%.6s-%c******", digits, digits[6]); }

void pii_rrn_index(const char *digits, char out[SHA256_HEX])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(mac, (const unsigned char *)digits, strlen(digits), K.index_key);
    sodium_bin2hex(out, SHA256_HEX, mac, sizeof mac);
}

int pii_rrn_seal(const char *digits, const char *person_id, char *out, size_t outlen)
{
    unsigned char buf[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + 13 + crypto_aead_xchacha20poly1305_ietf_ABYTES];
    unsigned char *nonce = buf, *ct = buf + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    unsigned long long ctlen = 0;
    if (!K.ready || strlen(digits) != 13) return -1;
    randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ctlen, (const unsigned char *)digits, 13,
                                               (const unsigned char *)person_id, strlen(person_id), NULL, nonce,
                                               K.seal_key);
    if (sodium_base64_ENCODED_LEN(sizeof buf, sodium_base64_VARIANT_URLSAFE_NO_PADDING) > outlen) return -1;
    sodium_bin2base64(out, outlen, buf, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + (size_t)ctlen,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return 0;
}

int pii_rrn_open(const char *sealed, const char *person_id, char digits[14])
{
    unsigned char buf[128];
    size_t n = 0;
    if (!K.ready || sodium_base642bin(buf, sizeof buf, sealed, strlen(sealed), NULL, &n, NULL,
                                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
        n < crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)
        return -1;
    unsigned long long len = 0;
    unsigned char plain[64];
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &len, NULL, buf + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                                   n - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                                   (const unsigned char *)person_id, strlen(person_id), buf,
                                                   K.seal_key) ||
        len != 13)
        return -1;
    memcpy(digits, plain, 13);
    digits[13] = 0;
    sodium_memzero(plain, sizeof plain);
    return 0;
}
