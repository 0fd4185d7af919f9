/* Client authentication (RFC 6120 §6) on GNU SASL: the server side of
 * SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN, against stored SCRAM keys. The
 * password itself is never stored: PLAIN is checked by deriving the same
 * keys from the offered password and comparing. */
#ifndef FG_SASL_H
#define FG_SASL_H

#include <stdbool.h>
#include <stddef.h>

#define SASL_SALT_MAX 32

/* What is stored for an account (RFC 5802 §3): per hash, StoredKey and
 * ServerKey, with one salt and iteration count. */
struct scram_creds {
	unsigned iterations;
	unsigned char salt[SASL_SALT_MAX];
	size_t salt_len;
	unsigned char stored_sha1[20], server_sha1[20];
	unsigned char stored_sha256[32], server_sha256[32];
};

/* Fresh credentials for password: a random 16-byte salt, PBKDF2 with
 * `iterations` (at least 4096; FG_INVAL below). FG_OK, FG_INVAL, FG_ERR.
 * The password is SASLprep'ed first, as SCRAM clients do; an empty one, or
 * one SASLprep refuses, and more than 10,000,000 iterations are FG_INVAL. */
int sasl_creds_from_password(const char *password, unsigned iterations, struct scram_creds *out);
/* Whether password matches (constant-time comparison of the SHA-256 keys). */
bool sasl_check_password(const struct scram_creds *c, const char *password);
/* One line of text for the store: "scram1:ITER:SALT:SK1:SV1:SK256:SV256"
 * (base64 fields). Returns a malloc'ed string or NULL (out of memory). */
char *sasl_creds_encode(const struct scram_creds *c);
/* The reverse; FG_INVAL for anything malformed (*out is then zeroed). */
int sasl_creds_decode(const char *s, struct scram_creds *out);

/* The mechanisms offered, in preference order, as a NULL-terminated list:
 * PLAIN only when the stream is secure (TLS). */
const char *const *sasl_mechanisms(bool secure);

/* Looks up the credentials of the account named by the SASL
 * authentication identity (as the client sent it, e.g. "alice"). FG_OK
 * and *out filled, or FG_NOTFOUND. Called at most once per exchange, from
 * inside sasl_server_step(), on the caller's thread. */
typedef int (*sasl_lookup_fn)(void *ud, const char *authcid, struct scram_creds *out);

struct sasl_server;

enum sasl_result { SASL_CONTINUE, SASL_SUCCESS, SASL_FAILURE };

/* Starts a server exchange for mech on a stream that is (or not) secure.
 * NULL with *failure set ("invalid-mechanism", "encryption-required" for
 * PLAIN on a plaintext stream, "temporary-auth-failure" when out of
 * memory). */
struct sasl_server *sasl_server_new(const char *mech, bool secure, sasl_lookup_fn lookup, void *ud,
				    const char **failure);
/* One step: in is the base64 text of <auth/> or <response/> ("" or "="
 * for none). On SASL_CONTINUE *out is the base64 challenge (malloc'ed);
 * on SASL_SUCCESS *out is the base64 additional data for <success/> (may
 * be ""), and sasl_server_authcid() names the account; on SASL_FAILURE
 * *failure is the RFC 6120 §6.5 condition ("not-authorized",
 * "malformed-request", "invalid-authzid", "incorrect-encoding") and *out
 * is NULL. An unknown account fails exactly like a wrong password, at the
 * same step.
 * An empty challenge comes back as "" (send an empty <challenge/>). SCRAM's
 * server-final-message ("v=...") is the <success/> data, never a separate
 * challenge; PLAIN's is "". Once SASL_SUCCESS or SASL_FAILURE has been
 * returned, further steps fail with "malformed-request". "invalid-authzid"
 * is never returned here: judging the authzid is the caller's job; a failed
 * lookup (not FG_NOTFOUND) or unusable stored credentials give
 * "temporary-auth-failure". */
enum sasl_result sasl_server_step(struct sasl_server *s, const char *in, char **out,
				  const char **failure);
/* The authentication identity after success (the client's authcid,
 * SASLprep'ed, exactly as it was passed to the lookup); NULL before. */
const char *sasl_server_authcid(const struct sasl_server *s);
/* The authorization identity the client asked for, or NULL/"" for none. */
const char *sasl_server_authzid(const struct sasl_server *s);
void sasl_server_free(struct sasl_server **s);

/* Once per process, before the first sasl_server_new (FG_OK / FG_ERR). */
int sasl_global_init(void);
void sasl_global_done(void);
/* The iteration count unknown accounts show in SCRAM and cost in PLAIN:
 * [users] scram_iterations, what new passwords get (default 4096).
 * FG_INVAL outside 4096..10000000. */
int sasl_set_fake_iterations(unsigned iterations);
/* PBKDF2 iterations computed so far in this process: the work logins
 * cost, the same for a wrong password and an unknown account. */
unsigned long long sasl_pbkdf2_iterations(void);

#endif
