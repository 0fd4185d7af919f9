/* The cluster's registry records, its cache and the forwarded stanza's
 * envelope (cluster_reg.h): the pure parts, without Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cluster_reg.h"
#include "fg.h"

#include <string.h>

static void test_record_round_trip(void **state)
{
	(void)state;
	struct creg_rec r = {"n-1.a_b", -128, true}, back;
	char buf[96];
	assert_true(creg_encode(&r, buf, sizeof(buf)));
	assert_string_equal(buf, "n-1.a_b -128 1");
	assert_true(creg_decode(buf, strlen(buf), &back));
	assert_string_equal(back.node, "n-1.a_b");
	assert_int_equal(back.priority, -128);
	assert_true(back.available);
	assert_true(creg_decode("n2 0 0", 6, &back));
	assert_false(back.available);
	/* a record that does not fit is not written */
	assert_false(creg_encode(&r, buf, 8));
}

static void test_record_garbage(void **state)
{
	(void)state;
	struct creg_rec r;
	const char *bad[] = {
		"",
		"n1",
		"n1 5",
		"n1 5 2",
		"n1 x 1",
		"n1 128 1",
		"n1 -129 1",
		"n 1 5 1",
		"n/1 5 1",
		" 5 1",
		"n1  5 1",
		"n1 5 1 ",
		"n1 5 10",
		"n1 +5x 1",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 1 1",
	};
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++)
		assert_false(creg_decode(bad[i], strlen(bad[i]), &r));
	/* a NUL inside is not a record */
	assert_false(creg_decode("n1\0 5 1", 7, &r));
	assert_false(creg_node_valid(""));
	assert_false(creg_node_valid("a b"));
	assert_true(creg_node_valid("node-3.example"));
}

static void test_cache_and_choice(void **state)
{
	(void)state;
	struct creg *c = creg_new();
	assert_non_null(c);
	struct creg_rec n1a = {"n1", 5, true}, n2b = {"n2", 1, true}, n3neg = {"n3", -1, true},
			n4away = {"n4", 10, false}, n2c = {"n2", 0, true};
	assert_int_equal(creg_set(c, "bob@x/a", &n1a), FG_OK);
	assert_int_equal(creg_set(c, "bob@x/b", &n2b), FG_OK);
	assert_int_equal(creg_set(c, "bob@x/n", &n3neg), FG_OK);
	assert_int_equal(creg_set(c, "bob@x/w", &n4away), FG_OK);
	assert_int_equal(creg_set(c, "bob@x/c", &n2c), FG_OK);
	assert_int_equal(creg_set(c, "bob@x", &n2c), FG_ERR); /* not a full JID */
	assert_string_equal(creg_get(c, "bob@x/b")->node, "n2");
	assert_null(creg_get(c, "bob@x/z"));

	char out[8][CREG_NODE_MAX];
	/* a message: available, non-negative, other nodes, each once */
	assert_int_equal(creg_nodes_for(c, "bob@x", "n1", true, out, 8), 1);
	assert_string_equal(out[0], "n2");
	/* presence: every available resource, negative priority too */
	assert_int_equal(creg_nodes_for(c, "bob@x", "n1", false, out, 8), 2);
	assert_string_equal(out[0], "n2");
	assert_string_equal(out[1], "n3");
	assert_int_equal(creg_nodes_for(c, "bob@x", "n2", true, out, 8), 1);
	assert_string_equal(out[0], "n1");
	assert_int_equal(creg_nodes_for(c, "nobody@x", "n1", true, out, 8), 0);
	assert_int_equal(creg_count_node(c, "n2"), 2);

	/* a record replaced, then removed */
	struct creg_rec moved = {"n5", 3, true};
	assert_int_equal(creg_set(c, "bob@x/b", &moved), FG_OK);
	assert_string_equal(creg_get(c, "bob@x/b")->node, "n5");
	creg_del(c, "bob@x/b");
	creg_del(c, "bob@x/b");
	assert_null(creg_get(c, "bob@x/b"));
	assert_int_equal(creg_count_node(c, "n2"), 1);
	/* a node that left takes its sessions along */
	assert_int_equal(creg_set(c, "carol@x/z", &n2c), FG_OK);
	creg_drop_node(c, "n2");
	assert_int_equal(creg_count_node(c, "n2"), 0);
	assert_null(creg_get(c, "carol@x/z"));
	assert_non_null(creg_get(c, "bob@x/a"));
	creg_clear(c);
	assert_null(creg_get(c, "bob@x/a"));
	creg_free(&c);
	assert_null(c);
}

static bool env(const char *o, const char *m, const char *s, struct cluster_env *e)
{
	const char *names[] = {"o", "m", "s"}, *values[] = {o, m, s};
	size_t nl[] = {1, 1, 1}, vl[] = {strlen(o), strlen(m), strlen(s)};
	char why[200];
	return cluster_env_parse(names, nl, values, vl, 3, e, why, sizeof(why));
}

static void test_envelope(void **state)
{
	(void)state;
	struct cluster_env e;
	assert_true(env("n2", "l",
			"<message xmlns='jabber:server' from='a@x/r' to='b@x'><body>hi</body>"
			"</message>",
			&e));
	assert_string_equal(e.origin, "n2");
	assert_true(e.local_only);
	assert_true(xml_is(e.stanza, XML_NS_SERVER, "message"));
	xml_free(&e.stanza);
	assert_true(env("n2", "r",
			"<iq xmlns='jabber:server' from='a@x/r' to='b@x/s' type='get' "
			"id='1'/>",
			&e));
	assert_false(e.local_only);
	xml_free(&e.stanza);

	const char *bad_st[] = {
		"",
		"<message",
		"<message xmlns='jabber:server' to='b@x'/>",	    /* no from */
		"<message xmlns='jabber:server' from='a@x'/>",	    /* no to */
		"<foo xmlns='jabber:server' from='a@x' to='b@x'/>", /* not a stanza */
		"<message xmlns='jabber:client' from='a@x' to='b@x'/>",
	};
	for (size_t i = 0; i < FG_ARRAY_LEN(bad_st); i++) {
		assert_false(env("n2", "r", bad_st[i], &e));
		assert_null(e.stanza);
	}
	const char *ok = "<message xmlns='jabber:server' from='a@x' to='b@x'/>";
	assert_false(env("n 2", "r", ok, &e));
	assert_false(env("n2", "x", ok, &e));
	assert_false(env("", "r", ok, &e));
	/* a missing field */
	const char *names[] = {"o", "s"}, *values[] = {"n2", ok};
	size_t nl[] = {1, 1}, vl[] = {2, strlen(ok)};
	char why[200];
	assert_false(cluster_env_parse(names, nl, values, vl, 2, &e, why, sizeof(why)));
	assert_non_null(strstr(why, "mode"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_round_trip),
		cmocka_unit_test(test_record_garbage),
		cmocka_unit_test(test_cache_and_choice),
		cmocka_unit_test(test_envelope),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
