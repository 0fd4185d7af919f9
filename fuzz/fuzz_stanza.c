/* libFuzzer target for stanza routing and policy: stanzas parsed by the
 * stream core enter the router as a partner's (router_from_partner) or as a
 * signed-in user's (router_from_client, stamped as c2s does), on a server
 * put together as app/serve.c does it, without sockets or a store: three
 * partners, one of each type (SPEC §4), and two local users, alice and bob
 * (bob's xmpp_access is off), each with a session. Addresses are parsed,
 * presence and roster items handled, bounces made, for real; route_send
 * and session_deliver/session_offer are wrapped at link time
 * (CMakeLists.txt) to see
 * what leaves, instead of writing to a stream.
 *
 * Invariants: what goes to a partner is from one of our domains to a domain
 * of that partner, a message/presence/iq, sent by a user allowed to
 * federate (or an error), without status notes for partner types that do
 * not see them; what a local session gets is addressed to it; a partner's
 * user reaches bob only with errors, and reaches alice past a
 * public-unverified partner only from her roster; from what alice blocked
 * (eve@fabrikam.test and open.test at the start, XEP-0191) she gets only
 * the refusals of what she sent there; one stanza in causes at most a few
 * out. */
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "blocking.h"
#include "caps.h"
#include "conf.h"
#include "fg.h"
#include "jid.h"
#include "jid_cache.h"
#include "live.h"
#include "log.h"
#include "pep.h"
#include "policy.h"
#include "presence.h"
#include "pep.h"
#include "caps.h"
#include "refused.h"
#include "roster.h"
#include "route.h"
#include "s2s_in.h"
#include "s2s_out.h"
#include "throttle.h"
#include "router.h"
#include "session.h"
#include "strmap.h"
#include "users.h"
#include "xml.h"
#include "xmlstream.h"
#include "xmpp.h"

int __wrap_route_send(struct xmpp_server *srv, const char *local, const char *remote,
		      struct xml_node *stanza, route_done done, void *ud);
void __wrap_session_deliver(struct session *sess, struct xml_node *st);
bool __wrap_session_offer(struct session *sess, struct xml_node *st);
void __wrap_session_reply(struct session *sess, struct xml_node *iq, struct xml_node *payload);

#define DOMAIN	       "contoso.test"
#define ALICE	       "alice@contoso.test"
#define BOB	       "bob@contoso.test"
#define OUT_PER_STANZA 8

static struct {
	struct xmpp_server srv;
	struct live live;
	struct fg_conf *conf;
	struct session *alice, *bob;
	unsigned out; /* stanzas sent or delivered for the current input */
} g;

static bool parse_addr(const char *s, struct jid *j)
{
	memset(j, 0, sizeof(*j));
	return s && jid_parse(s, strlen(s), j) == JID_OK;
}

static bool has_status(const struct xml_node *st)
{
	for (const struct xml_node *c = xml_first_element(st); c; c = xml_next_element(c))
		if (xml_is(c, NULL, "status"))
			return true;
	return false;
}

static bool is_type(const struct xml_node *st, const char *t)
{
	const char *v = xml_attr(st, "type");

	return strcmp(v ? v : "", t) == 0;
}

int __wrap_route_send(struct xmpp_server *srv, const char *local, const char *remote,
		      struct xml_node *st, route_done done, void *ud)
{
	struct jid from, to;

	g.out++;
	CHECK(conf_is_local_domain(srv->conf, local) && !conf_is_local_domain(srv->conf, remote));
	const struct partner *p = policy_lookup(srv->live->partners, remote);

	CHECK(p != NULL);
	CHECK(xml_is(st, NULL, "message") || xml_is(st, NULL, "presence") ||
	      xml_is(st, NULL, "iq"));
	CHECK(parse_addr(xml_attr(st, "from"), &from) && parse_addr(xml_attr(st, "to"), &to));
	CHECK(strcmp(from.domain, local) == 0 && strcmp(to.domain, remote) == 0);
	if (xml_is(st, NULL, "presence") && policy_strips_status(p->type))
		CHECK(!has_status(st));
	if (from.node) {
		char *bare = jid_to_string(&from, true);
		const struct account *a = accounts_get(srv->live->users, bare);

		/* xmpp_access off: only the server's errors leave for him. */
		CHECK(!a || a->xmpp_access || is_type(st, "error"));
		free(bare);
	}
	jid_clear(&from);
	jid_clear(&to);
	xml_free(&st);
	if (done)
		done(ud, true, "fuzz");
	return FG_OK;
}

void __wrap_session_deliver(struct session *sess, struct xml_node *st)
{
	struct jid to, from;

	g.out++;
	CHECK(parse_addr(xml_attr(st, "to"), &to));
	char *bare = jid_to_string(&to, true);

	CHECK(bare && strcmp(bare, session_bare(sess)) == 0);
	CHECK(!to.resource || strcmp(to.resource, session_resource(sess)) == 0);
	free(bare);
	if (parse_addr(xml_attr(st, "from"), &from)) {
		const struct partner *p = policy_lookup(g.live.partners, from.domain);
		bool remote_user = from.node && !conf_is_local_domain(g.conf, from.domain);
		char *fbare = jid_to_string(&from, true);

		if (remote_user && sess == g.bob)
			CHECK(is_type(st, "error") || xml_is(st, NULL, "presence"));
		if (remote_user && sess == g.alice && p && policy_needs_contact(p->type) &&
		    xml_is(st, NULL, "message") && !is_type(st, "error"))
			CHECK(fbare && roster_has(&g.srv, ALICE, fbare));
		/* XEP-0191: from an entity she blocked, alice gets only the
		 * refusal of what she sent it. */
		if (sess == g.alice && fbare && strcmp(fbare, ALICE) != 0 &&
		    blocking_blocks(&g.srv, ALICE, &from)) {
			const struct xml_node *e = xml_child(st, NULL, "error");
			CHECK(is_type(st, "error") && e &&
			      xml_child(e, XML_NS_BLOCKING_ERRORS, "blocked"));
		}
		free(fbare);
		jid_clear(&from);
	}
	jid_clear(&to);
	xml_free(&st);
}

/* A session's own iq answered (roster, blocking, carbons): session.c
 * would hand the result to session_deliver inside its own file, where
 * the link-time wrap does not reach. */
void __wrap_session_reply(struct session *sess, struct xml_node *iq, struct xml_node *payload)
{
	struct xml_node *r = xml_new(XML_NS_SERVER, "iq");
	CHECK(r != NULL);
	xml_set_attr(r, NULL, "type", "result");
	xml_set_attr(r, NULL, "from", session_bare(sess));
	xml_set_attr(r, NULL, "to", session_full(sess));
	if (payload)
		xml_append_copy(r, payload);
	xml_free(&payload);
	xml_free(&iq);
	__wrap_session_deliver(sess, r);
}

/* The router hands messages to sessions this way (a full client keeps
 * them offline): the same checks, and the client always has room. */
bool __wrap_session_offer(struct session *sess, struct xml_node *st)
{
	__wrap_session_deliver(sess, st);
	return true;
}

static void add_partner(const char *domain, enum partner_type type, const char *extra)
{
	struct partner *p = partner_new(domain);
	struct domain_list local = {g.conf->domains.v, g.conf->domains.n};
	struct policy_verdict v;

	CHECK(p != NULL);
	p->type = type;
	if (extra)
		CHECK(partner_add_domain(p, extra) == FG_OK);
	CHECK(policy_check(g.live.partners, p, true, &local, &v) == FG_OK);
	CHECK(policy_put(g.live.partners, p) == FG_OK);
}

static struct session *add_user(const char *jid, bool access, const char *res)
{
	struct account *a = account_new(jid);
	char full[128];

	CHECK(a != NULL);
	a->xmpp_access = access;
	CHECK(accounts_put(g.live.users, a) == FG_OK);
	snprintf(full, sizeof(full), "%s/%s", jid, res);
	struct session *s = session_new(&g.srv, NULL, jid, res, full);

	CHECK(s != NULL && session_register(s) == FG_OK);
	return s;
}

static void server_up(void)
{
	memset(&g, 0, sizeof(g));
	g.srv.base = event_base_new();
	CHECK(g.srv.base != NULL);
	CHECK(conf_defaults_for("/nonexistent-fedgate-fuzz", DOMAIN, &g.conf) == FG_OK);
	g.live.partners = policy_new();
	g.live.users = accounts_new();
	CHECK(g.live.partners && g.live.users);
	gateway_defaults(&g.live.gw);
	g.live.conf = g.conf;
	g.srv.conf = g.conf;
	g.srv.live = &g.live;
	g.srv.route = router_route;
	g.srv.bounce = router_bounce;
	CHECK(presence_start(&g.srv) == FG_OK);
	add_partner("fabrikam.test", PT_FEDERATED, "corp.fabrikam.test");
	add_partner("verified.test", PT_PUBLIC_VERIFIED, NULL);
	add_partner("open.test", PT_PUBLIC_UNVERIFIED, "im.open.test");
	g.alice = add_user(ALICE, true, "phone");
	g.bob = add_user(BOB, false, "desk");
	/* alice blocks a partner's user and a whole partner (XEP-0191), as
	 * her client would; the input may change that. */
	struct xml_node *b = xmlstream_parse_one(
		"<iq xmlns='jabber:server' type='set' id='b'><block xmlns='urn:xmpp:blocking'>"
		"<item jid='eve@fabrikam.test'/><item jid='open.test'/></block></iq>");
	CHECK(b != NULL);
	xml_set_attr(b, NULL, "from", session_full(g.alice));
	router_from_client(&g.srv, g.alice, b);
	g.out = 0;
}

static void server_down(void)
{
	g.srv.stopping = true;
	session_free(&g.alice);
	session_free(&g.bob);
	presence_stop(&g.srv);
	routes_free_all(&g.srv);
	s2s_out_free_all(&g.srv);
	event_base_free(g.srv.base);
	roster_free_all(&g.srv);
	blocking_free_all(&g.srv);
	pep_free_all(&g.srv);
	caps_free_all(&g.srv);
	refused_free_all(&g.srv);
	strmap_free(&g.srv.sessions, NULL);
	jid_cache_free(&g.srv.jids);
	throttle_free(&g.srv.auth_throttle);
	strmap_free(&g.srv.offline_full, NULL);
	policy_free(&g.live.partners);
	gateway_clear(&g.live.gw);
	accounts_free(&g.live.users);
	conf_free(&g.conf);
}

/* The partner's stream authenticated whichever partner domain the stanza
 * names. */
static bool partner_domain(const void *arg, const char *local, const char *remote)
{
	(void)arg;
	(void)local;
	return policy_lookup(g.live.partners, remote) != NULL;
}

struct feed {
	int origin;
	unsigned stanzas;
};

static int on_event(void *ud, struct xs_event *ev)
{
	struct feed *f = ud;

	if (ev->type != XS_EV_STANZA)
		return XS_CONTINUE;
	struct xml_node *st = ev->node;
	unsigned before = g.out;

	f->stanzas++;
	if (f->origin == 0) {
		/* s2s_in's checks, the very function inbound streams and our
		 * bidirectional outbound ones (XEP-0288) use: the three stanzas
		 * in jabber:server, to in ours, from in a domain the stream
		 * authenticated (here: any partner's), then the router. */
		const char *cond = NULL, *text = NULL;

		if (!s2s_in_partner_stanza(&g.srv, st, partner_domain, NULL, &cond, &text))
			CHECK(cond && text && *cond && *text);
		event_base_loop(g.srv.base, EVLOOP_NONBLOCK);
		CHECK(g.out - before <= OUT_PER_STANZA);
		return f->stanzas < 32 ? XS_CONTINUE : XS_STOP;
	}
	/* What c2s lets through: the three stanzas in the content namespace. */
	if (!xml_is(st, XML_NS_SERVER, "message") && !xml_is(st, XML_NS_SERVER, "presence") &&
	    !xml_is(st, XML_NS_SERVER, "iq")) {
		xml_free(&st);
		return XS_CONTINUE;
	}
	{
		/* As c2s stamps a bound client's stanza. */
		struct session *c = f->origin == 1 ? g.alice : g.bob;

		xml_set_attr(st, NULL, "from", session_full(c));
		router_from_client(&g.srv, c, st);
	}
	event_base_loop(g.srv.base, EVLOOP_NONBLOCK);
	CHECK(g.out - before <= OUT_PER_STANZA);
	return f->stanzas < 32 ? XS_CONTINUE : XS_STOP;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hdr[] = "<stream:stream xmlns='jabber:server' "
				  "xmlns:stream='http://etherx.jabber.org/streams'>";
	static const struct xs_limits lim = {
		.stanza_bytes = 64 << 10, .depth = 16, .attributes = 16};
	static bool once;

	if (size < 1)
		return 0;
	if (!once) {
		once = true;
		log_set_level(LOG_ERROR);
	}
	struct feed f = {.origin = data[0] % 3};

	server_up();
	struct xmlstream *xs = xmlstream_new(&lim, on_event, &f);

	CHECK(xs != NULL);
	if (xmlstream_feed(xs, hdr, sizeof(hdr) - 1, NULL) == FG_OK)
		xmlstream_feed(xs, (const char *)data + 1, size - 1, NULL);
	xmlstream_free(&xs);
	server_down();
	return 0;
}
