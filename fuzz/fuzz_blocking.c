/* libFuzzer target for the XEP-0191 request parser (blocking_parse): a
 * client's iq, as the stream core would hand it over (parsed by
 * xmlstream_parse_one), read as blocklist / block / unblock. No crash or
 * leak on any input; an accepted request has at most BLOCKING_MAX_ITEMS
 * items, each a prepared JID (parsing it again gives the same text) that
 * matches itself, none twice, and a block has at least one; a refused one
 * names a stanza error type, condition and text. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "blocking.h"
#include "fg.h"
#include "jid.h"
#include "xml.h"
#include "xmlstream.h"

static void check_item(const char *s)
{
	struct jid j;
	enum jid_err rc = jid_parse(s, strlen(s), &j);

	CHECK(rc == JID_OK || rc == JID_ERR_NOMEM);
	if (rc != JID_OK)
		return;
	char *again = jid_to_string(&j, false);
	if (again != NULL)
		CHECK(strcmp(again, s) == 0);
	free(again);
	CHECK(blocking_matches(&j, &j));
	jid_clear(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct xml_node *iq = xmlstream_parse_one(text);
	free(text);
	if (iq == NULL)
		return 0;
	struct blocking_req req;
	const char *type = NULL, *cond = NULL, *why = NULL;
	int rc = blocking_parse(iq, &req, &type, &cond, &why);

	CHECK(rc == FG_OK || rc == FG_INVAL);
	if (rc == FG_OK) {
		CHECK(blocking_is_request(iq));
		CHECK(req.n <= BLOCKING_MAX_ITEMS);
		CHECK(req.op != BLOCKING_BLOCK || req.n > 0);
		CHECK(req.op != BLOCKING_GET || req.n == 0);
		for (size_t i = 0; i < req.n; i++) {
			check_item(req.jids[i]);
			for (size_t k = 0; k < i; k++)
				CHECK(strcmp(req.jids[i], req.jids[k]) != 0);
		}
		blocking_req_clear(&req);
	} else {
		CHECK(type != NULL && cond != NULL && why != NULL);
		CHECK(req.jids == NULL && req.n == 0);
	}
	xml_free(&iq);
	return 0;
}
