/* The store's part for local users (schema migration 2): accounts, rosters,
 * offline messages (XEP-0160) and vCards (XEP-0054). Synchronous, like
 * store_sqlite.c: the CLI calls it directly, the daemon only from the store
 * thread (through store_submit jobs). Rows of a user go with the user
 * (ON DELETE CASCADE). */
#ifndef FG_STORE_USERS_H
#define FG_STORE_USERS_H

#include "store_sqlite.h"
#include "users.h"

#include <stdbool.h>
#include <stddef.h>

/* Every account into a new set. FG_OK, or FG_INVAL naming a bad row. */
int store_db_users_load(struct store_db *db, struct accounts **out, char *err, size_t errlen);

/* A roster item (RFC 6121 §2.1) with its subscription state (Appendix A):
 * sub_to/sub_from are the subscription, ask_out a pending outbound
 * request, pending_in a pending inbound request (pending_in_xml the
 * <presence type='subscribe'/> to show again at login, or NULL), approved a
 * pre-approval (§3.4). groups is a JSON array text ("[]" when none). */
struct roster_row {
	const char *user;    /* bare JID of the local user */
	const char *contact; /* bare JID of the contact */
	const char *name;    /* NULL or "" when none */
	const char *groups;  /* JSON array text */
	bool sub_to, sub_from, ask_out, pending_in, approved;
	const char *pending_in_xml;
	/* Kept only for a pending inbound request: not in the user's roster
	 * (RFC 6121 §3.1.3 keeps such requests apart from the roster). */
	bool hidden;
};

/* Every roster item of every user; strings valid during cb only. Return
 * non-zero from cb to stop. */
typedef int (*store_roster_cb)(void *ud, const struct roster_row *r);
int store_db_roster_load(struct store_db *db, store_roster_cb cb, void *ud, char *err,
			 size_t errlen);
/* One user's roster items (ordered by contact) and roster version (*has_ver
 * false, *ver 0 when the user has no version row): what a node reads again
 * when another node changed that user's roster, without the other users'. */
int store_db_roster_load_user(struct store_db *db, const char *user, store_roster_cb cb, void *ud,
			      unsigned long long *ver, bool *has_ver, char *err, size_t errlen);
/* Insert or replace by (user, contact). */
int store_db_roster_put(struct store_db *db, const struct roster_row *r, char *err, size_t errlen);
/* FG_OK also when there was none. */
int store_db_roster_delete(struct store_db *db, const char *user, const char *contact, char *err,
			   size_t errlen);

/* Roster versions (RFC 6121 §2.6, migration 10): a counter per user that
 * every pushed change raises; a user without a row is at 0. */
typedef int (*store_roster_ver_cb)(void *ud, const char *user, unsigned long long ver);
int store_db_roster_ver_load(struct store_db *db, store_roster_ver_cb cb, void *ud, char *err,
			     size_t errlen);
int store_db_roster_ver_put(struct store_db *db, const char *user, unsigned long long ver,
			    char *err, size_t errlen);

/* Appends a stanza (serialized XML) for user, stamped at_ms. FG_LIMIT
 * (nothing stored) when the user already has `limit` messages waiting;
 * FG_NOTFOUND when there is no such user. */
int store_db_offline_add(struct store_db *db, const char *user, long long at_ms, const char *xml,
			 unsigned limit, char *err, size_t errlen);
/* Hands the oldest max waiting messages of user (0: every one) to cb,
 * oldest first, and deletes them, in one transaction: a crash before
 * commit keeps them all. Each is handed over once: a message two takes
 * select at once (two nodes on PostgreSQL) goes to the one whose delete
 * removed it. cb runs inside that transaction (on the store thread in the
 * daemon); a non-zero return refuses the lot: nothing is deleted and the
 * result is FG_ERR. */
typedef int (*store_offline_cb)(void *ud, long long at_ms, const char *xml);
int store_db_offline_take(struct store_db *db, const char *user, unsigned max, store_offline_cb cb,
			  void *ud, char *err, size_t errlen);
/* How many messages wait for user (0 for none). */
int store_db_offline_count(struct store_db *db, const char *user, unsigned *n, char *err,
			   size_t errlen);

/* vCard-temp: the <vCard/> element as XML text; *xml malloc'ed, NULL when
 * the user has none. Putting NULL removes it; putting XML for a user that
 * does not exist is FG_NOTFOUND. */
int store_db_vcard_put(struct store_db *db, const char *user, const char *xml, char *err,
		       size_t errlen);
int store_db_vcard_get(struct store_db *db, const char *user, char **xml, char *err, size_t errlen);

/* Ops for store_db_commit(), in the same transaction as other changes and
 * their audit rows: insert or replace an account by JID (its rows stay);
 * delete one with its roster, offline messages, vCard and archive (FG_NOTFOUND
 * when there is no such user). The arguments must outlive the commit. */
struct store_op store_op_put_user(const struct account *a);
struct store_op store_op_delete_user(const char *jid);

#endif
