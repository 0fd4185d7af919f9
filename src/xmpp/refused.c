#include "refused.h"

#include "fg.h"
#include "strmap.h"
#include "xmpp.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longer names are no domain (RFC 1035 §2.3.4) and are not kept: a peer
 * must not be able to grow the table's memory with what it sends. */
#define DOMAIN_MAX 253
#define WHO_MAX	   128

struct refused {
	unsigned long inbound, outbound;
	unsigned long long seq; /* order of the last refusal, for eviction */
	time_t first, last;
	char who[WHO_MAX];
};

/* Refusals counted since start: orders them within one second, which
 * the times cannot. The loop thread is the only caller. */
static unsigned long long refusals;

/* The least recently refused domain, for eviction. */
struct oldest {
	const char *domain;
	unsigned long long seq;
};

static int find_oldest(void *ud, const char *key, void *value)
{
	struct oldest *o = ud;
	const struct refused *r = value;
	if (!o->domain || r->seq < o->seq) {
		o->domain = key;
		o->seq = r->seq;
	}
	return 0;
}

void refused_note(struct xmpp_server *srv, const char *domain, enum refused_dir dir,
		  const char *who)
{
	if (!domain || !*domain || strlen(domain) > DOMAIN_MAX)
		return;
	if (!srv->refused && !(srv->refused = strmap_new()))
		return;
	struct refused *r = strmap_get(srv->refused, domain);
	time_t now = time(NULL);
	if (!r) {
		if (strmap_count(srv->refused) >= REFUSED_MAX) {
			struct oldest o = {NULL, 0};
			strmap_each(srv->refused, find_oldest, &o);
			assert(o.domain);
			char *key = strdup(o.domain);
			if (!key)
				return;
			free(strmap_remove(srv->refused, key));
			free(key);
		}
		r = calloc(1, sizeof(*r));
		if (!r || strmap_put(srv->refused, domain, r, NULL) != FG_OK) {
			free(r);
			return;
		}
		r->first = now;
	}
	if (dir == REFUSED_INBOUND)
		r->inbound++;
	else
		r->outbound++;
	r->last = now;
	r->seq = ++refusals;
	snprintf(r->who, sizeof(r->who), "%s", who ? who : "");
}

struct collect {
	json_t *rows;
};

static int add_row(void *ud, const char *key, void *value)
{
	struct collect *c = ud;
	const struct refused *r = value;
	char first[FG_UTC_LEN], last[FG_UTC_LEN];
	json_array_append_new(c->rows,
			      json_pack("{s:s, s:I, s:I, s:s, s:s, s:s}", "domain", key, "inbound",
					(json_int_t)r->inbound, "outbound", (json_int_t)r->outbound,
					"first", fg_utc(r->first, first), "last",
					fg_utc(r->last, last), "last_from", r->who));
	return 0;
}

/* Most recent first; same second: by name, so the order is stable. */
static int by_last(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(json_string_value(json_object_get(y, "last")),
		       json_string_value(json_object_get(x, "last")));
	return c ? c
		 : strcmp(json_string_value(json_object_get(x, "domain")),
			  json_string_value(json_object_get(y, "domain")));
}

void refused_rows(struct xmpp_server *srv, json_t *rows)
{
	if (!srv->refused)
		return;
	struct collect c = {json_array()};
	strmap_each(srv->refused, add_row, &c);
	size_t n = json_array_size(c.rows);
	json_t **v = calloc(n ? n : 1, sizeof(*v));
	if (v) {
		for (size_t i = 0; i < n; i++)
			v[i] = json_array_get(c.rows, i);
		qsort(v, n, sizeof(*v), by_last);
		for (size_t i = 0; i < n; i++)
			json_array_append(rows, v[i]);
		free(v);
	}
	json_decref(c.rows);
}

void refused_forget(struct xmpp_server *srv, const char *domain)
{
	if (srv->refused && domain)
		free(strmap_remove(srv->refused, domain));
}

void refused_free_all(struct xmpp_server *srv)
{
	strmap_free(&srv->refused, free);
}
