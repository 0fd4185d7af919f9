/* libFuzzer target for the personal eventing requests peers send
 * (core/pubsub.c): an iq parsed by the stream core's reader, then
 * pubsub_parse, every data form in it through pubsub_form, the access
 * decision for every kind of asker, and the +notify reading of every
 * attribute value.
 *
 * Invariants: a request taken names a node of sane length and one known
 * action, at most PUBSUB_IDS_MAX ids, a publish has one payload element,
 * options stay within the cap; a refusal always has a type, a condition
 * and a sentence; the owner may always read, a public-unverified partner's
 * user not in the roster never may. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fg.h"
#include "pubsub.h"
#include "xml.h"
#include "xmlstream.h"

#define CAP 16

static void check_conf(const struct pubsub_conf *c)
{
	CHECK(c->max_items >= 1 && c->max_items <= CAP);
	CHECK(pubsub_access_name(c->access) != NULL);
}

static void check_err(const struct pubsub_err *e)
{
	CHECK(e->type && e->cond && e->text);
}

static void walk(const struct xml_node *el)
{
	for (const struct xml_attr *a = el->attrs; a; a = a->next) {
		size_t n = pubsub_notify_node(a->value);
		CHECK(n == 0 || (n < strlen(a->value) && !strcmp(a->value + n, "+notify")));
	}
	if (xml_is(el, XML_NS_DATA, "x")) {
		struct pubsub_conf c;
		struct pubsub_err e = {0};
		unsigned set;
		pubsub_conf_default(&c);
		if (pubsub_form(el, CAP, &c, &set, &e) == FG_OK) {
			check_conf(&c);
			CHECK(pubsub_preconditions_met(&c, set, &c));
		} else {
			check_err(&e);
		}
	}
	for (const struct xml_node *c = xml_first_element(el); c; c = xml_next_element(c))
		walk(c);
}

static void decide_all(void)
{
	for (int m = PUBSUB_PRESENCE; m <= PUBSUB_WHITELIST; m++)
		for (unsigned bits = 0; bits < 32; bits++)
			for (int pt = PT_FEDERATED; pt <= PT_PUBLIC_UNVERIFIED; pt++) {
				struct pubsub_asker a = {
					.owner = bits & 1,
					.local = bits & 2,
					.in_roster = bits & 4,
					.sub_from = bits & 8,
					.partner = (enum partner_type)pt,
				};
				struct pubsub_err e = {0};
				bool ok = pubsub_may_read((enum pubsub_access)m, &a, &e);
				if (a.owner)
					CHECK(ok);
				if (!a.owner && !a.local && pt == PT_PUBLIC_UNVERIFIED &&
				    !a.in_roster)
					CHECK(!ok);
				if (!ok)
					check_err(&e);
			}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool decided;
	if (!decided) {
		decide_all();
		decided = true;
	}
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct xml_node *iq = xmlstream_parse_one(s);
	free(s);
	if (!iq)
		return 0;
	struct pubsub_req r;
	struct pubsub_err e;
	if (pubsub_parse(iq, CAP, &r, &e) == FG_OK) {
		CHECK(r.op != PUBSUB_OP_NONE);
		CHECK(r.node && *r.node && strlen(r.node) <= PUBSUB_NAME_MAX);
		CHECK(r.nids <= PUBSUB_IDS_MAX);
		for (size_t i = 0; i < r.nids; i++)
			CHECK(r.ids[i] && *r.ids[i]);
		if (r.op == PUBSUB_OP_PUBLISH) {
			CHECK(r.payload && r.payload->type == XML_ELEMENT);
			CHECK(!r.item_id || (*r.item_id && strlen(r.item_id) <= PUBSUB_NAME_MAX));
		}
		if (r.op == PUBSUB_OP_RETRACT)
			CHECK(r.nids > 0);
		CHECK(r.max_items >= 0);
		check_conf(&r.opts);
	} else {
		check_err(&e);
	}
	walk(iq);
	xml_free(&iq);
	return 0;
}
