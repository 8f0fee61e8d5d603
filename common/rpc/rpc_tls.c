/* rpc_tls.c - TLS material for the RPC layer and the HTTP server: reads the
 * certificate, private key and CA files named on a command line, refuses
 * bad ones with a message that names the flag and the file, and keeps the
 * PEM texts that gRPC core (and libmicrohttpd) take.
 *
 * The files are checked here, before any server or channel exists, so that
 * a wrong file stops start-up with a reason instead of surfacing later as
 * failed handshakes. GnuTLS (already loaded by libmicrohttpd) parses the
 * PEM and checks that the key belongs to the certificate; gRPC core uses its
 * own TLS library for the connections. File contents never appear in a
 * message.
 */
#include "rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "../util/xalloc.h"

/* Reads a whole PEM file (at most RPC_TLS_FILE_MAX bytes) into a new
 * NUL-terminated string. A secret (a private key) must not be readable by
 * others, nor by its group unless root owns it (a Kubernetes Secret volume
 * mounts files root-owned, group fsGroup, mode 0440: the only way a
 * non-root container reads one). */
static int read_pem(const char *flag, const char *path, bool secret, char **out,
                    char err[SAT_ERR_LEN])
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sat_errf(err, sat_err_from_errno(errno), "%s %s: %s", flag, path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = sat_errf(err, SAT_EIO, "%s %s: %s", flag, path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = sat_errf(err, SAT_EINVAL, "%s %s: not a regular file", flag, path);
    } else if (st.st_size <= 0 || (uint64_t)st.st_size > RPC_TLS_FILE_MAX) {
        rc = sat_errf(err, SAT_EINVAL, "%s %s: %s (PEM files are 1..%u bytes)", flag, path,
                      st.st_size <= 0 ? "empty" : "too large", RPC_TLS_FILE_MAX);
    } else if (secret && ((st.st_mode & S_IRWXO) || ((st.st_mode & S_IRWXG) && st.st_uid != 0))) {
        rc = sat_errf(err, SAT_EAUTH,
                      "%s %s: the private key is accessible by %s (mode %04o); "
                      "chmod 0600 it (0640 is allowed when root owns the file)",
                      flag, path, (st.st_mode & S_IRWXO) ? "other users" : "its group",
                      (unsigned)(st.st_mode & 07777));
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    size_t n = (size_t)st.st_size;
    char *buf = sat_malloc(n + 1);
    if (!buf) {
        close(fd);
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    if (got != n || strlen(buf) != n) {
        explicit_bzero(buf, n + 1);
        sat_free(buf);
        return sat_errf(err, SAT_EFORMAT, "%s %s: %s", flag, path,
                        got != n ? "short read" : "binary data (expected PEM text)");
    }
    *out = buf;
    return 0;
}

static gnutls_datum_t datum(const char *pem)
{
    return (gnutls_datum_t){.data = (unsigned char *)pem, .size = (unsigned)strlen(pem)};
}

/* Counts the certificates of a PEM text; 0 when there is none or one
 * does not parse (*why then says why). */
static unsigned count_certs(const char *pem, const char **why)
{
    gnutls_x509_crt_t *crts = NULL;
    unsigned n = 0;
    gnutls_datum_t d = datum(pem);
    int g = gnutls_x509_crt_list_import2(&crts, &n, &d, GNUTLS_X509_FMT_PEM, 0);
    if (g < 0) {
        *why = g == GNUTLS_E_NO_CERTIFICATE_FOUND ? "no PEM certificate in it" : gnutls_strerror(g);
        return 0;
    }
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    if (n == 0)
        *why = "no PEM certificate in it";
    return n;
}

/* The key must parse, be unencrypted and belong to the first certificate
 * of the chain. */
static int check_pair(const struct rpc_tls_files *f, const struct rpc_tls *t, char err[SAT_ERR_LEN])
{
    if (strstr(t->key, "ENCRYPTED"))
        return sat_errf(err, SAT_EINVAL,
                        "--tls-key %s: the key is encrypted; give an unencrypted key "
                        "(openssl pkey -in KEY -out KEY.plain)",
                        f->key);
    gnutls_x509_privkey_t k;
    if (gnutls_x509_privkey_init(&k) < 0)
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    gnutls_datum_t kd = datum(t->key);
    int g = gnutls_x509_privkey_import2(k, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_x509_privkey_deinit(k);
    if (g < 0)
        return sat_errf(err, SAT_EFORMAT, "--tls-key %s: not a PEM private key (%s)", f->key,
                        gnutls_strerror(g));
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0)
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    gnutls_datum_t cd = datum(t->cert);
    g = gnutls_certificate_set_x509_key_mem2(cred, &cd, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_certificate_free_credentials(cred);
    if (g == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
        return sat_errf(err, SAT_EINVAL,
                        "--tls-key %s does not match the certificate in --tls-cert %s", f->key,
                        f->cert);
    if (g < 0)
        return sat_errf(err, SAT_EFORMAT, "--tls-cert %s with --tls-key %s: %s", f->cert, f->key,
                        gnutls_strerror(g));
    return 0;
}

bool rpc_tls_files_set(struct rpc_tls_files *f, const char *name, const char *path)
{
    if (strcmp(name, "tls-cert") == 0)
        f->cert = path;
    else if (strcmp(name, "tls-key") == 0)
        f->key = path;
    else if (strcmp(name, "tls-ca") == 0 || strcmp(name, "tls-client-ca") == 0)
        f->ca = path;
    else
        return false;
    return true;
}

int rpc_tls_load(struct rpc_tls *t, const struct rpc_tls_files *f, char err[SAT_ERR_LEN])
{
    memset(t, 0, sizeof *t);
    const char *ca_flag = f->server ? "--tls-client-ca" : "--tls-ca";
    if (f->cert && !f->key)
        return sat_errf(err, SAT_EINVAL, "--tls-cert %s needs --tls-key", f->cert);
    if (f->key && !f->cert)
        return sat_errf(err, SAT_EINVAL, "--tls-key %s needs --tls-cert", f->key);
    if (f->server && f->ca && !f->cert)
        return sat_errf(err, SAT_EINVAL, "%s %s needs --tls-cert and --tls-key", ca_flag, f->ca);
    if (!f->server && f->cert && !f->ca)
        return sat_errf(err, SAT_EINVAL, "--tls-cert %s needs --tls-ca (env SATURN_TLS_CA)",
                        f->cert);
    int rc = 0;
    const char *why = NULL;
    if (f->cert)
        rc = read_pem("--tls-cert", f->cert, false, &t->cert, err);
    if (rc == 0 && f->key)
        rc = read_pem("--tls-key", f->key, true, &t->key, err);
    if (rc == 0 && f->ca)
        rc = read_pem(ca_flag, f->ca, false, &t->ca, err);
    if (rc == 0 && t->cert && count_certs(t->cert, &why) == 0)
        rc = sat_errf(err, SAT_EFORMAT, "--tls-cert %s: %s", f->cert, why);
    if (rc == 0 && t->ca && count_certs(t->ca, &why) == 0)
        rc = sat_errf(err, SAT_EFORMAT, "%s %s: %s", ca_flag, f->ca, why);
    if (rc == 0 && t->cert)
        rc = check_pair(f, t, err);
    if (rc != 0)
        rpc_tls_free(t);
    return rc;
}

bool rpc_tls_on(const struct rpc_tls *t)
{
    return t && (t->cert || t->ca);
}

void rpc_tls_free(struct rpc_tls *t)
{
    if (!t)
        return;
    if (t->key)
        explicit_bzero(t->key, strlen(t->key));
    sat_free(t->key);
    sat_free(t->cert);
    sat_free(t->ca);
    memset(t, 0, sizeof *t);
}
