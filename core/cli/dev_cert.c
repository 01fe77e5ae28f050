/* `loom dev-cert [DIR]`: a self-signed certificate for development, so that
 * `curl https://localhost:8443/` works in one step (with --cacert). */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAYS 90

static const char dev_cert_usage[] =
    "usage: loom dev-cert [--force] [DIR]\n"
    "\n"
    "Writes a self-signed certificate for localhost, 127.0.0.1 and ::1 (ECDSA P-256,\n"
    "valid 90 days) to DIR/cert.pem and its key to DIR/key.pem (mode 0600), and\n"
    "prints the config that serves HTTPS with it. DIR defaults to ./loom-dev-cert.\n"
    "Existing files are kept unless --force is given. For development only:\n"
    "browsers and clients trust it only when told to (curl --cacert DIR/cert.pem).\n";

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = e && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok;
}

/* Writes with `write` into a new file at `path` with `mode`. */
static int write_pem(const char *path, int mode, int force, X509 *x, EVP_PKEY *k)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), mode);
    if (fd < 0) {
        fprintf(stderr, "loom dev-cert: %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (--force replaces it)" : "");
        return -1;
    }
    fchmod(fd, (mode_t)mode);
    FILE *f = fdopen(fd, "w");
    int ok = f && (x ? PEM_write_X509(f, x)
                     : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)) == 1;
    if (f) ok &= fclose(f) == 0;
    if (!ok) fprintf(stderr, "loom dev-cert: %s: cannot write\n", path);
    return ok ? 0 : -1;
}

int loom__cmd_dev_cert(int argc, char **argv)
{
    const char *dir = "loom-dev-cert";
    int force = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(dev_cert_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--force") == 0)
            force = 1;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "loom dev-cert: unknown option '%s' (see loom dev-cert --help)\n",
                    argv[i]);
            return 2;
        } else
            dir = argv[i];
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "loom dev-cert: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char cert[4096], key[4096];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    unsigned char serial[16];
    int ok = k && x && RAND_bytes(serial, sizeof serial) == 1;
    if (ok) {
        serial[0] &= 0x7f; /* a positive serial number */
        BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
        ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
        BN_free(bn);
    }
    ok = ok && X509_set_version(x, 2) && X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
         X509_gmtime_adj(X509_getm_notAfter(x), (long)DAYS * 86400) && X509_set_pubkey(x, k) &&
         X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                    (const unsigned char *)"localhost", -1, -1, 0) &&
         X509_set_issuer_name(x, X509_get_subject_name(x)) &&
         add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") &&
         add_ext(x, NID_basic_constraints, "critical,CA:FALSE") &&
         add_ext(x, NID_ext_key_usage, "serverAuth") && X509_sign(x, k, EVP_sha256()) > 0;
    int rc = 1;
    if (!ok)
        fprintf(stderr, "loom dev-cert: OpenSSL could not make the certificate\n");
    else if (write_pem(key, 0600, force, NULL, k) == 0 &&
             write_pem(cert, 0644, force, x, NULL) == 0)
        rc = 0;
    X509_free(x);
    EVP_PKEY_free(k);
    if (rc) return rc;
    printf("wrote %s and %s (self-signed for localhost, 127.0.0.1 and ::1; %d days)\n\n"
           "serve HTTPS with it:\n"
           "  loom serve --listen 127.0.0.1:8443:tls --tls-cert %s --tls-key %s\n"
           "or in a config file:\n"
           "  {\"listen\": [{\"host\": \"127.0.0.1\", \"port\": 8443, \"tls\": true}],\n"
           "   \"tls\": {\"cert\": \"%s\", \"key\": \"%s\"}}\n"
           "then:\n"
           "  curl --cacert %s https://localhost:8443/\n",
           cert, key, DAYS, cert, key, cert, key, cert);
    return 0;
}
