/* libFuzzer target for what a node reads from Redis (xmpp/cluster_reg.c):
 * the input is split at NUL bytes into fields; the first is decoded as a
 * registry record (creg_decode), and the fields, taken in pairs of name and
 * value, as a forwarded stanza's envelope (cluster_env_parse). Redis holds
 * what any process with access wrote, so every byte is hostile.
 *
 * Invariants: no crash or leak; a decoded record has a valid node name and
 * a priority within -128..127, and encodes back to the same bytes; an
 * accepted envelope has a valid origin and a message, presence or iq in
 * jabber:server with from and to; a carbon is a message to a full JID. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cluster_reg.h"
#include "fuzz.h"
#include "log.h"
#include "xml.h"

#define FIELDS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	if (!quiet) {
		log_set_level(LOG_ERROR);
		quiet = true;
	}
	const char *f[FIELDS];
	size_t len[FIELDS], n = 0, start = 0;
	for (size_t i = 0; i <= size && n < FIELDS; i++) {
		if (i == size || data[i] == '\0') {
			f[n] = (const char *)data + start;
			len[n] = i - start;
			n++;
			start = i + 1;
		}
	}
	struct creg_rec r;
	if (n > 0 && creg_decode(f[0], len[0], &r)) {
		CHECK(creg_node_valid(r.node));
		CHECK(r.priority >= -128 && r.priority <= 127);
		char back[96];
		CHECK(creg_encode(&r, back, sizeof(back)));
		CHECK(strlen(back) == len[0] && memcmp(back, f[0], len[0]) == 0);
	}
	const char *names[FIELDS / 2], *values[FIELDS / 2];
	size_t nl[FIELDS / 2], vl[FIELDS / 2], pairs = 0;
	for (size_t i = 0; i + 1 < n; i += 2, pairs++) {
		names[pairs] = f[i];
		nl[pairs] = len[i];
		values[pairs] = f[i + 1];
		vl[pairs] = len[i + 1];
	}
	struct cluster_env e;
	char why[200];
	if (cluster_env_parse(names, nl, values, vl, pairs, &e, why, sizeof(why))) {
		CHECK(creg_node_valid(e.origin));
		CHECK(e.stanza && xml_attr(e.stanza, "from") && xml_attr(e.stanza, "to"));
		CHECK(xml_is(e.stanza, XML_NS_SERVER, "message") ||
		      xml_is(e.stanza, XML_NS_SERVER, "presence") ||
		      xml_is(e.stanza, XML_NS_SERVER, "iq"));
		CHECK(!e.carbon || (xml_is(e.stanza, XML_NS_SERVER, "message") &&
				    strchr(xml_attr(e.stanza, "to"), '/')));
		CHECK(!(e.carbon && e.local_only));
		xml_free(&e.stanza);
	} else {
		CHECK(e.stanza == NULL);
	}
	return 0;
}
