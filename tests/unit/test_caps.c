/* Unit tests for caps_verify (src/xmpp/caps.c): XEP-0115's own examples,
 * the simple one (§5.2) and the one with an extended form (§5.3), hash to
 * their vers, and any change to the answer breaks the match. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "caps.h"
#include "xml.h"
#include "xmlstream.h"

#define Q "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'>"

static bool verify(const char *xml, const char *ver)
{
	struct xml_node *iq = xmlstream_parse_one(xml);
	assert_non_null(iq);
	bool ok = caps_verify(xml_first_element(iq), "sha-1", ver);
	xml_free(&iq);
	return ok;
}

static const char simple[] = Q "<identity category='client' type='pc' name='Exodus 0.9.1'/>"
			       "<feature var='http://jabber.org/protocol/caps'/>"
			       "<feature var='http://jabber.org/protocol/disco#items'/>"
			       "<feature var='http://jabber.org/protocol/disco#info'/>"
			       "<feature var='http://jabber.org/protocol/muc'/></query></iq>";

static const char complex_[] =
	Q "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"
	  "<identity xml:lang='el' category='client' name='&#936; 0.11' type='pc'/>"
	  "<feature var='http://jabber.org/protocol/caps'/>"
	  "<feature var='http://jabber.org/protocol/disco#info'/>"
	  "<feature var='http://jabber.org/protocol/disco#items'/>"
	  "<feature var='http://jabber.org/protocol/muc'/>"
	  "<x xmlns='jabber:x:data' type='result'>"
	  "<field var='FORM_TYPE' "
	  "type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>"
	  "<field var='ip_version'><value>ipv4</value><value>ipv6</value></field>"
	  "<field var='os'><value>Mac</value></field>"
	  "<field var='os_version'><value>10.5.1</value></field>"
	  "<field var='software'><value>Psi</value></field>"
	  "<field var='software_version'><value>0.11</value></field>"
	  "</x></query></iq>";

static void test_xep_examples(void **state)
{
	(void)state;
	assert_true(verify(simple, "QgayPKawpkPSDYmwT/WM94uAlu0="));
	assert_true(verify(complex_, "q07IKJEyjvHSyhy//CH0CxmKi8w="));
}

static void test_changes_break_the_match(void **state)
{
	(void)state;
	char *s = strdup(simple), *p = strstr(s, "muc");
	assert_non_null(p);
	p[0] = 'n'; /* another feature */
	assert_false(verify(s, "QgayPKawpkPSDYmwT/WM94uAlu0="));
	free(s);
	s = strdup(complex_);
	p = strstr(s, "10.5.1");
	p[0] = '9';
	assert_false(verify(s, "q07IKJEyjvHSyhy//CH0CxmKi8w="));
	free(s);
	/* a +notify added after the ver was computed (stale caps) */
	assert_false(verify(Q "<identity category='client' type='pc' name='Exodus 0.9.1'/>"
			      "<feature var='http://jabber.org/protocol/caps'/>"
			      "<feature var='http://jabber.org/protocol/disco#items'/>"
			      "<feature var='http://jabber.org/protocol/disco#info'/>"
			      "<feature var='http://jabber.org/protocol/muc'/>"
			      "<feature var='urn:xmpp:avatar:metadata+notify'/></query></iq>",
			    "QgayPKawpkPSDYmwT/WM94uAlu0="));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xep_examples),
		cmocka_unit_test(test_changes_break_the_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
