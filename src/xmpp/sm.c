#include "sm.h"

#include "fg.h"

#include <assert.h>
#include <event2/event.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum sm_ack sm_ack_count(uint32_t out_h, unsigned n, uint32_t h, unsigned *drop)
{
	/* The queue holds the stanzas numbered base+1 .. out_h; h says the
	 * client has the first d of them. Unsigned subtraction is the
	 * XEP's mod 2^32; a difference that reads as negative is behind
	 * the queue, not beyond it. */
	uint32_t base = out_h - (uint32_t)n;
	uint32_t d = h - base;
	*drop = 0;
	if (d <= n) {
		*drop = d;
		return SM_ACK_OK;
	}
	return (int32_t)d < 0 ? SM_ACK_STALE : SM_ACK_TOO_HIGH;
}

bool sm_parse_h(const char *s, uint32_t *out)
{
	uint64_t v = 0;
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return false;
	}
	*out = (uint32_t)v;
	return true;
}

bool sm_parse_bool(const char *s)
{
	return s && (strcmp(s, "true") == 0 || strcmp(s, "1") == 0);
}

static bool b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

bool sm_id_valid(const char *s)
{
	if (!s)
		return false;
	size_t i = 0;
	for (; s[i]; i++)
		if (i >= SM_ID_LEN || !b64url_char(s[i]))
			return false;
	return i == SM_ID_LEN;
}

struct sm *sm_new(unsigned cap, bool resumable)
{
	struct sm *sm = calloc(1, sizeof(*sm));
	if (!sm)
		return NULL;
	sm->tail = &sm->head;
	sm->cap = cap;
	sm->resumable = resumable;
	return sm;
}

void sm_free(struct sm **psm)
{
	struct sm *sm = *psm;
	if (!sm)
		return;
	/* Not settled: what is still here went nowhere (a tagged entry stays
	 * pending in Redis, for a restart or the reaper). */
	while (sm->head) {
		struct sm_item *it = sm->head;
		sm->head = it->next;
		xml_free(&it->st);
		free(it->tag);
		free(it);
	}
	if (sm->hibernation)
		event_free(sm->hibernation);
	free(sm);
	*psm = NULL;
}

int sm_make_id(struct sm *sm)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char rnd[16];
	/* The token alone lets a resumption take the session's stanzas
	 * (with the account's credentials): it must not be guessable. */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return FG_ERR;
	/* 128 bits as 22 six-bit digits; the last takes the 2 bits left. */
	unsigned acc = 0, bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < sizeof(rnd); i++) {
		acc = (acc << 8) | rnd[i];
		bits += 8;
		while (bits >= 6) {
			sm->id[o++] = alphabet[(acc >> (bits - 6)) & 63];
			bits -= 6;
		}
	}
	if (bits)
		sm->id[o++] = alphabet[(acc << (6 - bits)) & 63];
	assert(o == SM_ID_LEN);
	sm->id[o] = '\0';
	return FG_OK;
}

int sm_push(struct sm *sm, struct xml_node *st)
{
	struct sm_item *it = malloc(sizeof(*it));
	if (!it)
		return FG_NOMEM;
	*it = (struct sm_item){.st = st};
	*sm->tail = it;
	sm->tail = &it->next;
	sm->n++;
	sm->out_h++;
	sm->since_r++;
	return FG_OK;
}

int sm_tag_last(struct sm *sm, const char *tag)
{
	struct sm_item *last = sm->head;
	while (last && last->next)
		last = last->next;
	if (!last)
		return FG_ERR;
	char *t = strdup(tag);
	if (!t)
		return FG_NOMEM;
	free(last->tag);
	last->tag = t;
	return FG_OK;
}

struct xml_node *sm_unpush(struct sm *sm)
{
	struct sm_item **p = &sm->head;
	if (!*p)
		return NULL;
	while ((*p)->next)
		p = &(*p)->next;
	struct sm_item *it = *p;
	*p = NULL;
	sm->tail = p;
	sm->n--;
	sm->out_h--;
	if (sm->since_r)
		sm->since_r--;
	struct xml_node *st = it->st;
	free(it->tag);
	free(it);
	return st;
}

struct xml_node *sm_pop(struct sm *sm)
{
	struct sm_item *it = sm->head;
	if (!it)
		return NULL;
	sm->head = it->next;
	if (!sm->head)
		sm->tail = &sm->head;
	assert(sm->n > 0);
	sm->n--;
	struct xml_node *st = it->st;
	if (it->tag && sm->settled)
		sm->settled(sm->settled_ud, it->tag);
	free(it->tag);
	free(it);
	return st;
}

enum sm_ack sm_ack(struct sm *sm, uint32_t h)
{
	unsigned drop = 0;
	enum sm_ack r = sm_ack_count(sm->out_h, sm->n, h, &drop);
	sm->asked = false;
	while (drop--) {
		struct xml_node *st = sm_pop(sm);
		xml_free(&st);
	}
	return r;
}

struct xml_node *sm_element(const char *name)
{
	return xml_new(XML_NS_SM, name);
}

struct xml_node *sm_element_h(const char *name, uint32_t h)
{
	char buf[16];
	struct xml_node *n = xml_new(XML_NS_SM, name);
	snprintf(buf, sizeof(buf), "%u", (unsigned)h);
	if (n && xml_set_attr(n, NULL, "h", buf) != FG_OK)
		xml_free(&n);
	return n;
}
