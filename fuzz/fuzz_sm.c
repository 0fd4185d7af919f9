/* libFuzzer target for the XEP-0198 element handling of sm.c. The first
 * byte chooses: an element a client sends (<enable/>, <a/>, <r/>,
 * <resume/>) parsed as c2s.c parses it, where every accepted h must print
 * back as the same number; or a run of pushes and acknowledgements with
 * peer-chosen h values over a queue that starts anywhere in the 2^32
 * range, where the queue must always hold exactly the stanzas numbered
 * out_h-n+1 .. out_h, in order. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fg.h"
#include "sm.h"
#include "xml.h"
#include "xmlstream.h"

static void element(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	struct xml_node *el = xmlstream_parse_one(text);
	free(text);
	if (!el)
		return;
	uint32_t h = 0;
	const char *hs = xml_attr(el, "h");
	if (sm_parse_h(hs, &h)) {
		char back[16];
		snprintf(back, sizeof(back), "%" PRIu32, h);
		while (hs[0] == '0' && hs[1])
			hs++;
		CHECK(strcmp(back, hs) == 0);
	}
	(void)sm_parse_bool(xml_attr(el, "resume"));
	const char *previd = xml_attr(el, "previd");
	if (sm_id_valid(previd))
		CHECK(strlen(previd) == SM_ID_LEN);
	xml_free(&el);
}

static uint32_t seq_of(const struct xml_node *st)
{
	uint32_t v = 0;
	CHECK(sm_parse_h(xml_attr(st, "id"), &v));
	return v;
}

static void check_queue(const struct sm *sm)
{
	unsigned n = 0;
	uint32_t want = sm->out_h - (uint32_t)sm->n + 1;
	for (const struct sm_item *it = sm->head; it; it = it->next, n++, want++)
		CHECK(seq_of(it->st) == want);
	CHECK(n == sm->n);
}

static void queue(const uint8_t *data, size_t size)
{
	struct sm *sm = sm_new(64, false);
	if (!sm || size < 4) {
		sm_free(&sm);
		return;
	}
	memcpy(&sm->out_h, data, 4);
	data += 4;
	size -= 4;
	for (; size >= 5; data += 5, size -= 5) {
		uint32_t v;
		memcpy(&v, data + 1, 4);
		if (data[0] & 1) {
			unsigned before = sm->n, drop = 0;
			enum sm_ack want = sm_ack_count(sm->out_h, sm->n, v, &drop);
			CHECK(sm_ack(sm, v) == want);
			CHECK(want == SM_ACK_OK ? sm->n == before - drop : sm->n == before);
			if (want == SM_ACK_OK)
				CHECK(sm->n == sm->out_h - v);
		} else if (data[0] & 2) {
			struct xml_node *st = sm_unpush(sm);
			xml_free(&st);
		} else if (sm->n < sm->cap) {
			char id[16];
			struct xml_node *st = xml_new(XML_NS_SERVER, "message");
			snprintf(id, sizeof(id), "%" PRIu32, sm->out_h + 1);
			if (!st || xml_set_attr(st, NULL, "id", id) != FG_OK ||
			    sm_push(sm, st) != FG_OK)
				xml_free(&st);
		}
		check_queue(sm);
	}
	sm_free(&sm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		queue(data + 1, size - 1);
	else
		element(data + 1, size - 1);
	return 0;
}
