/* Unit tests for src/dialback.c: keys, elements, the tracker, the
 * authoritative role, and one whole exchange between two servers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dialback.h"
#include "fg.h"
#include "xml.h"

/* XEP-0185 §3 */
#define XEP185_SECRET "s3cr3tf0rd14lb4ck"
#define XEP185_KEY    "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"
/* XEP-0220 §2.1.1 and §2.2.2 */
#define CAPULET_SECRET	"s3cr3tf0rd14lb4ck"
#define MONTAGUE_SECRET "d14lb4ck43v3r"
#define XEP220_KEY_1	"b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3"
#define XEP220_KEY_2	"225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d"

/* How elements appear inside an s2s stream whose header declared
 * xmlns='jabber:server' and xmlns:db. */
static const struct xml_ctx stream_ctx = {XML_NS_SERVER, false, true};

/* Serializes el inside a stream, frees it, and compares with want. */
static void expect_xml(struct xml_node *el, const char *want)
{
	struct xml_buf b = {0};

	assert_non_null(el);
	xml_serialize(el, &stream_ctx, &b);
	xml_buf_append(&b, "", 1);
	assert_false(b.oom);
	assert_string_equal(b.data, want);
	xml_buf_free(&b);
	xml_free(&el);
}

static char *key_of(const char *secret, const char *recv, const char *orig, const char *id)
{
	static char hex[DIALBACK_KEY_HEX_LEN + 1];
	assert_int_equal(dialback_key(secret, recv, orig, id, hex), FG_OK);
	assert_int_equal(strlen(hex), DIALBACK_KEY_HEX_LEN);
	return hex;
}

/* ---- keys ---- */

static void test_key_xep_vectors(void **state)
{
	(void)state;
	assert_string_equal(key_of(XEP185_SECRET, "xmpp.example.com", "example.org", "D60000229F"),
			    XEP185_KEY);
	assert_string_equal(
		key_of(CAPULET_SECRET, "montague.example", "capulet.example", "D60000229F"),
		XEP220_KEY_1);
	assert_string_equal(
		key_of(MONTAGUE_SECRET, "capulet.example", "montague.example", "417GAF25"),
		XEP220_KEY_2);
}

static void test_key_every_input_counts(void **state)
{
	char base[DIALBACK_KEY_HEX_LEN + 1];
	(void)state;

	strcpy(base, key_of("secret", "a.example", "b.example", "id1"));
	assert_string_not_equal(key_of("secreT", "a.example", "b.example", "id1"), base);
	assert_string_not_equal(key_of("secret", "c.example", "b.example", "id1"), base);
	assert_string_not_equal(key_of("secret", "a.example", "c.example", "id1"), base);
	assert_string_not_equal(key_of("secret", "a.example", "b.example", "id2"), base);
	/* The roles are not interchangeable. */
	assert_string_not_equal(key_of("secret", "b.example", "a.example", "id1"), base);
	/* Separators keep the fields apart. */
	assert_string_not_equal(key_of("secret", "a.exampl", "eb.example", "id1"), base);
	/* And the same inputs give the same key. */
	assert_string_equal(key_of("secret", "a.example", "b.example", "id1"), base);
}

static void test_key_bad_args(void **state)
{
	char hex[DIALBACK_KEY_HEX_LEN + 1] = "x";
	(void)state;

	assert_int_equal(dialback_key("", "a", "b", "c", hex), FG_INVAL);
	assert_string_equal(hex, "");
	assert_int_equal(dialback_key(NULL, "a", "b", "c", hex), FG_INVAL);
	assert_int_equal(dialback_key("s", NULL, "b", "c", hex), FG_INVAL);
	assert_int_equal(dialback_key("s", "a", NULL, "c", hex), FG_INVAL);
	assert_int_equal(dialback_key("s", "a", "b", NULL, hex), FG_INVAL);
	assert_int_equal(dialback_key("s", "a", "b", "c", NULL), FG_INVAL);
}

static bool check185(const char *key)
{
	return dialback_key_check(XEP185_SECRET, "xmpp.example.com", "example.org", "D60000229F",
				  key);
}

static void test_key_check(void **state)
{
	char k[2 * DIALBACK_KEY_HEX_LEN + 8];
	(void)state;

	assert_true(check185(XEP185_KEY));
	/* Upper-case hex is the same number. */
	strcpy(k, XEP185_KEY);
	for (char *p = k; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_true(check185(k));

	/* Any single changed digit is refused, wherever it is. */
	for (size_t i = 0; i < DIALBACK_KEY_HEX_LEN; i++) {
		strcpy(k, XEP185_KEY);
		k[i] = k[i] == '0' ? '1' : '0';
		assert_false(check185(k));
	}
	/* Malformed: length, non-hex characters at either nibble, padding. */
	assert_false(check185(""));
	assert_false(check185(NULL));
	strcpy(k, XEP185_KEY);
	k[63] = '\0';
	assert_false(check185(k));
	snprintf(k, sizeof(k), "%s0", XEP185_KEY);
	assert_false(check185(k));
	snprintf(k, sizeof(k), " %s", XEP185_KEY);
	assert_false(check185(k));
	/* Every position, so that a non-hex character that a sloppy decoder
	 * would read as the digit it replaces is refused too. */
	const char bad[] = {'g', 'G', ':', '/', '@', '`', ' ', '\x80', '\xff', 'x', 'p', 'P'};
	for (size_t i = 0; i < sizeof(bad); i++)
		for (size_t pos = 0; pos < DIALBACK_KEY_HEX_LEN; pos++) {
			strcpy(k, XEP185_KEY);
			k[pos] = bad[i];
			assert_false(check185(k));
		}
	/* Same key, other inputs. */
	assert_false(dialback_key_check("other", "xmpp.example.com", "example.org", "D60000229F",
					XEP185_KEY));
	assert_false(dialback_key_check(XEP185_SECRET, "example.org", "xmpp.example.com",
					"D60000229F", XEP185_KEY));
	assert_false(dialback_key_check(XEP185_SECRET, "xmpp.example.com", "example.org",
					"D60000229G", XEP185_KEY));
	assert_false(dialback_key_check("", "xmpp.example.com", "example.org", "D60000229F",
					XEP185_KEY));
}

/* ---- builders ---- */

static void test_build_serialize(void **state)
{
	(void)state;
	expect_xml(dialback_result_request("capulet.example", "montague.example", XEP220_KEY_1),
		   "<db:result from='capulet.example' to='montague.example'>" XEP220_KEY_1
		   "</db:result>");
	expect_xml(dialback_result_answer("montague.example", "capulet.example", true),
		   "<db:result from='montague.example' to='capulet.example' type='valid'/>");
	expect_xml(dialback_result_answer("montague.example", "capulet.example", false),
		   "<db:result from='montague.example' to='capulet.example' type='invalid'/>");
	expect_xml(dialback_verify_request("capulet.example", "montague.example", "417GAF25",
					   XEP220_KEY_2),
		   "<db:verify from='capulet.example' to='montague.example' "
		   "id='417GAF25'>" XEP220_KEY_2 "</db:verify>");
	expect_xml(dialback_verify_answer("montague.example", "capulet.example", "417GAF25", true),
		   "<db:verify from='montague.example' to='capulet.example' id='417GAF25' "
		   "type='valid'/>");
	expect_xml(dialback_verify_answer("montague.example", "capulet.example", "417GAF25", false),
		   "<db:verify from='montague.example' to='capulet.example' id='417GAF25' "
		   "type='invalid'/>");
	expect_xml(dialback_error(DB_RESULT, "montague.example", "capulet.example", NULL,
				  DB_COND_ITEM_NOT_FOUND),
		   "<db:result from='montague.example' to='capulet.example' type='error'>"
		   "<error type='cancel'><item-not-found "
		   "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>");
	expect_xml(dialback_error(DB_VERIFY, "montague.example", "capulet.example", "417GAF25",
				  DB_COND_ITEM_NOT_FOUND),
		   "<db:verify from='montague.example' to='capulet.example' id='417GAF25' "
		   "type='error'><error type='cancel'><item-not-found "
		   "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:verify>");

	/* The reason for the peer's admin, after the condition. */
	expect_xml(dialback_error_why(DB_RESULT, "montague.example", "capulet.example", NULL,
				      DB_COND_POLICY_VIOLATION, "no dialback <here> & now"),
		   "<db:result from='montague.example' to='capulet.example' type='error'>"
		   "<error type='modify'><policy-violation "
		   "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
		   "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>no dialback "
		   "&lt;here&gt; &amp; now</text></error></db:result>");

	/* Outside a stream the db: prefix is declared on the element. */
	struct xml_node *el = dialback_result_answer("a.example", "b.example", true);
	struct xml_buf b = {0};
	xml_serialize(el, NULL, &b);
	xml_buf_append(&b, "", 1);
	assert_string_equal(b.data, "<db:result xmlns:db='jabber:server:dialback' "
				    "from='a.example' to='b.example' type='valid'/>");
	xml_buf_free(&b);
	xml_free(&el);
}

static void test_build_error_types(void **state)
{
	static const struct {
		enum db_cond cond;
		const char *name, *type;
	} cases[] = {
		{DB_COND_ITEM_NOT_FOUND, "item-not-found", "cancel"},
		{DB_COND_REMOTE_CONNECTION_FAILED, "remote-connection-failed", "cancel"},
		{DB_COND_REMOTE_SERVER_NOT_FOUND, "remote-server-not-found", "cancel"},
		{DB_COND_REMOTE_SERVER_TIMEOUT, "remote-server-timeout", "wait"},
		{DB_COND_POLICY_VIOLATION, "policy-violation", "modify"},
		{DB_COND_NOT_AUTHORIZED, "not-authorized", "auth"},
		{DB_COND_FORBIDDEN, "forbidden", "auth"},
		{DB_COND_NOT_ACCEPTABLE, "not-acceptable", "modify"},
		{DB_COND_INTERNAL_SERVER_ERROR, "internal-server-error", "cancel"},
		{DB_COND_OTHER, "undefined-condition", "cancel"},
	};
	char want[512];
	(void)state;

	for (size_t i = 0; i < FG_ARRAY_LEN(cases); i++) {
		assert_string_equal(dialback_cond_name(cases[i].cond), cases[i].name);
		assert_string_equal(dialback_cond_type(cases[i].cond), cases[i].type);
		snprintf(want, sizeof(want),
			 "<db:result from='a.example' to='b.example' type='error'>"
			 "<error type='%s'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
			 "</error></db:result>",
			 cases[i].type, cases[i].name);
		expect_xml(dialback_error(DB_RESULT, "a.example", "b.example", NULL, cases[i].cond),
			   want);
	}
	assert_null(dialback_cond_name(DB_COND_NONE));
	assert_null(dialback_cond_name((enum db_cond)999));
	assert_null(dialback_cond_type(DB_COND_NONE));
	assert_null(dialback_cond_type((enum db_cond)999));
}

static void test_build_bad_args(void **state)
{
	(void)state;
	assert_null(dialback_result_request(NULL, "b", "k"));
	assert_null(dialback_result_request("a", NULL, "k"));
	assert_null(dialback_result_request("a", "b", NULL));
	assert_null(dialback_result_request("a", "b", ""));
	assert_null(dialback_verify_request("a", "b", NULL, "k"));
	assert_null(dialback_verify_request("a", "b", "id", NULL));
	assert_null(dialback_verify_answer("a", "b", NULL, true));
	assert_null(dialback_result_answer("a", NULL, true));
	assert_null(dialback_error(DB_RESULT, "a", "b", NULL, DB_COND_NONE));
	assert_null(dialback_error(DB_RESULT, "a", "b", NULL, (enum db_cond)999));
	assert_null(dialback_error(DB_VERIFY, "a", "b", NULL, DB_COND_FORBIDDEN));
}

/* ---- parser ---- */

/* A dialback element with the given attributes (NULL = absent) and text. */
static struct xml_node *mk(const char *name, const char *from, const char *to, const char *id,
			   const char *type, const char *text)
{
	struct xml_node *el = xml_new(XML_NS_DIALBACK, name);
	assert_non_null(el);
	if (from)
		assert_int_equal(xml_set_attr(el, NULL, "from", from), FG_OK);
	if (to)
		assert_int_equal(xml_set_attr(el, NULL, "to", to), FG_OK);
	if (id)
		assert_int_equal(xml_set_attr(el, NULL, "id", id), FG_OK);
	if (type)
		assert_int_equal(xml_set_attr(el, NULL, "type", type), FG_OK);
	if (text)
		assert_int_equal(xml_add_text(el, text, strlen(text)), FG_OK);
	return el;
}

/* Parses el, frees it, and checks the refusal reason and a zeroed out. */
static void expect_refused(struct xml_node *el, enum db_perr want)
{
	struct db_msg m;
	memset(&m, 0xa5, sizeof(m));
	enum db_perr got = dialback_parse(el, &m);
	if (got != want)
		fail_msg("got \"%s\", want \"%s\"", dialback_perr_str(got),
			 dialback_perr_str(want));
	assert_null(m.from);
	assert_null(m.to);
	assert_null(m.id);
	assert_null(m.key);
	xml_free(&el);
}

static void test_parse_requests(void **state)
{
	struct db_msg m;
	(void)state;

	/* Indented like the XEP examples; domains get prepared. */
	struct xml_node *el = mk("result", "Capulet.Example.", "MONTAGUE.example", NULL, NULL,
				 "\n        " XEP220_KEY_1 "\n      ");
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	assert_int_equal(m.elem, DB_RESULT);
	assert_int_equal(m.type, DB_REQUEST);
	assert_string_equal(m.from, "capulet.example");
	assert_string_equal(m.to, "montague.example");
	assert_null(m.id);
	assert_string_equal(m.key, XEP220_KEY_1);
	assert_int_equal(m.cond, DB_COND_NONE);
	dialback_msg_clear(&m);
	assert_null(m.from);
	xml_free(&el);

	el = mk("verify", "capulet.example", "montague.example", "417GAF25", NULL, XEP220_KEY_2);
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	assert_int_equal(m.elem, DB_VERIFY);
	assert_int_equal(m.type, DB_REQUEST);
	assert_string_equal(m.id, "417GAF25");
	assert_string_equal(m.key, XEP220_KEY_2);
	dialback_msg_clear(&m);
	xml_free(&el);

	/* Keys from other implementations need not be XEP-0185 hex. */
	el = mk("result", "a.example", "b.example", NULL, NULL, "dGhpcyBpcyBhIGtleQ==");
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	assert_string_equal(m.key, "dGhpcyBpcyBhIGtleQ==");
	dialback_msg_clear(&m);
	xml_free(&el);

	/* Text split around a child element is still one key. */
	el = mk("result", "a.example", "b.example", NULL, NULL, " abc");
	assert_non_null(xml_add_child(el, NULL, "x"));
	assert_int_equal(xml_add_text(el, "def ", 4), FG_OK);
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	assert_string_equal(m.key, "abcdef");
	dialback_msg_clear(&m);
	xml_free(&el);
}

static void test_parse_answers(void **state)
{
	struct db_msg m;
	(void)state;

	struct xml_node *el =
		mk("result", "montague.example", "capulet.example", NULL, "valid", NULL);
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	assert_int_equal(m.elem, DB_RESULT);
	assert_int_equal(m.type, DB_VALID);
	assert_null(m.key);
	dialback_msg_clear(&m);
	xml_free(&el);

	el = mk("verify", "montague.example", "capulet.example", "417GAF25", "invalid", NULL);
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	assert_int_equal(m.elem, DB_VERIFY);
	assert_int_equal(m.type, DB_INVALID);
	assert_string_equal(m.id, "417GAF25");
	dialback_msg_clear(&m);
	xml_free(&el);

	/* Every condition we build is read back. */
	for (enum db_cond c = DB_COND_ITEM_NOT_FOUND; c <= DB_COND_OTHER; c++) {
		el = dialback_error(DB_VERIFY, "a.example", "b.example", "i1", c);
		assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
		assert_int_equal(m.type, DB_ERROR);
		assert_int_equal(m.cond, c);
		assert_string_equal(m.id, "i1");
		dialback_msg_clear(&m);
		xml_free(&el);
	}

	/* <text/> before the condition is skipped; an unknown condition,
	 * an empty <error/> or none at all still make an error. */
	el = mk("result", "a.example", "b.example", NULL, "error", NULL);
	struct xml_node *err = xml_add_child(el, XML_NS_SERVER, "error");
	assert_non_null(xml_add_child(err, XML_NS_STANZAS_ERR, "text"));
	assert_non_null(xml_add_child(err, XML_NS_STANZAS_ERR, "forbidden"));
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	assert_int_equal(m.cond, DB_COND_FORBIDDEN);
	dialback_msg_clear(&m);
	xml_free(&el);

	el = mk("result", "a.example", "b.example", NULL, "error", NULL);
	err = xml_add_child(el, XML_NS_SERVER, "error");
	assert_non_null(xml_add_child(err, XML_NS_STANZAS_ERR, "gone-fishing"));
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	assert_int_equal(m.cond, DB_COND_OTHER);
	dialback_msg_clear(&m);
	xml_free(&el);

	el = mk("result", "a.example", "b.example", NULL, "error", NULL);
	assert_non_null(xml_add_child(el, XML_NS_SERVER, "error"));
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	assert_int_equal(m.cond, DB_COND_OTHER);
	dialback_msg_clear(&m);
	xml_free(&el);

	el = mk("result", "a.example", "b.example", NULL, "error", NULL);
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	assert_int_equal(m.cond, DB_COND_OTHER);
	dialback_msg_clear(&m);
	xml_free(&el);
}

static void test_parse_refusals(void **state)
{
	struct db_msg m;
	char long_key[DIALBACK_KEY_MAX + 2], long_id[DIALBACK_ID_MAX + 2];
	(void)state;

	/* Not dialback at all. */
	assert_int_equal(dialback_parse(NULL, &m), DB_PERR_NOT_DIALBACK);
	assert_int_equal(dialback_parse(NULL, NULL), DB_PERR_NOT_DIALBACK);
	struct xml_node *el = xml_new(XML_NS_SERVER, "result");
	assert_int_equal(xml_set_attr(el, NULL, "from", "a.example"), FG_OK);
	expect_refused(el, DB_PERR_NOT_DIALBACK);
	expect_refused(xml_new(XML_NS_DIALBACK, "results"), DB_PERR_NOT_DIALBACK);
	expect_refused(xml_new("", "verify"), DB_PERR_NOT_DIALBACK);
	el = xml_new(XML_NS_DIALBACK, "result");
	assert_int_equal(xml_add_text(el, "hi", 2), FG_OK);
	assert_int_equal(dialback_parse(el->children, &m), DB_PERR_NOT_DIALBACK);
	xml_free(&el);

	expect_refused(mk("result", "a.example", "b.example", NULL, "Valid", NULL),
		       DB_PERR_BAD_TYPE);
	expect_refused(mk("verify", "a.example", "b.example", "i", "", NULL), DB_PERR_BAD_TYPE);
	expect_refused(mk("result", NULL, "b.example", NULL, NULL, "key"), DB_PERR_NO_FROM);
	expect_refused(mk("result", "", "b.example", NULL, NULL, "key"), DB_PERR_BAD_FROM);
	expect_refused(mk("result", "a b.example", "b.example", NULL, NULL, "key"),
		       DB_PERR_BAD_FROM);
	expect_refused(mk("result", "user@a.example", "b.example", NULL, NULL, "key"),
		       DB_PERR_BAD_FROM);
	expect_refused(mk("result", "a.example", NULL, NULL, "valid", NULL), DB_PERR_NO_TO);
	expect_refused(mk("result", "a.example", "b..example", NULL, "valid", NULL),
		       DB_PERR_BAD_TO);
	expect_refused(mk("verify", "a.example", "b.example", NULL, NULL, "key"), DB_PERR_NO_ID);
	expect_refused(mk("verify", "a.example", "b.example", NULL, "valid", NULL), DB_PERR_NO_ID);
	expect_refused(mk("verify", "a.example", "b.example", "", NULL, "key"), DB_PERR_BAD_ID);
	expect_refused(mk("verify", "a.example", "b.example", "a b", NULL, "key"), DB_PERR_BAD_ID);
	memset(long_id, 'i', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	expect_refused(mk("verify", "a.example", "b.example", long_id, NULL, "key"),
		       DB_PERR_BAD_ID);
	long_id[DIALBACK_ID_MAX] = '\0';
	el = mk("verify", "a.example", "b.example", long_id, NULL, "key");
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	dialback_msg_clear(&m);
	xml_free(&el);

	expect_refused(mk("result", "a.example", "b.example", NULL, NULL, NULL), DB_PERR_NO_KEY);
	expect_refused(mk("result", "a.example", "b.example", NULL, NULL, " \n\t\r "),
		       DB_PERR_NO_KEY);
	el = mk("verify", "a.example", "b.example", "i", NULL, NULL);
	struct xml_node *child = xml_add_child(el, NULL, "key");
	assert_int_equal(xml_add_text(child, "abc", 3), FG_OK);
	expect_refused(el, DB_PERR_NO_KEY);
	expect_refused(mk("result", "a.example", "b.example", NULL, NULL, "ab cd"),
		       DB_PERR_BAD_KEY);
	expect_refused(mk("result", "a.example", "b.example", NULL, NULL, "ab\001cd"),
		       DB_PERR_BAD_KEY);
	expect_refused(mk("result", "a.example", "b.example", NULL, NULL, "ab\xc3\xa9"),
		       DB_PERR_BAD_KEY);
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	expect_refused(mk("result", "a.example", "b.example", NULL, NULL, long_key),
		       DB_PERR_BAD_KEY);
	long_key[DIALBACK_KEY_MAX] = '\0';
	el = mk("result", "a.example", "b.example", NULL, NULL, long_key);
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	dialback_msg_clear(&m);
	xml_free(&el);

	/* Every reason has words. */
	for (enum db_perr e = DB_PERR_OK; e <= DB_PERR_NOMEM; e++)
		assert_string_not_equal(dialback_perr_str(e), "unknown error");
	assert_string_equal(dialback_perr_str((enum db_perr)999), "unknown error");
}

/* Whatever the attributes, the parser answers and leaks nothing. */
static void test_parse_any_tree(void **state)
{
	static const char *const names[] = {"result", "verify", "error", ""};
	static const char *const vals[] = {
		NULL, "", "a.example", "-", "\xff\xfe", "a@b/c", "valid", "error", "x y",
	};
	struct db_msg m;
	(void)state;

	for (size_t n = 0; n < FG_ARRAY_LEN(names); n++)
		for (size_t f = 0; f < FG_ARRAY_LEN(vals); f++)
			for (size_t t = 0; t < FG_ARRAY_LEN(vals); t++)
				for (size_t ty = 0; ty < FG_ARRAY_LEN(vals); ty++) {
					struct xml_node *el =
						mk(names[n], vals[f], vals[t], vals[ty], vals[ty],
						   vals[(f + t) % FG_ARRAY_LEN(vals)]);
					if (ty % 2)
						assert_non_null(
							xml_add_child(el, XML_NS_SERVER, "error"));
					enum db_perr rc = dialback_parse(el, &m);
					if (rc == DB_PERR_OK) {
						assert_non_null(m.from);
						assert_non_null(m.to);
					}
					dialback_msg_clear(&m);
					xml_free(&el);
				}
}

static void test_parse_roundtrip(void **state)
{
	struct db_msg m;
	(void)state;

	struct xml_node *el = dialback_verify_request("a.example", "b.example", "s1", "k1");
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	assert_int_equal(m.elem, DB_VERIFY);
	assert_int_equal(m.type, DB_REQUEST);
	assert_string_equal(m.from, "a.example");
	assert_string_equal(m.to, "b.example");
	assert_string_equal(m.id, "s1");
	assert_string_equal(m.key, "k1");
	dialback_msg_clear(&m);
	xml_free(&el);

	el = dialback_result_answer("b.example", "a.example", false);
	assert_int_equal(dialback_parse(el, &m), DB_PERR_OK);
	assert_int_equal(m.elem, DB_RESULT);
	assert_int_equal(m.type, DB_INVALID);
	dialback_msg_clear(&m);
	xml_free(&el);
}

/* ---- tracker ---- */

/* A parsed message built directly; strings are copied so that
 * dialback_msg_clear() can free them. */
static struct db_msg msg(enum db_elem elem, enum db_type type, const char *from, const char *to,
			 const char *id)
{
	struct db_msg m = {
		.elem = elem,
		.type = type,
		.from = strdup(from),
		.to = strdup(to),
		.id = id ? strdup(id) : NULL,
	};
	if (type == DB_REQUEST)
		m.key = strdup("k");
	if (type == DB_ERROR)
		m.cond = DB_COND_REMOTE_SERVER_TIMEOUT;
	return m;
}

/* The peer (remote) asks us to authorize remote -> local on an inbound stream. */
static int in_request(struct db_tracker *t, const char *local, const char *remote)
{
	struct db_msg m = msg(DB_RESULT, DB_REQUEST, remote, local, NULL);
	int rc = dialback_tracker_request(t, &m);
	dialback_msg_clear(&m);
	return rc;
}

static int out_answer(struct db_tracker *t, enum db_elem elem, enum db_type type, const char *from,
		      const char *to, const char *id)
{
	struct db_msg m = msg(elem, type, from, to, id);
	int rc = dialback_tracker_answer(t, &m);
	dialback_msg_clear(&m);
	return rc;
}

static void test_tracker_pairs_independent(void **state)
{
	(void)state;
	struct db_tracker *t = dialback_tracker_new(DB_ROLE_IN, NULL);
	assert_non_null(t);

	assert_int_equal(in_request(t, "contoso.test", "fabrikam.test"), FG_OK);
	assert_int_equal(in_request(t, "contoso.test", "corp.fabrikam.test"), FG_OK);
	assert_int_equal(dialback_tracker_pending(t), 2);
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "fabrikam.test"));

	assert_int_equal(dialback_tracker_settle(t, "contoso.test", "fabrikam.test", DB_VALID),
			 FG_OK);
	assert_true(dialback_tracker_is_authorized(t, "contoso.test", "fabrikam.test"));
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "corp.fabrikam.test"));
	/* Direction matters: local and remote are not interchangeable. */
	assert_false(dialback_tracker_is_authorized(t, "fabrikam.test", "contoso.test"));
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "it.fabrikam.test"));

	assert_int_equal(dialback_tracker_settle(t, "contoso.test", "corp.fabrikam.test", DB_VALID),
			 FG_OK);
	assert_true(dialback_tracker_is_authorized(t, "contoso.test", "corp.fabrikam.test"));
	assert_true(dialback_tracker_is_authorized(t, "contoso.test", "fabrikam.test"));
	assert_int_equal(dialback_tracker_pending(t), 0);

	/* A fresh request for an authorized pair starts over. */
	assert_int_equal(in_request(t, "contoso.test", "fabrikam.test"), FG_OK);
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "fabrikam.test"));
	assert_true(dialback_tracker_is_authorized(t, "contoso.test", "corp.fabrikam.test"));

	dialback_tracker_free(&t);
	assert_null(t);
	dialback_tracker_free(&t);
	dialback_tracker_free(NULL);
}

static void test_tracker_invalid_and_error(void **state)
{
	(void)state;
	struct db_tracker *t = dialback_tracker_new(DB_ROLE_IN, NULL);

	assert_int_equal(in_request(t, "contoso.test", "fabrikam.test"), FG_OK);
	assert_int_equal(in_request(t, "contoso.test", "fabrikam.test"), FG_AGAIN);
	assert_int_equal(dialback_tracker_pending(t), 1);
	assert_int_equal(dialback_tracker_settle(t, "contoso.test", "fabrikam.test", DB_INVALID),
			 FG_OK);
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "fabrikam.test"));
	assert_int_equal(dialback_tracker_pending(t), 0);
	/* Settled once: a second verdict is not ours to apply. */
	assert_int_equal(dialback_tracker_settle(t, "contoso.test", "fabrikam.test", DB_VALID),
			 FG_NOTFOUND);
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "fabrikam.test"));
	/* After invalid the stream must close; no second chance on it. */
	assert_int_equal(in_request(t, "contoso.test", "fabrikam.test"), FG_INVAL);

	/* An error forgets the pair; it may be asked for again. */
	assert_int_equal(in_request(t, "contoso.test", "it.fabrikam.test"), FG_OK);
	assert_int_equal(dialback_tracker_settle(t, "contoso.test", "it.fabrikam.test", DB_ERROR),
			 FG_OK);
	assert_int_equal(dialback_tracker_pending(t), 0);
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "it.fabrikam.test"));
	assert_int_equal(in_request(t, "contoso.test", "it.fabrikam.test"), FG_OK);
	assert_int_equal(dialback_tracker_settle(t, "contoso.test", "it.fabrikam.test", DB_REQUEST),
			 FG_INVAL);
	dialback_tracker_free(&t);
}

static void test_tracker_unsolicited_in(void **state)
{
	(void)state;
	struct db_tracker *t = dialback_tracker_new(DB_ROLE_IN, NULL);

	/* Verdicts for pairs nobody asked about. */
	assert_int_equal(dialback_tracker_settle(t, "contoso.test", "fabrikam.test", DB_VALID),
			 FG_NOTFOUND);
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "fabrikam.test"));
	/* Answers arriving on an inbound stream are never ours, even when
	 * they name a pair the peer asked for. */
	assert_int_equal(in_request(t, "contoso.test", "fabrikam.test"), FG_OK);
	assert_int_equal(out_answer(t, DB_RESULT, DB_VALID, "contoso.test", "fabrikam.test", NULL),
			 FG_NOTFOUND);
	assert_int_equal(out_answer(t, DB_RESULT, DB_VALID, "fabrikam.test", "contoso.test", NULL),
			 FG_NOTFOUND);
	assert_int_equal(out_answer(t, DB_VERIFY, DB_VALID, "fabrikam.test", "contoso.test", "i"),
			 FG_NOTFOUND);
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "fabrikam.test"));
	assert_int_equal(dialback_tracker_pending(t), 1);
	/* Wrong role or wrong message. */
	assert_int_equal(dialback_tracker_sent(t, DB_RESULT, "contoso.test", "fabrikam.test", NULL),
			 FG_INVAL);
	struct db_msg m = msg(DB_VERIFY, DB_REQUEST, "fabrikam.test", "contoso.test", "i");
	assert_int_equal(dialback_tracker_request(t, &m), FG_INVAL);
	assert_int_equal(dialback_tracker_answer(t, &m), FG_INVAL);
	dialback_msg_clear(&m);
	m = msg(DB_RESULT, DB_VALID, "fabrikam.test", "contoso.test", NULL);
	assert_int_equal(dialback_tracker_request(t, &m), FG_INVAL);
	dialback_msg_clear(&m);
	assert_int_equal(dialback_tracker_request(NULL, NULL), FG_INVAL);
	assert_false(dialback_tracker_is_authorized(NULL, "a", "b"));
	dialback_tracker_free(&t);
}

static void test_tracker_originating(void **state)
{
	(void)state;
	struct db_tracker *t = dialback_tracker_new(DB_ROLE_OUT, NULL);

	/* An answer before any request is unsolicited and grants nothing. */
	assert_int_equal(out_answer(t, DB_RESULT, DB_VALID, "fabrikam.test", "contoso.test", NULL),
			 FG_NOTFOUND);
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "fabrikam.test"));

	assert_int_equal(dialback_tracker_sent(t, DB_RESULT, "contoso.test", "fabrikam.test", NULL),
			 FG_OK);
	assert_int_equal(dialback_tracker_sent(t, DB_RESULT, "contoso.test", "fabrikam.test", NULL),
			 FG_AGAIN);
	assert_int_equal(
		dialback_tracker_sent(t, DB_RESULT, "contoso.test", "corp.fabrikam.test", NULL),
		FG_OK);
	/* The answer comes from the remote domain to the local one; one with
	 * the addresses unswapped, or for another pair, matches nothing. */
	assert_int_equal(out_answer(t, DB_RESULT, DB_VALID, "contoso.test", "fabrikam.test", NULL),
			 FG_NOTFOUND);
	assert_int_equal(
		out_answer(t, DB_RESULT, DB_VALID, "it.fabrikam.test", "contoso.test", NULL),
		FG_NOTFOUND);
	assert_int_equal(out_answer(t, DB_RESULT, DB_VALID, "fabrikam.test", "contoso.test", NULL),
			 FG_OK);
	assert_true(dialback_tracker_is_authorized(t, "contoso.test", "fabrikam.test"));
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "corp.fabrikam.test"));
	/* A replayed answer is unsolicited. */
	assert_int_equal(out_answer(t, DB_RESULT, DB_VALID, "fabrikam.test", "contoso.test", NULL),
			 FG_NOTFOUND);

	assert_int_equal(
		out_answer(t, DB_RESULT, DB_INVALID, "corp.fabrikam.test", "contoso.test", NULL),
		FG_OK);
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "corp.fabrikam.test"));
	assert_int_equal(dialback_tracker_pending(t), 0);

	/* A dialback error forgets the pair; a timeout can do the same. */
	assert_int_equal(
		dialback_tracker_sent(t, DB_RESULT, "contoso.test", "it.fabrikam.test", NULL),
		FG_OK);
	assert_int_equal(
		out_answer(t, DB_RESULT, DB_ERROR, "it.fabrikam.test", "contoso.test", NULL),
		FG_OK);
	assert_int_equal(dialback_tracker_pending(t), 0);
	assert_int_equal(
		dialback_tracker_sent(t, DB_RESULT, "contoso.test", "it.fabrikam.test", NULL),
		FG_OK);
	assert_int_equal(dialback_tracker_settle(t, "contoso.test", "it.fabrikam.test", DB_ERROR),
			 FG_OK);
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "it.fabrikam.test"));

	/* Requests arriving on our own outbound stream are not for the tracker. */
	struct db_msg m = msg(DB_RESULT, DB_REQUEST, "fabrikam.test", "contoso.test", NULL);
	assert_int_equal(dialback_tracker_request(t, &m), FG_INVAL);
	dialback_msg_clear(&m);
	dialback_tracker_free(&t);
}

static void test_tracker_verify_matching(void **state)
{
	(void)state;
	struct db_tracker *t = dialback_tracker_new(DB_ROLE_OUT, NULL);

	/* We, contoso.test, ask fabrikam.test's authoritative server about a
	 * key that arrived on our inbound stream "in-7". */
	assert_int_equal(
		dialback_tracker_sent(t, DB_VERIFY, "contoso.test", "fabrikam.test", "in-7"),
		FG_OK);
	assert_int_equal(
		dialback_tracker_sent(t, DB_VERIFY, "contoso.test", "fabrikam.test", "in-7"),
		FG_AGAIN);
	assert_int_equal(
		dialback_tracker_sent(t, DB_VERIFY, "contoso.test", "fabrikam.test", "in-8"),
		FG_OK);
	assert_int_equal(dialback_tracker_sent(t, DB_VERIFY, "contoso.test", "fabrikam.test", NULL),
			 FG_INVAL);
	assert_int_equal(dialback_tracker_pending(t), 2);

	/* Wrong id, unswapped addresses, other domains: unsolicited. */
	assert_int_equal(
		out_answer(t, DB_VERIFY, DB_VALID, "fabrikam.test", "contoso.test", "in-9"),
		FG_NOTFOUND);
	assert_int_equal(
		out_answer(t, DB_VERIFY, DB_VALID, "contoso.test", "fabrikam.test", "in-7"),
		FG_NOTFOUND);
	assert_int_equal(out_answer(t, DB_VERIFY, DB_VALID, "litware.test", "contoso.test", "in-7"),
			 FG_NOTFOUND);
	/* A db:result answer does not close a db:verify. */
	assert_int_equal(out_answer(t, DB_RESULT, DB_VALID, "fabrikam.test", "contoso.test", NULL),
			 FG_NOTFOUND);
	assert_int_equal(dialback_tracker_pending(t), 2);

	assert_int_equal(
		out_answer(t, DB_VERIFY, DB_VALID, "fabrikam.test", "contoso.test", "in-7"), FG_OK);
	/* Once only. */
	assert_int_equal(
		out_answer(t, DB_VERIFY, DB_VALID, "fabrikam.test", "contoso.test", "in-7"),
		FG_NOTFOUND);
	assert_int_equal(
		out_answer(t, DB_VERIFY, DB_ERROR, "fabrikam.test", "contoso.test", "in-8"), FG_OK);
	assert_int_equal(dialback_tracker_pending(t), 0);
	/* A verify answer authorizes no pair by itself. */
	assert_false(dialback_tracker_is_authorized(t, "contoso.test", "fabrikam.test"));
	dialback_tracker_free(&t);
}

static void test_tracker_pending_cap(void **state)
{
	char dom[64];
	(void)state;

	/* The default cap, on an inbound stream. */
	struct db_tracker *t = dialback_tracker_new(DB_ROLE_IN, NULL);
	for (int i = 0; i < DIALBACK_MAX_PENDING - 1; i++) {
		snprintf(dom, sizeof(dom), "d%d.fabrikam.test", i);
		assert_int_equal(in_request(t, "contoso.test", dom), FG_OK);
	}
	assert_int_equal(dialback_tracker_pending(t), DIALBACK_MAX_PENDING - 1);
	assert_int_equal(in_request(t, "contoso.test", "last.fabrikam.test"), FG_OK);
	assert_int_equal(dialback_tracker_pending(t), DIALBACK_MAX_PENDING);
	assert_int_equal(in_request(t, "contoso.test", "over.fabrikam.test"), FG_LIMIT);
	assert_int_equal(dialback_tracker_pending(t), DIALBACK_MAX_PENDING);
	/* Room again once one settles; settled pairs do not count. */
	assert_int_equal(dialback_tracker_settle(t, "contoso.test", "d0.fabrikam.test", DB_VALID),
			 FG_OK);
	assert_int_equal(in_request(t, "contoso.test", "over.fabrikam.test"), FG_OK);
	assert_int_equal(in_request(t, "contoso.test", "d0.fabrikam.test"), FG_LIMIT);
	assert_true(dialback_tracker_is_authorized(t, "contoso.test", "d0.fabrikam.test"));
	dialback_tracker_free(&t);

	/* A configured cap, on an outbound stream: results and verifies share it. */
	struct db_tracker_limits lim = {.max_pending = 3};
	t = dialback_tracker_new(DB_ROLE_OUT, &lim);
	assert_int_equal(dialback_tracker_sent(t, DB_RESULT, "contoso.test", "a.test", NULL),
			 FG_OK);
	assert_int_equal(dialback_tracker_sent(t, DB_VERIFY, "contoso.test", "a.test", "s1"),
			 FG_OK);
	assert_int_equal(dialback_tracker_sent(t, DB_VERIFY, "contoso.test", "a.test", "s2"),
			 FG_OK);
	assert_int_equal(dialback_tracker_sent(t, DB_VERIFY, "contoso.test", "a.test", "s3"),
			 FG_LIMIT);
	assert_int_equal(dialback_tracker_sent(t, DB_RESULT, "contoso.test", "b.test", NULL),
			 FG_LIMIT);
	assert_int_equal(out_answer(t, DB_VERIFY, DB_VALID, "a.test", "contoso.test", "s1"), FG_OK);
	assert_int_equal(dialback_tracker_sent(t, DB_VERIFY, "contoso.test", "a.test", "s3"),
			 FG_OK);
	dialback_tracker_free(&t);

	/* The cap on all pairs, settled ones included. */
	lim = (struct db_tracker_limits){.max_pending = 8, .max_pairs = 2};
	t = dialback_tracker_new(DB_ROLE_IN, &lim);
	assert_int_equal(in_request(t, "contoso.test", "a.test"), FG_OK);
	assert_int_equal(dialback_tracker_settle(t, "contoso.test", "a.test", DB_VALID), FG_OK);
	assert_int_equal(in_request(t, "contoso.test", "b.test"), FG_OK);
	assert_int_equal(in_request(t, "contoso.test", "c.test"), FG_LIMIT);
	dialback_tracker_free(&t);
}

struct seen {
	int results, verifies;
	char last_id[32];
};

static void count_pending(void *arg, enum db_elem elem, const char *local, const char *remote,
			  const char *id)
{
	struct seen *s = arg;
	assert_string_equal(local, "contoso.test");
	assert_non_null(remote);
	if (elem == DB_RESULT) {
		assert_null(id);
		s->results++;
	} else {
		assert_non_null(id);
		snprintf(s->last_id, sizeof(s->last_id), "%s", id);
		s->verifies++;
	}
}

static void test_tracker_foreach_pending(void **state)
{
	struct seen s = {0};
	(void)state;
	struct db_tracker *t = dialback_tracker_new(DB_ROLE_OUT, NULL);

	assert_int_equal(dialback_tracker_sent(t, DB_RESULT, "contoso.test", "a.test", NULL),
			 FG_OK);
	assert_int_equal(dialback_tracker_sent(t, DB_RESULT, "contoso.test", "b.test", NULL),
			 FG_OK);
	assert_int_equal(dialback_tracker_sent(t, DB_VERIFY, "contoso.test", "a.test", "in-1"),
			 FG_OK);
	assert_int_equal(out_answer(t, DB_RESULT, DB_VALID, "b.test", "contoso.test", NULL), FG_OK);
	dialback_tracker_foreach_pending(t, count_pending, &s);
	assert_int_equal(s.results, 1);
	assert_int_equal(s.verifies, 1);
	assert_string_equal(s.last_id, "in-1");
	dialback_tracker_foreach_pending(NULL, count_pending, &s);
	dialback_tracker_foreach_pending(t, NULL, &s);
	dialback_tracker_free(&t);
}

/* ---- authoritative role ---- */

static bool is_montague(void *arg, const char *domain)
{
	int *calls = arg;
	(*calls)++;
	return strcmp(domain, "montague.example") == 0;
}

static struct xml_node *authoritative(const char *from, const char *to, const char *id,
				      const char *key, enum db_type *verdict, int *calls)
{
	struct xml_node *req = dialback_verify_request(from, to, id, key);
	struct db_msg m;
	assert_int_equal(dialback_parse(req, &m), DB_PERR_OK);
	xml_free(&req);
	struct xml_node *ans =
		dialback_authoritative(MONTAGUE_SECRET, &m, is_montague, calls, verdict);
	dialback_msg_clear(&m);
	return ans;
}

static void test_authoritative(void **state)
{
	enum db_type v = DB_REQUEST;
	int calls = 0;
	(void)state;

	/* XEP-0220 Examples 13 and 14. */
	expect_xml(authoritative("capulet.example", "montague.example", "417GAF25", XEP220_KEY_2,
				 &v, &calls),
		   "<db:verify from='montague.example' to='capulet.example' id='417GAF25' "
		   "type='valid'/>");
	assert_int_equal(v, DB_VALID);
	assert_int_equal(calls, 1);

	/* Another id, another receiving domain, a key of another secret. */
	expect_xml(authoritative("capulet.example", "montague.example", "417GAF26", XEP220_KEY_2,
				 &v, &calls),
		   "<db:verify from='montague.example' to='capulet.example' id='417GAF26' "
		   "type='invalid'/>");
	assert_int_equal(v, DB_INVALID);
	expect_xml(authoritative("litware.example", "montague.example", "417GAF25", XEP220_KEY_2,
				 &v, &calls),
		   "<db:verify from='montague.example' to='litware.example' id='417GAF25' "
		   "type='invalid'/>");
	assert_int_equal(v, DB_INVALID);
	expect_xml(authoritative("capulet.example", "montague.example", "417GAF25", "not-hex", &v,
				 &calls),
		   "<db:verify from='montague.example' to='capulet.example' id='417GAF25' "
		   "type='invalid'/>");
	assert_int_equal(v, DB_INVALID);

	/* We never vouch for a domain that is not ours, even with a key that
	 * our secret would make (XEP-0220 Example 15). */
	char key[DIALBACK_KEY_HEX_LEN + 1];
	assert_int_equal(dialback_key(MONTAGUE_SECRET, "montague.example", "capulet.example",
				      "D60000229F", key),
			 FG_OK);
	expect_xml(
		authoritative("montague.example", "capulet.example", "D60000229F", key, &v, &calls),
		"<db:verify from='capulet.example' to='montague.example' id='D60000229F' "
		"type='error'><error type='cancel'><item-not-found "
		"xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:verify>");
	assert_int_equal(v, DB_ERROR);

	/* Only db:verify requests get an answer. */
	struct db_msg m = msg(DB_RESULT, DB_REQUEST, "capulet.example", "montague.example", NULL);
	assert_null(dialback_authoritative(MONTAGUE_SECRET, &m, is_montague, &calls, &v));
	dialback_msg_clear(&m);
	m = msg(DB_VERIFY, DB_VALID, "capulet.example", "montague.example", "i");
	assert_null(dialback_authoritative(MONTAGUE_SECRET, &m, is_montague, &calls, &v));
	dialback_msg_clear(&m);
	assert_null(dialback_authoritative(MONTAGUE_SECRET, NULL, is_montague, &calls, &v));
	/* Without a predicate nothing is local. */
	m = msg(DB_VERIFY, DB_REQUEST, "capulet.example", "montague.example", "417GAF25");
	free(m.key);
	m.key = strdup(XEP220_KEY_2);
	struct xml_node *ans = dialback_authoritative(MONTAGUE_SECRET, &m, NULL, NULL, &v);
	assert_int_equal(v, DB_ERROR);
	xml_free(&ans);
	dialback_msg_clear(&m);
}

/* ---- a whole exchange ---- */

/* Serializes, then parses the element as the peer would see it. */
static void wire(struct xml_node **el, struct db_msg *m)
{
	assert_non_null(*el);
	assert_int_equal(dialback_parse(*el, m), DB_PERR_OK);
	xml_free(el);
}

static bool is_capulet(void *arg, const char *domain)
{
	(void)arg;
	return strcmp(domain, "capulet.example") == 0;
}

/* capulet.example (Initiating, then Authoritative) gets authorized at
 * montague.example (Receiving), XEP-0220 §2.1.1/§2.2.1 with the XEP's data. */
static void test_full_exchange(void **state)
{
	const char *in_id = "D60000229F"; /* montague's id on the inbound stream */
	char key[DIALBACK_KEY_HEX_LEN + 1];
	struct db_msg m;
	enum db_type v;
	(void)state;

	struct db_tracker *cap_out =
		dialback_tracker_new(DB_ROLE_OUT, NULL);		    /* capulet->montague */
	struct db_tracker *mon_in = dialback_tracker_new(DB_ROLE_IN, NULL); /* same stream */
	struct db_tracker *mon_out =
		dialback_tracker_new(DB_ROLE_OUT, NULL); /* montague->capulet */

	/* Step 1: capulet sends its key. */
	assert_int_equal(
		dialback_key(CAPULET_SECRET, "montague.example", "capulet.example", in_id, key),
		FG_OK);
	assert_string_equal(key, XEP220_KEY_1);
	struct xml_node *el = dialback_result_request("capulet.example", "montague.example", key);
	assert_int_equal(dialback_tracker_sent(cap_out, DB_RESULT, "capulet.example",
					       "montague.example", NULL),
			 FG_OK);
	wire(&el, &m);
	assert_int_equal(dialback_tracker_request(mon_in, &m), FG_OK);

	/* Step 2: montague asks capulet's authoritative server. */
	el = dialback_verify_request(m.to, m.from, in_id, m.key);
	assert_int_equal(dialback_tracker_sent(mon_out, DB_VERIFY, m.to, m.from, in_id), FG_OK);
	dialback_msg_clear(&m);
	wire(&el, &m);

	/* Step 3: capulet answers as authoritative server. */
	el = dialback_authoritative(CAPULET_SECRET, &m, is_capulet, NULL, &v);
	assert_int_equal(v, DB_VALID);
	dialback_msg_clear(&m);
	wire(&el, &m);
	assert_int_equal(dialback_tracker_answer(mon_out, &m), FG_OK);
	assert_string_equal(m.id, in_id);

	/* Step 4: montague settles the pair on the inbound stream named by the
	 * id and tells capulet. */
	assert_int_equal(dialback_tracker_settle(mon_in, m.to, m.from, m.type), FG_OK);
	assert_true(dialback_tracker_is_authorized(mon_in, "montague.example", "capulet.example"));
	el = dialback_result_answer(m.to, m.from, m.type == DB_VALID);
	dialback_msg_clear(&m);
	wire(&el, &m);
	assert_int_equal(dialback_tracker_answer(cap_out, &m), FG_OK);
	assert_true(dialback_tracker_is_authorized(cap_out, "capulet.example", "montague.example"));
	dialback_msg_clear(&m);

	dialback_tracker_free(&cap_out);
	dialback_tracker_free(&mon_in);
	dialback_tracker_free(&mon_out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_xep_vectors),
		cmocka_unit_test(test_key_every_input_counts),
		cmocka_unit_test(test_key_bad_args),
		cmocka_unit_test(test_key_check),
		cmocka_unit_test(test_build_serialize),
		cmocka_unit_test(test_build_error_types),
		cmocka_unit_test(test_build_bad_args),
		cmocka_unit_test(test_parse_requests),
		cmocka_unit_test(test_parse_answers),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_parse_any_tree),
		cmocka_unit_test(test_parse_roundtrip),
		cmocka_unit_test(test_tracker_pairs_independent),
		cmocka_unit_test(test_tracker_invalid_and_error),
		cmocka_unit_test(test_tracker_unsolicited_in),
		cmocka_unit_test(test_tracker_originating),
		cmocka_unit_test(test_tracker_verify_matching),
		cmocka_unit_test(test_tracker_pending_cap),
		cmocka_unit_test(test_tracker_foreach_pending),
		cmocka_unit_test(test_authoritative),
		cmocka_unit_test(test_full_exchange),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
