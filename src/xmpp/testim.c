#include "testim.h"

#include "conf.h"
#include "fg.h"
#include "jid.h"
#include "live.h"
#include "log.h"
#include "router.h"
#include "xmpp.h"
#include "users.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XML_NS_RECEIPTS "urn:xmpp:receipts"
#define TESTIM_RESOURCE "fedgate-test-im"
#define TESTIM_WAIT_S	10

struct test_im {
	struct xmpp_server *srv;
	testim_reply_fn reply;
	void *ud;
	char to[1100], from[1200], id[64], domain[1100];
	unsigned wait; /* seconds for a receipt; 0 = do not wait */
	struct xml_buf steps;
	struct event *timer;
	bool sent;
	struct test_im *next;
};

static struct test_im *waiting;

/* The command layer's error shape: {"field": null, "message": msg}. */
static json_t *error_object(const char *msg)
{
	return json_pack("{s:n, s:s}", "field", "message", msg);
}

static void step(struct test_im *t, const char *line)
{
	if (t->steps.len)
		xml_buf_puts(&t->steps, "\n");
	xml_buf_puts(&t->steps, line);
}

static void finish(struct test_im *t, bool ok, bool delivered, const char *warning)
{
	for (struct test_im **p = &waiting; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	if (t->timer)
		event_free(t->timer);
	json_t *body = json_object(), *steps = json_array(), *errors = json_array(),
	       *warnings = json_array();
	char *copy = t->steps.data && !t->steps.oom ? strndup(t->steps.data, t->steps.len) : NULL;
	char *save = NULL, *last = NULL;
	for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save)) {
		json_array_append_new(steps, json_string(l));
		last = l;
	}
	if (!ok)
		json_array_append_new(errors, error_object(last ? last : "not sent"));
	if (warning)
		json_array_append_new(warnings, json_string(warning));
	json_t *result = json_object();
	json_object_set_new(result, "sent", json_boolean(t->sent));
	json_object_set_new(result, "delivered", json_boolean(delivered));
	json_object_set_new(result, "from", json_string(t->from));
	json_object_set_new(result, "steps", steps);
	json_object_set_new(body, "result", result);
	json_object_set_new(body, "errors", errors);
	json_object_set_new(body, "warnings", warnings);
	char msg[1300];
	snprintf(msg, sizeof(msg),
		 !ok && !t->sent ? "test message to %s not sent"
		 : !ok		 ? "test message to %s failed after it was sent"
		 : delivered	 ? "test message delivered to %s"
				 : "test message sent to %s",
		 t->to);
	json_object_set_new(body, "message", json_string(msg));
	free(copy);
	xml_buf_free(&t->steps);
	t->reply(t->ud, ok ? TESTIM_OK : TESTIM_FAILED, body);
	free(t);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct test_im *t = arg;
	(void)fd;
	(void)what;
	char line[1400];
	snprintf(line, sizeof(line),
		 "no receipt or error within %u s: the message reached the partner's server, but "
		 "nothing confirmed delivery (the recipient's client may not send XEP-0184 "
		 "receipts)",
		 t->wait);
	step(t, line);
	finish(t, true, false, line);
}

static void on_sent(void *ud, bool ok, const char *report)
{
	struct test_im *t = ud;
	if (report && *report)
		step(t, report);
	if (!ok) {
		finish(t, false, false, NULL);
		return;
	}
	t->sent = true;
	if (t->wait == 0) {
		finish(t, true, false, NULL);
		return;
	}
	char line[1300];
	snprintf(line, sizeof(line), "message handed to %s's server; waiting for a receipt",
		 t->domain);
	step(t, line);
	struct timeval tv = {(time_t)t->wait, 0};
	t->timer = evtimer_new(t->srv->base, on_timeout, t);
	if (!t->timer || evtimer_add(t->timer, &tv) != 0)
		finish(t, true, false, "cannot wait for a receipt");
}

/* Answers to a test come to its resource: the receipt, or an error. */
static bool tap(struct xmpp_server *srv, struct xml_node *st)
{
	(void)srv;
	const char *to = xml_attr(st, "to");
	struct test_im *t = waiting;
	while (t && (!to || strcmp(to, t->from) != 0))
		t = t->next;
	if (!t)
		return false;
	const char *from = xml_attr(st, "from");
	const char *type = xml_attr(st, "type");
	const char *id = xml_attr(st, "id");
	const struct xml_node *rcpt = xml_child(st, XML_NS_RECEIPTS, "received");
	char line[1600];
	if (rcpt && xml_attr(rcpt, "id") && strcmp(xml_attr(rcpt, "id"), t->id) == 0) {
		snprintf(line, sizeof(line), "delivery receipt from %s", from ? from : "?");
		step(t, line);
		xml_free(&st);
		finish(t, true, true, NULL);
		return true;
	}
	if (type && strcmp(type, "error") == 0 && id && strcmp(id, t->id) == 0) {
		const struct xml_node *e = xml_child(st, NULL, "error");
		const struct xml_node *c = e ? xml_first_element(e) : NULL;
		const struct xml_node *tx = e ? xml_child(e, XML_NS_STANZAS_ERR, "text") : NULL;
		snprintf(line, sizeof(line), "error came back from %s: <%s/>%s%s",
			 from ? from : "?", c ? c->name : "undefined-condition", tx ? ": " : "",
			 tx ? xml_text(tx) : "");
		step(t, line);
		xml_free(&st);
		finish(t, false, false, NULL);
		return true;
	}
	xml_free(&st); /* anything else to the test's resource has no reader */
	return true;
}

static void refuse(testim_reply_fn reply, void *ud, const char *msg)
{
	json_t *b = json_object(), *e = json_array();
	json_array_append_new(e, error_object(msg));
	json_object_set_new(b, "errors", e);
	reply(ud, TESTIM_FAILED, b);
}

void testim_run(struct xmpp_server *srv, json_t *params, const char *who, testim_reply_fn reply,
		void *ud)
{
	static unsigned seq;
	const char *to = json_string_value(json_object_get(params, "to"));
	const char *from = json_string_value(json_object_get(params, "from"));
	const char *text = json_string_value(json_object_get(params, "body"));
	char msg[1300], deffrom[1100];
	struct jid tj = {0}, fj = {0};
	struct test_im *t = NULL;
	if (!to || jid_parse(to, strlen(to), &tj) != JID_OK) {
		refuse(reply, ud, "test-im: --to is not a valid JID");
		return;
	}
	if (!from) {
		snprintf(deffrom, sizeof(deffrom), "fedgate-test@%s", srv->conf->domains.v[0]);
		from = deffrom;
	}
	if (jid_parse(from, strlen(from), &fj) != JID_OK ||
	    !conf_is_local_domain(srv->conf, fj.domain) || !fj.node) {
		refuse(reply, ud, "test-im: --from must be a user JID of a local domain");
		goto out;
	}
	char *fb = jid_to_string(&fj, true), *ts = jid_to_string(&tj, false);
	const struct account *acc = fb ? accounts_get(srv->live->users, fb) : NULL;
	if (!fb || !ts) {
		refuse(reply, ud, "out of memory");
	} else if (from != deffrom && !acc) {
		snprintf(msg, sizeof(msg),
			 "test-im: there is no local user %s (add one with 'fedgate user add %s')",
			 fb, fb);
		refuse(reply, ud, msg);
	} else if (acc && !acc->xmpp_access) {
		snprintf(msg, sizeof(msg),
			 "test-im: federation is turned off for %s (turn it on with 'fedgate user "
			 "set %s --xmpp-access true')",
			 fb, fb);
		refuse(reply, ud, msg);
	} else if (!policy_lookup(srv->live->partners, tj.domain)) {
		snprintf(msg, sizeof(msg),
			 "%s is not an allowed federation partner (add it with "
			 "'fedgate partner new --domain %s')",
			 tj.domain, tj.domain);
		refuse(reply, ud, msg);
	} else if ((t = calloc(1, sizeof(*t)))) {
		t->srv = srv;
		/* The CLI passes numbers as text, the API as numbers. */
		json_t *w = json_object_get(params, "wait");
		t->wait = json_is_integer(w)  ? (unsigned)json_integer_value(w)
			  : json_is_string(w) ? (unsigned)strtoul(json_string_value(w), NULL, 10)
					      : TESTIM_WAIT_S;
		if (t->wait > 300)
			t->wait = 300;
		t->reply = reply;
		t->ud = ud;
		snprintf(t->to, sizeof(t->to), "%s", ts);
		snprintf(t->domain, sizeof(t->domain), "%s", tj.domain);
		snprintf(t->from, sizeof(t->from), "%s/" TESTIM_RESOURCE "-%u", fb, ++seq);
		snprintf(t->id, sizeof(t->id), "fedgate-test-im-%u", seq);
		snprintf(msg, sizeof(msg), "sending as %s (%s)", t->from,
			 acc ? "a local user; the daemon signs in for it"
			     : "the server's own test address");
		step(t, msg);
		struct xml_node *m = xml_new(XML_NS_SERVER, "message");
		if (!m) {
			finish(t, false, false, NULL);
			goto free;
		}
		xml_set_attr(m, NULL, "from", t->from);
		xml_set_attr(m, NULL, "to", ts);
		xml_set_attr(m, NULL, "type", "chat");
		xml_set_attr(m, NULL, "id", t->id);
		const char *b = text ? text : "fedgate test message: federation works";
		xml_add_text(xml_add_child(m, NULL, "body"), b, strlen(b));
		xml_add_child(m, XML_NS_RECEIPTS, "request");
		t->next = waiting;
		waiting = t;
		log_info("test-im", "%s sends a test message from %s to %s", who ? who : "?",
			 t->from, ts);
		router_to_partner(srv, m, on_sent, t);
	} else {
		refuse(reply, ud, "out of memory");
	}
free:
	free(fb);
	free(ts);
out:
	jid_clear(&tj);
	jid_clear(&fj);
}

void testim_start(struct xmpp_server *srv)
{
	(void)srv;
	router_set_tap(tap);
}

void testim_stop(struct xmpp_server *srv)
{
	(void)srv;
	while (waiting) {
		step(waiting, "the daemon is stopping");
		finish(waiting, false, false, NULL);
	}
	router_set_tap(NULL);
}
