/* The message archive (XEP-0313, schema migration 7): each local user's
 * messages, stamped with the stanza-id (XEP-0359) the server gave them,
 * and each user's archiving preferences. Synchronous, like the rest of the
 * store: the daemon calls it only from the store thread. Rows of a user go
 * with the user (ON DELETE CASCADE), so `fedgate user remove` takes the
 * archive along. */
#ifndef FG_STORE_ARCHIVE_H
#define FG_STORE_ARCHIVE_H

#include "store_sqlite.h"

#include <stdbool.h>
#include <stddef.h>

/* What a user's archive keeps by default (XEP-0313 §6.1 <prefs default>). */
enum archive_mode { ARCHIVE_ALWAYS, ARCHIVE_ROSTER, ARCHIVE_NEVER };

/* "always", "roster", "never" and back; -1 for anything else. */
int archive_mode_parse(const char *s);
const char *archive_mode_name(enum archive_mode m);

/* One message for one owner's archive. */
struct archive_row {
	const char *owner;     /* bare JID of the local user */
	const char *with_jid;  /* bare JID of the other party */
	long long ts_ms;       /* when the server saw it */
	const char *stanza_id; /* unique in owner's archive */
	bool outgoing;	       /* sent by owner */
	const char *xml;       /* the message, serialized in jabber:server */
	/* After the batch, the owner's oldest messages beyond max_per_user
	 * go. Finding them walks the owner's index as far as the limit, so
	 * the caller asks only now and then (mam.c: once per 1/64 of it). */
	bool trim;
};

/* Appends rows in one transaction, each only when its owner is a user and
 * the owner's preferences (or def when the owner has none) take messages
 * with with_jid; then, when max_per_user is not 0, the oldest messages
 * beyond it of each owner that a row asks to trim go. *stored (may be
 * NULL) counts the rows kept. */
int store_db_archive_add(struct store_db *db, const struct archive_row *rows, size_t n,
			 enum archive_mode def, unsigned max_per_user, unsigned *stored, char *err,
			 size_t errlen);

/* A query (XEP-0313 §4 filters, XEP-0059 paging). ids are stanza-ids of
 * the owner's archive; a bound that names no message is FG_NOTFOUND. */
struct archive_query {
	const char *owner;
	const char *with;     /* bare JID or NULL */
	long long start_ms;   /* -1 = none */
	long long end_ms;     /* -1 = none */
	const char *after_id; /* RSM <after/> or after-id; NULL = none */
	const char *before_id;
	bool backward; /* the page next to before_id, or the last page when
			  before_id is NULL (RSM <before/> present) */
	unsigned max;
};

/* A message of the result; strings are valid during the call only. Non-
 * zero stops (FG_ERR). */
typedef int (*archive_cb)(void *ud, const char *stanza_id, long long ts_ms, const char *xml);
/* Hands the page to cb oldest first. *complete: the page reaches the end
 * of the matching messages in the paging direction; *count: how many
 * match the filters in all. */
int store_db_archive_query(struct store_db *db, const struct archive_query *q, archive_cb cb,
			   void *ud, bool *complete, unsigned *count, char *err, size_t errlen);

/* Deletes every message stamped before before_ms; *deleted may be NULL. */
int store_db_archive_expire(struct store_db *db, long long before_ms, unsigned *deleted, char *err,
			    size_t errlen);

/* A user's preferences: the JID lists are bare JIDs, one per line ("" for
 * none). get: *found false (and *mode, the lists untouched) when the user
 * never set any; the lists are malloc'ed. put: FG_NOTFOUND for no user. */
int store_db_archive_prefs_get(struct store_db *db, const char *owner, bool *found,
			       enum archive_mode *mode, char **always, char **never, char *err,
			       size_t errlen);
int store_db_archive_prefs_put(struct store_db *db, const char *owner, enum archive_mode mode,
			       const char *always, const char *never, char *err, size_t errlen);

#endif
