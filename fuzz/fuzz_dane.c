/* libFuzzer target for the TLSA records of a DNS server's answer: the
 * wire-format reader (dane_parse_tlsa), checked against dns.c's reading
 * of the same reply (dns_parse_answer counts the records dane.c reads or
 * skips), and the text a log line and `probe` show for them. The input is
 * the reply as libunbound hands it over. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "dane.h"
#include "dns.h"

#define CAP 4 /* below DANE_MAX_RECORDS, so the cap is reached too */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dane_tlsa recs[CAP];
	static struct dane_host h;
	struct dns_answer a;
	size_t skipped = 99;
	char text[700];

	int n = dane_parse_tlsa(size ? data : NULL, size, recs, CAP, &skipped);
	CHECK(n >= -1 && n <= CAP);
	dns_parse_answer(size ? data : NULL, size, 0, DNS_QTYPE_TLSA, &a, NULL, 0);
	/* Both walk the reply the same way: where dns.c found the reply
	 * sound, every TLSA record it counted was read or skipped here. */
	if (a.st == DNS_ST_DATA || a.st == DNS_ST_NODATA)
		CHECK(n >= 0 && (size_t)n + skipped == a.n);
	if (n < 0)
		return 0;
	memset(&h, 0, sizeof(h));
	h.st = DANE_ST_RECORDS;
	h.n = (size_t)n;
	h.skipped = skipped;
	strcpy(h.qname, "_5269._tcp.xmpp.fabrikam.test");
	for (int i = 0; i < n; i++) {
		CHECK(recs[i].len >= 1 && recs[i].len <= DANE_DATA_MAX);
		dane_tlsa_text(&recs[i], text, sizeof(text));
		CHECK(memchr(text, '\0', sizeof(text)) != NULL);
		h.recs[i] = recs[i];
	}
	dane_host_text(&h, text, 64);
	CHECK(strlen(text) < 64);
	return 0;
}
