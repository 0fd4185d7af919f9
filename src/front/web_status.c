/* Federation status (/status) and who tried to federate (/refused).
 *
 * Both are read at 1280 px: human column names, sizes and ages in human
 * units, the certificate verdict as one short word with the full text on a
 * details line under the row, and one filter box over every list. */
#include "web_page.h"

#include "fg.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char web_css_status[] =
	"table.status td{overflow-wrap:break-word}"
	"table.status td.num,table.status td.nowrap{white-space:nowrap}"
	"table.status td.reason{min-width:18em}"
	"table.status tr.details td{border-top:0;background:#fafbfc;font-size:.9em;"
	"color:#3a4a5a;padding-top:.15em}"
	"table.status tr.has-details td{border-bottom:0}"
	"table.status tr.details dl{margin:0;display:grid;grid-template-columns:max-content 1fr;"
	"gap:.1em .8em}"
	"table.status tr.details dt{font-weight:600}table.status tr.details dd{margin:0}"
	".cert{display:inline-block;border-radius:3px;padding:0 .45em;font-size:.9em;"
	"white-space:nowrap}"
	".cert.good{background:#e6f4ea;color:#1e5e2f}"
	".cert.bad{background:#fde8e6;color:#8c1d18}"
	".cert.none{background:#eef1f4;color:#5a6672}";

/* ---- words and units ---- */

static void human_bytes(struct evbuffer *b, long long n)
{
	if (n < 1024)
		evbuffer_add_printf(b, "%lld B", n);
	else if (n < 1024 * 1024)
		evbuffer_add_printf(b, "%.1f KB", n / 1024.0);
	else if (n < 1024LL * 1024 * 1024)
		evbuffer_add_printf(b, "%.1f MB", n / (1024.0 * 1024));
	else
		evbuffer_add_printf(b, "%.1f GB", n / (1024.0 * 1024 * 1024));
}

static void human_age(struct evbuffer *b, long long s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		evbuffer_add_printf(b, "%lld s", s);
	else if (s < 3600)
		evbuffer_add_printf(b, "%lld min", s / 60);
	else if (s < 86400)
		evbuffer_add_printf(b, "%lld h %lld min", s / 3600, s % 3600 / 60);
	else
		evbuffer_add_printf(b, "%lld d %lld h", s / 86400, s % 86400 / 3600);
}

/* "2026-12-06T08:01:02Z" as "08:01:02 (3 min ago)", with the date only
 * when it is not today (UTC, as the page says). */
static void human_time(struct evbuffer *b, const char *iso)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *rest = iso ? strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!rest) {
		http_html(b, iso && *iso ? iso : "-");
		return;
	}
	time_t t = timegm(&tm), now = time(NULL);
	struct tm today;
	gmtime_r(&now, &today);
	char buf[40];
	strftime(buf, sizeof(buf),
		 today.tm_yday == tm.tm_yday && today.tm_year == tm.tm_year ? "%H:%M:%S"
									    : "%Y-%m-%d %H:%M",
		 &tm);
	evbuffer_add_printf(b, "<time datetime=\"");
	http_html(b, iso);
	evbuffer_add_printf(b, "\">%s</time> <span class=\"muted\">(", buf);
	if (t > now) {
		evbuffer_add_printf(b, "in ");
		human_age(b, (long long)(t - now));
	} else {
		human_age(b, (long long)(now - t));
		evbuffer_add_printf(b, " ago");
	}
	evbuffer_add_printf(b, ")</span>");
}

static const char *direction_word(const char *d)
{
	static const struct {
		const char *value, *word;
	} words[] = {
		{"in", "Inbound"}, {"out", "Outbound"}, {"c2s", "Client"}, {"partner", "Partner"}};
	for (size_t i = 0; d && i < FG_ARRAY_LEN(words); i++)
		if (strcmp(words[i].value, d) == 0)
			return words[i].word;
	return d ? d : "";
}

static long long num(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static void td_text(struct evbuffer *b, const char *cls, const char *s)
{
	evbuffer_add_printf(b, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "",
			    cls ? "\"" : "");
	http_html(b, s && *s ? s : "-");
	evbuffer_add_printf(b, "</td>");
}

/* A table's head; extra: an unnamed last column (the row's actions). */
/* A domain that may break after its dots, never inside a label: a long
 * partner name wraps instead of widening the page. */
static void td_domain(struct evbuffer *b, const char *d)
{
	evbuffer_add_printf(b, "<td class=\"domain\">");
	if (!d || !*d)
		evbuffer_add_printf(b, "-");
	for (const char *p = d; p && *p;) {
		size_t n = strcspn(p, ".");
		char label[256];
		snprintf(label, sizeof(label), "%.*s", (int)(n < 255 ? n : 255), p);
		http_html(b, label);
		p += n;
		if (*p == '.') {
			evbuffer_add_printf(b, ".<wbr>");
			p++;
		}
	}
	evbuffer_add_printf(b, "</td>");
}

static void heads(struct evbuffer *b, const char *id, const char *const *names, size_t n,
		  bool extra)
{
	evbuffer_add_printf(b, "<table class=\"status\" id=\"%s\"><thead><tr>", id);
	for (size_t i = 0; i < n; i++)
		evbuffer_add_printf(b, "<th>%s</th>", names[i]);
	evbuffer_add_printf(b, "%s</tr></thead><tbody>", extra ? "<th></th>" : "");
}

/* One labelled line of a details row; nothing when text is empty. */
static void detail(struct evbuffer *b, const char *label, const char *text)
{
	if (!text || !*text || strcmp(text, "none") == 0)
		return;
	evbuffer_add_printf(b, "<dt>%s</dt><dd>", label);
	http_html(b, text);
	evbuffer_add_printf(b, "</dd>");
}

/* ---- /status ---- */

static const char *const stream_heads[] = {
	"Direction", "Local domain", "Partner domain", "State", "Method",
	"TLS",	     "Certificate",  "In / out",       "Age",
};

static void stream_row(struct evbuffer *b, json_t *r)
{
	const char *tls = str(r, "tls"), *cert = str(r, "certificate"), *err = str(r, "last_error"),
		   *cls;
	const char *word = web_cert_word(cert, &cls);
	/* "TLSv1.3 TLS_AES_256_GCM_SHA384": the version in the column, the
	 * cipher on the details line. */
	char version[32] = "none";
	if (strncmp(tls, "TLSv", 4) == 0) {
		snprintf(version, sizeof(version), "TLS %.*s%s", (int)strcspn(tls + 4, " "),
			 tls + 4, strcmp(str(r, "tls_mode"), "direct") == 0 ? " direct-tls" : "");
	}
	bool bidi = json_is_true(json_object_get(r, "bidi"));
	bool details =
		(*cert && strcmp(cert, "none") != 0) || *err || strncmp(tls, "TLS", 3) == 0 || bidi;
	evbuffer_add_printf(b, "<tr class=\"stream%s\">", details ? " has-details" : "");
	td_text(b, "nowrap", direction_word(str(r, "direction")));
	td_domain(b, str(r, "local"));
	td_domain(b, str(r, "remote"));
	td_text(b, "nowrap", str(r, "state"));
	td_text(b, "nowrap", str(r, "method"));
	td_text(b, "nowrap", version);
	evbuffer_add_printf(b, "<td><span class=\"cert %s\">%s</span></td>", cls, word);
	evbuffer_add_printf(b, "<td class=\"num\">");
	human_bytes(b, num(r, "bytes_in"));
	evbuffer_add_printf(b, " / ");
	human_bytes(b, num(r, "bytes_out"));
	evbuffer_add_printf(b, "<br><span class=\"muted\">%lld / %lld stanzas</span></td>",
			    num(r, "stanzas_in"), num(r, "stanzas_out"));
	evbuffer_add_printf(b, "<td class=\"num\">");
	human_age(b, num(r, "age"));
	evbuffer_add_printf(b, "</td></tr>");
	if (!details)
		return;
	evbuffer_add_printf(b, "<tr class=\"details\"><td colspan=\"%zu\"><dl>",
			    FG_ARRAY_LEN(stream_heads));
	detail(b, "Certificate", cert);
	detail(b, "DANE",
	       strcmp(str(r, "dane"), "verified") == 0 ? "verified: the certificate "
							 "matches a DNSSEC-secure TLSA record"
						       : NULL);
	detail(b, "Extended key usage", str(r, "certificate_eku"));
	detail(b, "Public key (pin)", str(r, "certificate_key"));
	detail(b, "Cipher", strncmp(tls, "TLS", 3) == 0 ? tls : NULL);
	detail(b, "Peer", str(r, "peer"));
	detail(b, "Bidirectional",
	       bidi ? "bidi: this stream carries stanzas both ways (XEP-0288)" : NULL);
	detail(b, "Last error", err);
	evbuffer_add_printf(b, "</dl></td></tr>");
}

/* One row a record (the reason in its own wide column, not on a line
 * under it): a failing partner is one row to find and to act on. */
static const char *const failing_heads[] = {
	"Partner domain", "Local domain",      "State",	 "Failing since", "Attempts",
	"Next attempt",	  "Waiting / bounced", "Reason",
};

static void failing_row(struct evbuffer *b, json_t *r)
{
	json_t *lf = json_object_get(r, "last_failure");
	bool failing = strcmp(str(lf, "state"), "failing") == 0;
	evbuffer_add_printf(b, "<tr>");
	td_domain(b, str(r, "remote"));
	td_domain(b, str(r, "local"));
	td_text(b, "nowrap", failing ? str(r, "state") : "recovered");
	evbuffer_add_printf(b, "<td>");
	human_time(b, str(lf, "first"));
	evbuffer_add_printf(b, "<br><span class=\"muted\">last try</span> ");
	human_time(b, str(lf, "at"));
	evbuffer_add_printf(b, "</td><td class=\"num\">%lld</td><td>", num(lf, "attempts"));
	if (!failing) {
		evbuffer_add_printf(b, "none needed (recovered ");
		human_time(b, str(lf, "recovered"));
		evbuffer_add_printf(b, ")");
	} else if (num(lf, "retry_in") > 0) {
		evbuffer_add_printf(b, "in ");
		human_age(b, num(lf, "retry_in"));
	} else {
		evbuffer_add_printf(b, "with the next stanza");
	}
	evbuffer_add_printf(b, "</td><td class=\"num\">%lld / %lld</td><td class=\"reason\">",
			    num(r, "queued"), num(lf, "bounced"));
	if (json_is_true(json_object_get(lf, "by_peer")))
		evbuffer_add_printf(b, "<span class=\"muted\">the peer said:</span> ");
	http_html(b, str(lf, "reason"));
	evbuffer_add_printf(b, "</td></tr>");
}

/* ---- the cluster (issue 17): status's "cluster" object ---- */

/* Where status puts it: beside "result", inside it, or as a row of it; NULL
 * on a single node ("redis": "off") or with none. */
static json_t *cluster_of(json_t *body)
{
	json_t *c = json_object_get(body, "cluster"), *rows = json_object_get(body, "result");
	if (!c && json_is_object(rows))
		c = json_object_get(rows, "cluster");
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		if (!c && json_is_object(json_object_get(r, "cluster")))
			c = json_object_get(r, "cluster");
	}
	if (!json_is_object(c) || strcmp(str(c, "redis"), "off") == 0)
		return NULL;
	return c;
}

static const char *const node_heads[] = {"Node", "Last heartbeat", "Sessions"};

static void cluster_section(struct evbuffer *b, json_t *c)
{
	bool up = strcmp(str(c, "redis"), "up") == 0;
	evbuffer_add_printf(b, "<h2>Cluster</h2><p id=\"cluster-summary\">This node: <b>");
	http_html(b, str(c, "node"));
	evbuffer_add_printf(b,
			    "</b>. Redis: <span class=\"cert %s\" id=\"cluster-redis\">%s</span>",
			    up ? "good" : "bad", up ? "up" : "down");
	if (!up && num(c, "redis_down_since_ms") > 0) {
		evbuffer_add_printf(b, " for ");
		human_age(b, (fg_now_ms() - num(c, "redis_down_since_ms")) / 1000);
		evbuffer_add_printf(b, ": this node serves its own users and partners; stanzas for "
				       "users on other nodes are bounced until it is back");
	}
	evbuffer_add_printf(b, ".</p>");
	json_t *nodes = json_object_get(c, "nodes");
	if (json_array_size(nodes) > 0) {
		heads(b, "cluster-nodes", node_heads, FG_ARRAY_LEN(node_heads), false);
		size_t i;
		json_t *n;
		json_array_foreach(nodes, i, n)
		{
			bool self = json_is_true(json_object_get(n, "self"));
			evbuffer_add_printf(b, "<tr class=\"node%s\"><td class=\"nowrap\">",
					    self ? " self" : "");
			http_html(b, str(n, "name"));
			evbuffer_add_printf(b, "%s</td><td class=\"num\">",
					    self ? " <span class=\"muted\">(this node)</span>"
						 : "");
			long long age = num(n, "heartbeat_age_ms");
			if (age < 1000)
				evbuffer_add_printf(b, "%lld ms", age);
			else
				human_age(b, age / 1000);
			evbuffer_add_printf(b, " ago</td><td class=\"num\">%lld</td></tr>",
					    num(n, "sessions"));
		}
		evbuffer_add_printf(b, "</tbody></table>");
	}
	evbuffer_add_printf(b,
			    "<p class=\"muted\" id=\"cluster-traffic\">Stanzas forwarded to other "
			    "nodes: %lld; from them: %lld; routed again after a node died: %lld; "
			    "bounced while Redis was down: %lld.</p>",
			    num(c, "forwarded_out"), num(c, "forwarded_in"), num(c, "rerouted"),
			    num(c, "bounced_link_down"));
}

static void status_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	struct evbuffer *b = web_page_begin(h, "/status", "Federation status");
	if (!b) {
		json_decref(body);
		http_send(h, 503, NULL, NULL);
		return;
	}
	json_t *rows = json_object_get(body, "result");
	json_t *cluster = cluster_of(body);
	if (cluster)
		cluster_section(b, cluster);
	/* Routes with a failure on record: a partner that is down shows here
	 * with what went wrong and when the next attempt is, even while no
	 * stream to it exists. */
	json_t *streams = json_array(), *failing = json_array();
	size_t i, nstreams = 0, nfailing = 0;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		const char *dir = str(r, "direction");
		if (json_object_get(r, "cluster"))
			continue;
		if (strcmp(dir, "route") != 0) {
			nstreams++;
			if (web_filter_match(h, r))
				json_array_append(streams, r);
		}
		if (!json_object_get(r, "last_failure"))
			continue;
		nfailing++;
		if (web_filter_match(h, r))
			json_array_append(failing, r);
	}
	web_filter_box(b, h, "/status", "domain, state, method, certificate...");
	evbuffer_add_printf(b, "<h2>Failing partners</h2>");
	if (nfailing == 0)
		evbuffer_add_printf(b, "<p id=\"no-failures\">No partner has failed recently.</p>");
	else if (json_array_size(failing) == 0)
		evbuffer_add_printf(b, "<p id=\"no-failures\">No failing partner matches the "
				       "filter.</p>");
	else {
		heads(b, "failing", failing_heads, FG_ARRAY_LEN(failing_heads), false);
		json_array_foreach(failing, i, r) failing_row(b, r);
		evbuffer_add_printf(b, "</tbody></table>");
	}
	evbuffer_add_printf(b, "<h2>Streams</h2>");
	if (nstreams == 0)
		evbuffer_add_printf(b, "<p id=\"empty\">No streams now.</p>");
	else if (json_array_size(streams) == 0)
		evbuffer_add_printf(b, "<p id=\"empty\">No stream matches the filter.</p>");
	else {
		heads(b, "streams", stream_heads, FG_ARRAY_LEN(stream_heads), false);
		json_array_foreach(streams, i, r) stream_row(b, r);
		evbuffer_add_printf(b, "</tbody></table><p class=\"muted\">Sizes are bytes on the "
				       "wire; times are UTC.</p>");
	}
	json_decref(streams);
	json_decref(failing);
	json_decref(body);
	web_page_end(h, 200, b);
}

/* ---- /refused ---- */

/* Non-partners that knocked (status --refused), each with the way to
 * make it a partner: the New form with its domain filled in. */
static void refused_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	struct evbuffer *b = web_page_begin(h, "/refused", "Who tried to federate");
	if (!b) {
		json_decref(body);
		http_send(h, 503, NULL, NULL);
		return;
	}
	json_t *rows = json_object_get(body, "result");
	static const char *const names[] = {
		"Domain", "Inbound streams", "Stanzas from local users", "First",
		"Last",	  "Last from"};
	evbuffer_add_printf(b, "<p>Domains that are not partners and tried to federate since "
			       "the daemon started: servers that opened a stream as them, and "
			       "local users who wrote to them. Both were refused.</p>");
	web_filter_box(b, h, "/refused", "domain, address...");
	size_t i, shown = 0;
	json_t *r;
	json_array_foreach(rows, i, r) shown += web_filter_match(h, r);
	if (json_array_size(rows) == 0) {
		evbuffer_add_printf(b, "<p id=\"empty\">No domain has been refused.</p>");
	} else if (shown == 0) {
		evbuffer_add_printf(b, "<p id=\"empty\">No refused domain matches the filter.</p>");
	} else {
		heads(b, "refused", names, FG_ARRAY_LEN(names), !h->read_only);
		json_array_foreach(rows, i, r)
		{
			if (!web_filter_match(h, r))
				continue;
			evbuffer_add_printf(b, "<tr>");
			td_text(b, NULL, str(r, "domain"));
			evbuffer_add_printf(
				b, "<td class=\"num\">%lld</td><td class=\"num\">%lld</td>",
				num(r, "inbound"), num(r, "outbound"));
			evbuffer_add_printf(b, "<td>");
			human_time(b, str(r, "first"));
			evbuffer_add_printf(b, "</td><td>");
			human_time(b, str(r, "last"));
			evbuffer_add_printf(b, "</td>");
			td_text(b, NULL, str(r, "last_from"));
			if (!h->read_only) {
				evbuffer_add_printf(b, "<td class=\"actions\"><a class=\"add\" "
						       "href=\"/partners/new?domain=");
				http_url(b, str(r, "domain"));
				evbuffer_add_printf(b, "\">Add as partner</a></td>");
			}
			evbuffer_add_printf(b, "</tr>");
		}
		evbuffer_add_printf(b, "</tbody></table>");
	}
	json_decref(body);
	web_page_end(h, 200, b);
}

bool web_status_route(struct hreq *h, bool post)
{
	if (post)
		return false;
	if (strcmp(h->path, "/status") == 0)
		http_cmd(h, "status", json_object(), false, status_got);
	else if (strcmp(h->path, "/refused") == 0)
		http_cmd(h, "status", json_pack("{s:b}", "refused", 1), false, refused_got);
	else
		return false;
	return true;
}
