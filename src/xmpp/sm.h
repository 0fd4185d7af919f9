/* XEP-0198 Stream Management: the counters, the queue of stanzas the
 * client has not acknowledged, resumption tokens, and the parsing of the
 * SM elements' attributes. Nothing here touches a stream: session.c owns
 * a session's SM state (allocated on <enable/>) and its life across
 * streams, c2s.c speaks the elements. The arithmetic is mod 2^32 as the
 * XEP says, so that a long-lived session's counters may wrap. */
#ifndef FG_SM_H
#define FG_SM_H

#include "xml.h"

#include <stdbool.h>
#include <stdint.h>

#define XML_NS_SM "urn:xmpp:sm:3"

/* 128 random bits in base64url without padding. */
#define SM_ID_LEN 22

struct event;

struct sm_item {
	struct xml_node *st; /* in jabber:server */
	char *tag;	     /* sm_tag_last's, or NULL */
	struct sm_item *next;
};

struct sm {
	uint32_t in_h;		      /* stanzas received from the client since <enable/> */
	uint32_t out_h;		      /* stanzas handed to the client since <enable/> */
	struct sm_item *head, **tail; /* not acknowledged yet, oldest first */
	unsigned n;		      /* items in the queue */
	unsigned cap;		      /* most items kept; past it the session is cut */
	uint32_t since_r;	      /* stanzas sent since our last <r/> */
	bool resumable;
	bool asked;		   /* an <r/> is out that no <a/> has answered yet */
	char id[SM_ID_LEN + 1];	   /* the resumption token, "" without resumption */
	struct event *hibernation; /* while detached: ends the session */
	/* Told the tag of a tagged item that leaves the queue acknowledged
	 * (sm_ack) or taken back to be routed again (sm_pop); NULL: nobody. */
	void (*settled)(void *ud, const char *tag);
	void *settled_ud;
};

/* What an <a h=/> or a <resume h=/> says about the queue. */
enum sm_ack {
	SM_ACK_OK,	 /* *drop items are acknowledged now (maybe 0) */
	SM_ACK_STALE,	 /* h is older than what was acknowledged before */
	SM_ACK_TOO_HIGH, /* h counts stanzas never sent */
};

/* The decision for h, given out_h (stanzas sent) and n (of them still
 * queued): pure, mod 2^32. */
enum sm_ack sm_ack_count(uint32_t out_h, unsigned n, uint32_t h, unsigned *drop);
/* An xs:unsignedInt in decimal (the h attribute): false when absent,
 * empty, signed, not decimal or over 2^32-1. */
bool sm_parse_h(const char *s, uint32_t *out);
/* An xs:boolean ("true", "1", "false", "0"); absent or anything else is
 * false. */
bool sm_parse_bool(const char *s);
/* Whether s has the shape of a token we make (SM_ID_LEN base64url
 * characters): others are never looked up. */
bool sm_id_valid(const char *s);

/* New state (cap: most unacknowledged stanzas); NULL when out of memory. */
struct sm *sm_new(unsigned cap, bool resumable);
/* Frees the queue too; accepts NULL, clears the pointer. */
void sm_free(struct sm **sm);
/* A fresh resumption token into sm->id: FG_OK / FG_ERR (no randomness). */
int sm_make_id(struct sm *sm);
/* Counts a stanza sent and keeps st (taken) until acknowledged: FG_OK,
 * or FG_NOMEM (st not taken, nothing counted). */
int sm_push(struct sm *sm, struct xml_node *st);
/* Tags the newest item with a copy of tag (a cluster's stream entry,
 * xmpp/cluster.h): FG_OK / FG_NOMEM. */
int sm_tag_last(struct sm *sm, const char *tag);
/* Takes back the last push (the stream did not take the stanza): the
 * stanza, given to the caller, or NULL when the queue is empty. */
struct xml_node *sm_unpush(struct sm *sm);
/* Acknowledges h (sm_ack_count); on SM_ACK_OK drops what it covers. */
enum sm_ack sm_ack(struct sm *sm, uint32_t h);
/* The oldest unacknowledged stanza (given to the caller), or NULL. */
struct xml_node *sm_pop(struct sm *sm);

/* <a h=/>, <r/>, <enabled/>...: an element in XML_NS_SM. */
struct xml_node *sm_element(const char *name);
/* The same with h='N'. */
struct xml_node *sm_element_h(const char *name, uint32_t h);

#endif
