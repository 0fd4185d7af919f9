/* Server Dialback core: keys, elements, per-stream bookkeeping. No I/O. */
#include "dialback.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "fg.h"
#include "jid.h"

#define MAC_LEN 32 /* SHA-256 */

/* ---- keys ---- */

static void hex_lower(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

/* The raw MAC. Intermediate secret material is wiped before returning, so
 * it does not linger on the stack for a later bug to leak. */
static int key_raw(const char *secret, const char *receiving, const char *originating,
		   const char *stream_id, unsigned char mac[MAC_LEN])
{
	unsigned char dig[MAC_LEN];
	char hexkey[2 * MAC_LEN + 1];
	char digest_name[] = "SHA256";
	EVP_MAC *alg = NULL;
	EVP_MAC_CTX *ctx = NULL;
	size_t maclen = 0;
	int rc = FG_ERR;

	if (!secret || !receiving || !originating || !stream_id)
		return FG_INVAL;
	if (secret[0] == '\0')
		return FG_INVAL;
	if (!EVP_Digest(secret, strlen(secret), dig, NULL, EVP_sha256(), NULL))
		goto out;
	hex_lower(dig, sizeof(dig), hexkey);

	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
		OSSL_PARAM_construct_end(),
	};
	alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
	if (!ctx)
		goto out;
	/* Fed in pieces: the space separators keep "a.b c" from colliding
	 * with "a.bc" (XEP-0185 note 5), and no buffer has to be sized. */
	if (!EVP_MAC_init(ctx, (const unsigned char *)hexkey, 2 * MAC_LEN, params) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)receiving, strlen(receiving)) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)" ", 1) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)originating, strlen(originating)) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)" ", 1) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)stream_id, strlen(stream_id)) ||
	    !EVP_MAC_final(ctx, mac, &maclen, MAC_LEN) || maclen != MAC_LEN)
		goto out;
	rc = FG_OK;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(alg);
	OPENSSL_cleanse(dig, sizeof(dig));
	OPENSSL_cleanse(hexkey, sizeof(hexkey));
	if (rc != FG_OK)
		OPENSSL_cleanse(mac, MAC_LEN);
	return rc;
}

int dialback_key(const char *secret, const char *receiving, const char *originating,
		 const char *stream_id, char out_hex[DIALBACK_KEY_HEX_LEN + 1])
{
	unsigned char mac[MAC_LEN];

	if (!out_hex)
		return FG_INVAL;
	out_hex[0] = '\0';
	int rc = key_raw(secret, receiving, originating, stream_id, mac);
	if (rc != FG_OK)
		return rc;
	hex_lower(mac, sizeof(mac), out_hex);
	OPENSSL_cleanse(mac, sizeof(mac));
	return FG_OK;
}

/* 1 when x < 0, without a branch (x is a small int, never INT_MIN). */
static unsigned ct_neg(int x)
{
	return (unsigned)x >> (sizeof(unsigned) * 8 - 1);
}

/* Value of one hex digit; *bad gets 1 if c is none. Branch-free and
 * table-free, so neither timing nor cache lines reveal the character. */
static unsigned ct_hexval(unsigned char c, unsigned *bad)
{
	int d = (int)c - '0';
	int a = (int)(c | 0x20) - 'a'; /* folds A-F onto a-f; no other byte lands there */
	unsigned is_d = 1u ^ (ct_neg(d) | ct_neg(9 - d));
	unsigned is_a = 1u ^ (ct_neg(a) | ct_neg(5 - a));
	*bad |= 1u ^ (is_d | is_a);
	return ((unsigned)d & (0u - is_d)) | ((unsigned)(a + 10) & (0u - is_a));
}

bool dialback_key_check(const char *secret, const char *receiving, const char *originating,
			const char *stream_id, const char *key)
{
	unsigned char want[MAC_LEN], got[MAC_LEN];
	unsigned bad = 0;

	/* The length is public (the peer sent it); only content is secret. */
	if (!key || strlen(key) != DIALBACK_KEY_HEX_LEN)
		return false;
	if (key_raw(secret, receiving, originating, stream_id, want) != FG_OK)
		return false;
	for (size_t i = 0; i < MAC_LEN; i++) {
		unsigned hi = ct_hexval((unsigned char)key[2 * i], &bad);
		unsigned lo = ct_hexval((unsigned char)key[2 * i + 1], &bad);
		got[i] = (unsigned char)((hi << 4) | lo);
	}
	/* Malformed and wrong keys take the same path to the same answer. */
	unsigned diff = (unsigned)CRYPTO_memcmp(want, got, MAC_LEN) != 0;
	OPENSSL_cleanse(want, sizeof(want));
	OPENSSL_cleanse(got, sizeof(got));
	return (bad | diff) == 0;
}

/* ---- conditions ---- */

/* Error types as RFC 6120 §8.3.3 assigns them; remote-connection-failed is
 * XEP-0220's own and permanent for this attempt. */
static const struct {
	const char *name;
	const char *type;
} conds[] = {
	[DB_COND_NONE] = {NULL, NULL},
	[DB_COND_ITEM_NOT_FOUND] = {"item-not-found", "cancel"},
	[DB_COND_REMOTE_CONNECTION_FAILED] = {"remote-connection-failed", "cancel"},
	[DB_COND_REMOTE_SERVER_NOT_FOUND] = {"remote-server-not-found", "cancel"},
	[DB_COND_REMOTE_SERVER_TIMEOUT] = {"remote-server-timeout", "wait"},
	[DB_COND_POLICY_VIOLATION] = {"policy-violation", "modify"},
	[DB_COND_NOT_AUTHORIZED] = {"not-authorized", "auth"},
	[DB_COND_FORBIDDEN] = {"forbidden", "auth"},
	[DB_COND_NOT_ACCEPTABLE] = {"not-acceptable", "modify"},
	[DB_COND_INTERNAL_SERVER_ERROR] = {"internal-server-error", "cancel"},
	[DB_COND_OTHER] = {"undefined-condition", "cancel"},
};

const char *dialback_cond_name(enum db_cond c)
{
	if ((unsigned)c >= FG_ARRAY_LEN(conds))
		return NULL;
	return conds[c].name;
}

const char *dialback_cond_type(enum db_cond c)
{
	if ((unsigned)c >= FG_ARRAY_LEN(conds))
		return NULL;
	return conds[c].type;
}

static enum db_cond cond_from_name(const char *name)
{
	for (size_t i = 1; i < FG_ARRAY_LEN(conds); i++)
		if (strcmp(conds[i].name, name) == 0)
			return (enum db_cond)i;
	return DB_COND_OTHER;
}

/* ---- builders ---- */

static struct xml_node *build(enum db_elem elem, const char *from, const char *to, const char *id,
			      const char *type, const char *key)
{
	if (!from || !to || (elem == DB_VERIFY && !id))
		return NULL;
	struct xml_node *el = xml_new(XML_NS_DIALBACK, elem == DB_VERIFY ? "verify" : "result");
	if (!el)
		return NULL;
	if (xml_set_attr(el, NULL, "from", from) != FG_OK ||
	    xml_set_attr(el, NULL, "to", to) != FG_OK)
		goto fail;
	if (elem == DB_VERIFY && xml_set_attr(el, NULL, "id", id) != FG_OK)
		goto fail;
	if (type && xml_set_attr(el, NULL, "type", type) != FG_OK)
		goto fail;
	if (key && xml_add_text(el, key, strlen(key)) != FG_OK)
		goto fail;
	return el;
fail:
	xml_free(&el);
	return NULL;
}

struct xml_node *dialback_result_request(const char *from, const char *to, const char *key)
{
	if (!key || key[0] == '\0')
		return NULL;
	return build(DB_RESULT, from, to, NULL, NULL, key);
}

struct xml_node *dialback_result_answer(const char *from, const char *to, bool valid)
{
	return build(DB_RESULT, from, to, NULL, valid ? "valid" : "invalid", NULL);
}

struct xml_node *dialback_verify_request(const char *from, const char *to, const char *id,
					 const char *key)
{
	if (!key || key[0] == '\0')
		return NULL;
	return build(DB_VERIFY, from, to, id, NULL, key);
}

struct xml_node *dialback_verify_answer(const char *from, const char *to, const char *id,
					bool valid)
{
	return build(DB_VERIFY, from, to, id, valid ? "valid" : "invalid", NULL);
}

struct xml_node *dialback_error(enum db_elem elem, const char *from, const char *to, const char *id,
				enum db_cond cond)
{
	if (cond == DB_COND_NONE || (unsigned)cond >= FG_ARRAY_LEN(conds))
		return NULL;
	struct xml_node *el = build(elem, from, to, id, "error", NULL);
	if (!el)
		return NULL;
	/* <error/> is in jabber:server, the stream's default namespace, as
	 * XEP-0220 §2.4 has it: it serializes without a declaration there. */
	struct xml_node *err = xml_add_child(el, XML_NS_SERVER, "error");
	if (!err || xml_set_attr(err, NULL, "type", conds[cond].type) != FG_OK ||
	    !xml_add_child(err, XML_NS_STANZAS_ERR, conds[cond].name)) {
		xml_free(&el);
		return NULL;
	}
	return el;
}

struct xml_node *dialback_error_why(enum db_elem elem, const char *from, const char *to,
				    const char *id, enum db_cond cond, const char *why)
{
	struct xml_node *el = dialback_error(elem, from, to, id, cond);
	struct xml_node *err = el ? xml_child(el, XML_NS_SERVER, "error") : NULL;
	assert(!el || err);
	struct xml_node *t = err ? xml_add_child(err, XML_NS_STANZAS_ERR, "text") : NULL;
	if (el && (!t || xml_set_attr(t, XML_NS_XML, "lang", "en") != FG_OK ||
		   xml_add_text(t, why, strlen(why)) != FG_OK))
		xml_free(&el);
	return el;
}

/* ---- parser ---- */

static const char *const perr_str[] = {
	[DB_PERR_OK] = "ok",
	[DB_PERR_NOT_DIALBACK] = "not a dialback element",
	[DB_PERR_BAD_TYPE] = "unknown 'type'",
	[DB_PERR_NO_FROM] = "missing 'from'",
	[DB_PERR_BAD_FROM] = "'from' is not a valid domain",
	[DB_PERR_NO_TO] = "missing 'to'",
	[DB_PERR_BAD_TO] = "'to' is not a valid domain",
	[DB_PERR_NO_ID] = "missing 'id'",
	[DB_PERR_BAD_ID] = "malformed 'id'",
	[DB_PERR_NO_KEY] = "missing key",
	[DB_PERR_BAD_KEY] = "malformed key",
	[DB_PERR_NOMEM] = "out of memory",
};

const char *dialback_perr_str(enum db_perr e)
{
	if ((unsigned)e >= FG_ARRAY_LEN(perr_str) || !perr_str[e])
		return "unknown error";
	return perr_str[e];
}

void dialback_msg_clear(struct db_msg *m)
{
	if (!m)
		return;
	free(m->from);
	free(m->to);
	free(m->id);
	free(m->key);
	memset(m, 0, sizeof(*m));
}

static bool is_xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Prepares a domain attribute. Distinguishes absence from invalidity so
 * the caller can tell a peer which one it got wrong. */
static enum db_perr get_domain(const struct xml_node *el, const char *name, char **out,
			       enum db_perr missing, enum db_perr bad)
{
	const char *v = xml_attr(el, name);
	if (!v)
		return missing;
	enum jid_err je = jid_domain_prep(v, strlen(v), out);
	if (je == JID_ERR_NOMEM)
		return DB_PERR_NOMEM;
	return je == JID_OK ? DB_PERR_OK : bad;
}

/* Stream ids are NMTOKENs in the schema; we only insist on what keeps the
 * id usable as a key input and a lookup key: bounded, no spaces or
 * control characters. */
static bool id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > DIALBACK_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];
		if (c <= 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* The key is the element's character data, which peers indent freely.
 * Direct text children are taken as one string, with the white space
 * around it dropped; the length is bounded before anything is copied. */
static enum db_perr get_key(const struct xml_node *el, char **out)
{
	size_t total = 0, first = SIZE_MAX, last = 0;

	for (const struct xml_node *c = el->children; c; c = c->next) {
		if (c->type != XML_TEXT || !c->text)
			continue;
		for (size_t i = 0; i < c->text_len; i++, total++)
			if (!is_xml_space(c->text[i])) {
				if (first == SIZE_MAX)
					first = total;
				last = total;
			}
	}
	if (first == SIZE_MAX)
		return DB_PERR_NO_KEY;
	size_t len = last - first + 1;
	if (len > DIALBACK_KEY_MAX)
		return DB_PERR_BAD_KEY;
	char *k = malloc(len + 1);
	if (!k)
		return DB_PERR_NOMEM;
	size_t pos = 0, n = 0;
	for (const struct xml_node *c = el->children; c; c = c->next) {
		if (c->type != XML_TEXT || !c->text)
			continue;
		for (size_t i = 0; i < c->text_len; i++, pos++)
			if (pos >= first && pos <= last)
				k[n++] = c->text[i];
	}
	k[n] = '\0';
	/* Printable ASCII only: keys are hex or base64 in practice, and a
	 * key we relay in db:verify must reach the peer byte for byte. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] <= 0x20 || (unsigned char)k[i] >= 0x7f) {
			free(k);
			return DB_PERR_BAD_KEY;
		}
	*out = k;
	return DB_PERR_OK;
}

/* The first stanza error condition inside <error/>. The namespace of
 * <error/> itself is not checked: peers differ, and the condition is only
 * used to explain a failure. */
static enum db_cond get_cond(const struct xml_node *el)
{
	for (const struct xml_node *e = xml_first_element(el); e; e = xml_next_element(e)) {
		if (!e->name || strcmp(e->name, "error") != 0)
			continue;
		for (const struct xml_node *c = xml_first_element(e); c; c = xml_next_element(c)) {
			if (!c->ns || !c->name || strcmp(c->ns, XML_NS_STANZAS_ERR) != 0 ||
			    strcmp(c->name, "text") == 0)
				continue;
			return cond_from_name(c->name);
		}
		break;
	}
	return DB_COND_OTHER;
}

enum db_perr dialback_parse(const struct xml_node *el, struct db_msg *out)
{
	enum db_perr rc;

	if (!out)
		return DB_PERR_NOT_DIALBACK;
	memset(out, 0, sizeof(*out));
	if (!el || el->type != XML_ELEMENT || !el->ns || !el->name ||
	    strcmp(el->ns, XML_NS_DIALBACK) != 0)
		return DB_PERR_NOT_DIALBACK;
	if (strcmp(el->name, "result") == 0)
		out->elem = DB_RESULT;
	else if (strcmp(el->name, "verify") == 0)
		out->elem = DB_VERIFY;
	else
		return DB_PERR_NOT_DIALBACK;

	const char *type = xml_attr(el, "type");
	if (!type)
		out->type = DB_REQUEST;
	else if (strcmp(type, "valid") == 0)
		out->type = DB_VALID;
	else if (strcmp(type, "invalid") == 0)
		out->type = DB_INVALID;
	else if (strcmp(type, "error") == 0)
		out->type = DB_ERROR;
	else
		return DB_PERR_BAD_TYPE;

	rc = get_domain(el, "from", &out->from, DB_PERR_NO_FROM, DB_PERR_BAD_FROM);
	if (rc == DB_PERR_OK)
		rc = get_domain(el, "to", &out->to, DB_PERR_NO_TO, DB_PERR_BAD_TO);
	if (rc == DB_PERR_OK && out->elem == DB_VERIFY) {
		const char *id = xml_attr(el, "id");
		if (!id)
			rc = DB_PERR_NO_ID;
		else if (!id_ok(id))
			rc = DB_PERR_BAD_ID;
		else if (!(out->id = strdup(id)))
			rc = DB_PERR_NOMEM;
	}
	if (rc == DB_PERR_OK && out->type == DB_REQUEST)
		rc = get_key(el, &out->key);
	if (rc == DB_PERR_OK && out->type == DB_ERROR)
		out->cond = get_cond(el);
	if (rc != DB_PERR_OK)
		dialback_msg_clear(out);
	return rc;
}

/* ---- tracker ---- */

enum pstate { PS_PENDING, PS_VALID, PS_INVALID };

/* One domain pair (DB_RESULT) or one open db:verify (DB_VERIFY, always
 * pending). A linear table: a stream holds a handful of pairs, and the caps
 * bound the worst case. */
struct entry {
	enum db_elem elem;
	enum pstate state;
	char *local;
	char *remote;
	char *id; /* DB_VERIFY only */
};

struct db_tracker {
	enum db_role role;
	size_t max_pending;
	size_t max_pairs;
	size_t pending;
	size_t n, cap;
	struct entry *e;
};

struct db_tracker *dialback_tracker_new(enum db_role role, const struct db_tracker_limits *lim)
{
	struct db_tracker *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->role = role;
	t->max_pending = lim && lim->max_pending ? lim->max_pending : DIALBACK_MAX_PENDING;
	t->max_pairs = lim && lim->max_pairs ? lim->max_pairs : DIALBACK_MAX_PAIRS;
	return t;
}

static void entry_free(struct entry *e)
{
	free(e->local);
	free(e->remote);
	free(e->id);
}

void dialback_tracker_free(struct db_tracker **t)
{
	if (!t || !*t)
		return;
	for (size_t i = 0; i < (*t)->n; i++)
		entry_free(&(*t)->e[i]);
	free((*t)->e);
	free(*t);
	*t = NULL;
}

static struct entry *find(const struct db_tracker *t, enum db_elem elem, const char *local,
			  const char *remote, const char *id)
{
	if (!local || !remote || (elem == DB_VERIFY && !id))
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		struct entry *e = &t->e[i];
		if (e->elem == elem && strcmp(e->local, local) == 0 &&
		    strcmp(e->remote, remote) == 0 && (elem != DB_VERIFY || strcmp(e->id, id) == 0))
			return e;
	}
	return NULL;
}

static void remove_entry(struct db_tracker *t, struct entry *e)
{
	if (e->state == PS_PENDING)
		t->pending--;
	entry_free(e);
	*e = t->e[--t->n];
}

static int add_entry(struct db_tracker *t, enum db_elem elem, const char *local, const char *remote,
		     const char *id)
{
	if (t->pending >= t->max_pending || t->n >= t->max_pairs)
		return FG_LIMIT;
	if (t->n == t->cap) {
		size_t ncap = t->cap ? 2 * t->cap : 4;
		struct entry *ne = realloc(t->e, ncap * sizeof(*ne));
		if (!ne)
			return FG_NOMEM;
		t->e = ne;
		t->cap = ncap;
	}
	struct entry e = {elem, PS_PENDING, strdup(local), strdup(remote), id ? strdup(id) : NULL};
	if (!e.local || !e.remote || (id && !e.id)) {
		entry_free(&e);
		return FG_NOMEM;
	}
	t->e[t->n++] = e;
	t->pending++;
	return FG_OK;
}

/* Shared by both roles: a request for (local, remote) goes out or comes in. */
static int open_pair(struct db_tracker *t, const char *local, const char *remote)
{
	struct entry *e = find(t, DB_RESULT, local, remote, NULL);
	if (!e)
		return add_entry(t, DB_RESULT, local, remote, NULL);
	switch (e->state) {
	case PS_PENDING: return FG_AGAIN;
	case PS_INVALID: return FG_INVAL;
	case PS_VALID: break;
	}
	if (t->pending >= t->max_pending)
		return FG_LIMIT;
	e->state = PS_PENDING;
	t->pending++;
	return FG_OK;
}

int dialback_tracker_request(struct db_tracker *t, const struct db_msg *m)
{
	if (!t || !m || t->role != DB_ROLE_IN || m->elem != DB_RESULT || m->type != DB_REQUEST ||
	    !m->to || !m->from)
		return FG_INVAL;
	return open_pair(t, m->to, m->from);
}

static int settle(struct db_tracker *t, struct entry *e, enum db_type outcome)
{
	if (!e || e->state != PS_PENDING)
		return FG_NOTFOUND;
	if (outcome == DB_ERROR) {
		remove_entry(t, e);
		return FG_OK;
	}
	e->state = outcome == DB_VALID ? PS_VALID : PS_INVALID;
	t->pending--;
	return FG_OK;
}

int dialback_tracker_settle(struct db_tracker *t, const char *local, const char *remote,
			    enum db_type outcome)
{
	if (!t || outcome == DB_REQUEST)
		return FG_INVAL;
	return settle(t, find(t, DB_RESULT, local, remote, NULL), outcome);
}

int dialback_tracker_sent(struct db_tracker *t, enum db_elem elem, const char *local,
			  const char *remote, const char *id)
{
	if (!t || t->role != DB_ROLE_OUT || !local || !remote)
		return FG_INVAL;
	if (elem == DB_RESULT)
		return open_pair(t, local, remote);
	if (!id)
		return FG_INVAL;
	if (find(t, DB_VERIFY, local, remote, id))
		return FG_AGAIN;
	return add_entry(t, DB_VERIFY, local, remote, id);
}

int dialback_tracker_answer(struct db_tracker *t, const struct db_msg *m)
{
	if (!t || !m || m->type == DB_REQUEST)
		return FG_INVAL;
	/* On a stream the peer opened we never asked anything, so no answer
	 * can be ours, even if it names a pair the peer itself asked for. */
	if (t->role != DB_ROLE_OUT)
		return FG_NOTFOUND;
	struct entry *e = find(t, m->elem, m->to, m->from, m->id);
	if (m->elem == DB_RESULT)
		return settle(t, e, m->type);
	if (!e)
		return FG_NOTFOUND;
	remove_entry(t, e);
	return FG_OK;
}

bool dialback_tracker_is_authorized(const struct db_tracker *t, const char *local,
				    const char *remote)
{
	if (!t)
		return false;
	const struct entry *e = find(t, DB_RESULT, local, remote, NULL);
	return e && e->state == PS_VALID;
}

size_t dialback_tracker_pending(const struct db_tracker *t)
{
	return t ? t->pending : 0;
}

void dialback_tracker_foreach_pending(const struct db_tracker *t, db_pending_fn fn, void *arg)
{
	if (!t || !fn)
		return;
	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].state == PS_PENDING)
			fn(arg, t->e[i].elem, t->e[i].local, t->e[i].remote, t->e[i].id);
}

/* ---- authoritative role ---- */

struct xml_node *dialback_authoritative(const char *secret, const struct db_msg *req,
					db_is_local_fn is_local, void *arg, enum db_type *verdict)
{
	enum db_type v;
	struct xml_node *ans;

	if (!req || req->elem != DB_VERIFY || req->type != DB_REQUEST || !req->from || !req->to ||
	    !req->id || !req->key)
		return NULL;
	/* from/to swap in the answer; the error keeps the unhosted domain in
	 * 'from' so that the receiving server can find its request. */
	if (!is_local || !is_local(arg, req->to)) {
		v = DB_ERROR;
		ans = dialback_error(DB_VERIFY, req->to, req->from, req->id,
				     DB_COND_ITEM_NOT_FOUND);
	} else {
		bool ok = dialback_key_check(secret, req->from, req->to, req->id, req->key);
		v = ok ? DB_VALID : DB_INVALID;
		ans = dialback_verify_answer(req->to, req->from, req->id, ok);
	}
	if (ans && verdict)
		*verdict = v;
	return ans;
}
