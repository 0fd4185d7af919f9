#include "service.h"

#include "blocking.h"
#include "session.h"
#include "carbons.h"
#include "mam.h"
#include "mam_query.h"
#include "conf.h"
#include "fg.h"
#include "log.h"
#include "pep.h"
#include "xmpp.h"
#include "store.h"
#include "store_users.h"
#include "xmlstream.h"

#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

static bool is_type(const struct xml_node *st, const char *t)
{
	const char *v = xml_attr(st, "type");
	return v && strcmp(v, t) == 0;
}

/* The result for iq (taken), with payload (taken, may be NULL). */
static void result(struct xmpp_server *srv, struct session *own, struct xml_node *iq,
		   struct xml_node *payload)
{
	struct xml_node *r = xml_new(XML_NS_SERVER, "iq");
	if (r) {
		xml_set_attr(r, NULL, "type", "result");
		if (xml_attr(iq, "id"))
			xml_set_attr(r, NULL, "id", xml_attr(iq, "id"));
		const char *to = xml_attr(iq, "to");
		/* A client's own iq without 'to' is answered by its account. */
		xml_set_attr(r, NULL, "from", to ? to : session_bare(own));
		xml_set_attr(r, NULL, "to", xml_attr(iq, "from"));
		if (payload)
			xml_append_copy(r, payload);
		if (own)
			session_deliver(own, r);
		else
			srv->route(srv, r);
	}
	xml_free(&payload);
	xml_free(&iq);
}

static void refuse(struct xmpp_server *srv, struct session *own, struct xml_node *iq,
		   const char *type, const char *cond, const char *text)
{
	if (own && !xml_attr(iq, "to"))
		xml_set_attr(iq, NULL, "to", session_bare(own));
	srv->bounce(srv, iq, type, cond, text);
}

static void add_feature(struct xml_node *q, const char *var)
{
	struct xml_node *f = xml_add_child(q, XML_NS_DISCO_INFO, "feature");
	if (f)
		xml_set_attr(f, NULL, "var", var);
}

static struct xml_node *disco_info(struct xmpp_server *srv, bool account)
{
	struct xml_node *q = xml_new(XML_NS_DISCO_INFO, "query");
	struct xml_node *id = q ? xml_add_child(q, XML_NS_DISCO_INFO, "identity") : NULL;
	if (!id) {
		xml_free(&q);
		return NULL;
	}
	xml_set_attr(id, NULL, "category", account ? "account" : "server");
	xml_set_attr(id, NULL, "type", account ? "registered" : "im");
	if (!account)
		xml_set_attr(id, NULL, "name", "fedgate");
	/* Only what is answered at that address (XEP-0030 §3.1). Pings are
	 * answered at both (XEP-0199 §4.2, and on the account's behalf); the
	 * server's own: offline storage (XEP-0160, XEP-0013's "msgoffline"),
	 * blocking (XEP-0191 §2: the server's), software version. */
	add_feature(q, XML_NS_DISCO_INFO);
	add_feature(q, XML_NS_DISCO_ITEMS);
	add_feature(q, XML_NS_PING);
	/* Clients look for PEP on the account and on its server alike
	 * (XEP-0163 §6). */
	pep_disco_info(q);
	if (!account) {
		if (srv->conf->users_offline_limit)
			add_feature(q, "msgoffline");
		add_feature(q, XML_NS_BLOCKING);
		add_feature(q, XML_NS_CARBONS);
		if (srv->conf->users_software_version)
			add_feature(q, XML_NS_VERSION);
	}
	if (srv->conf->users_vcard)
		add_feature(q, XML_NS_VCARD);
	/* The archive is the account's (XEP-0313 §7); the server lists it
	 * too because profanity 0.13 asks only the server's disco#info
	 * before it queries. */
	if (mam_enabled(srv)) {
		/* Not urn:xmpp:mam:2#extended: before-id and after-id are
		 * read, but ids and <flip-page/> are not. */
		add_feature(q, XML_NS_MAM);
		add_feature(q, XML_NS_SID);
	}
	return q;
}

/* Queries both kinds of address answer alike. */
static bool common(struct xmpp_server *srv, struct session *own, struct xml_node *iq, bool account)
{
	if (is_type(iq, "get") && xml_child(iq, XML_NS_DISCO_INFO, "query")) {
		result(srv, own, iq, disco_info(srv, account));
		return true;
	}
	if (is_type(iq, "get") && xml_child(iq, XML_NS_DISCO_ITEMS, "query")) {
		result(srv, own, iq, xml_new(XML_NS_DISCO_ITEMS, "query"));
		return true;
	}
	if (is_type(iq, "get") && xml_child(iq, XML_NS_PING, "ping")) {
		result(srv, own, iq, NULL);
		return true;
	}
	return false;
}

static struct xml_node *version(struct xmpp_server *srv)
{
	struct xml_node *q = xml_new(XML_NS_VERSION, "query");
	struct utsname u;
	if (!q)
		return NULL;
	xml_add_text(xml_add_child(q, XML_NS_VERSION, "name"), "fedgate", 7);
	xml_add_text(xml_add_child(q, XML_NS_VERSION, "version"), FG_VERSION, strlen(FG_VERSION));
	/* [users] software_version_os: yes = the kernel's name, no or empty =
	 * no <os/> (XEP-0092 §2: it is optional), anything else as written. */
	const char *os = srv->conf->users_software_version_os;
	if (!os || !*os || strcmp(os, "no") == 0)
		return q;
	if (strcmp(os, "yes") == 0)
		os = uname(&u) == 0 ? u.sysname : NULL;
	if (os)
		xml_add_text(xml_add_child(q, XML_NS_VERSION, "os"), os, strlen(os));
	return q;
}

void service_domain(struct xmpp_server *srv, struct xml_node *st)
{
	if (!xml_is(st, NULL, "iq")) {
		/* Presence to the server and messages to it have no one to
		 * read them (RFC 6121 §8.5.1). */
		if (xml_is(st, NULL, "message") && !is_type(st, "error") &&
		    !is_type(st, "headline"))
			srv->bounce(srv, st, "cancel", "service-unavailable",
				    "the server does not take messages");
		else
			xml_free(&st);
		return;
	}
	if (common(srv, NULL, st, false))
		return;
	if (is_type(st, "get") && xml_child(st, XML_NS_VERSION, "query") &&
	    srv->conf->users_software_version) {
		result(srv, NULL, st, version(srv));
		return;
	}
	if ((is_type(st, "result") || is_type(st, "error")) && pep_domain_iq(srv, st))
		return;
	if (is_type(st, "result") || is_type(st, "error")) {
		xml_free(&st); /* answers to pings and pushes */
		return;
	}
	srv->bounce(srv, st, "cancel", "service-unavailable",
		    "the server does not offer that service");
}

/* ---- vCard-temp, through the store thread ---- */

struct vcard_job {
	struct xmpp_server *srv;
	struct xml_node *iq;
	char *user, *xml, *asker, *asker_res;
	bool own;
};

static void vcard_job_free(struct vcard_job *j)
{
	xml_free(&j->iq);
	free(j->user);
	free(j->xml);
	free(j->asker);
	free(j->asker_res);
	free(j);
}

static int vcard_get_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct vcard_job *j = ud;
	return store_db_vcard_get(db, j->user, &j->xml, err, errlen);
}

static int vcard_put_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct vcard_job *j = ud;
	return store_db_vcard_put(db, j->user, j->xml, err, errlen);
}

static void vcard_done(void *ud, int rc, const char *err)
{
	struct vcard_job *j = ud;
	struct xmpp_server *srv = j->srv;
	/* The asking session may be gone; then nobody needs the answer. */
	struct session *own = j->own ? session_find(srv, j->asker, j->asker_res) : NULL;
	struct xml_node *iq = j->iq;
	j->iq = NULL;
	if (j->own && !own) {
		xml_free(&iq);
	} else if (rc != FG_OK) {
		log_error("vcard", "vCard of %s: %s", j->user, err);
		refuse(srv, own, iq, "wait", "internal-server-error", "the vCard store failed");
	} else if (is_type(iq, "set")) {
		result(srv, own, iq, NULL);
	} else {
		struct xml_node *v = NULL;
		if (j->xml) {
			struct xml_node *wrapped = xmlstream_parse_one(j->xml);
			struct xml_node *inner = wrapped ? xml_first_element(wrapped) : NULL;
			v = inner ? xml_clone(inner) : NULL;
			xml_free(&wrapped);
		}
		result(srv, own, iq, v ? v : xml_new(XML_NS_VCARD, "vCard"));
	}
	vcard_job_free(j);
}

static void vcard(struct xmpp_server *srv, struct session *own, struct xml_node *iq,
		  const char *user)
{
	struct vcard_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->user = strdup(user))) {
		free(j);
		refuse(srv, own, iq, "wait", "resource-constraint", "out of memory");
		return;
	}
	j->srv = srv;
	j->own = own != NULL;
	if (own) {
		const char *full = session_full(own), *slash = strchr(full, '/');
		j->asker = strdup(session_bare(own));
		j->asker_res = strdup(slash ? slash + 1 : "");
	}
	store_job_fn run = vcard_get_run;
	if (is_type(iq, "set")) {
		/* Kept inside a <message/> so that xmlstream_parse_one can read it
		 * back as a stanza. */
		struct xml_node *wrap = xml_new(XML_NS_SERVER, "message");
		struct xml_buf b = {0};
		if (wrap)
			xml_append_copy(wrap, xml_child(iq, XML_NS_VCARD, "vCard"));
		struct xml_ctx ctx = {.default_ns = XML_NS_SERVER};
		if (wrap)
			xml_serialize(wrap, &ctx, &b);
		j->xml = b.oom || !wrap ? NULL : strndup(b.data, b.len);
		xml_buf_free(&b);
		xml_free(&wrap);
		run = vcard_put_run;
	}
	j->iq = iq;
	if (store_submit_keyed(srv->store, j->user, run, vcard_done, j) != FG_OK) {
		j->iq = NULL;
		vcard_job_free(j);
		refuse(srv, own, iq, "wait", "internal-server-error", "the store is not running");
	}
}

void service_account(struct xmpp_server *srv, struct session *own, struct xml_node *st)
{
	const char *to = xml_attr(st, "to");
	const char *user = own ? session_bare(own) : to;
	if (pep_is_request(st)) {
		pep_iq(srv, own, st);
		return;
	}
	if (is_type(st, "get") && xml_child(st, XML_NS_DISCO_ITEMS, "query")) {
		pep_disco_items(srv, own, st);
		return;
	}
	if (common(srv, own, st, true))
		return;
	if (is_type(st, "result") || is_type(st, "error")) {
		xml_free(&st);
		return;
	}
	if (own && (carbons_iq(srv, own, st) || mam_iq(srv, own, st)))
		return;
	const struct xml_node *vc = xml_child(st, XML_NS_VCARD, "vCard");
	if (vc && srv->conf->users_vcard && srv->store) {
		if (is_type(st, "set") && !own) {
			refuse(srv, own, st, "auth", "forbidden",
			       "only the user may change a vCard");
			return;
		}
		if (is_type(st, "set") || is_type(st, "get")) {
			vcard(srv, own, st, user);
			return;
		}
	}
	refuse(srv, own, st, "cancel", "service-unavailable",
	       "the account does not offer that service");
}
