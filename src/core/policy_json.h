/* Partners and gateway settings as JSON: the form of `--json` output, the
 * HTTP API, export and import. Secrets never leave in it. */
#ifndef FG_POLICY_JSON_H
#define FG_POLICY_JSON_H

#include "policy.h"

#include <jansson.h>
#include <stdbool.h>

/* The record's fields; with `derived`, also allowed_methods (names in
 * preference order), warnings (SPEC §2) and connection_limit_default. The
 * effective connection_limit is printed; gw may be NULL (then 0 stays 0). */
json_t *policy_json_partner(const struct partner *p, const struct gateway_settings *gw,
			    bool derived);
/* Sets the fields present in obj on p. Values may be JSON-typed or strings
 * (as the CLI sends them), accepted in kebab or Lync spelling. Keys in
 * `skip` (NULL-terminated) are ignored; derived keys (allowed_methods,
 * warnings, connection_limit_default) are ignored too; any other unknown key
 * is an error. On error returns FG_INVAL, a sentence naming the field in
 * err and, when field is not NULL, the key it is about in *field (a string
 * of obj's; NULL when the error is about no key). */
int policy_json_apply(struct partner *p, json_t *obj, const char *const *skip, char *err,
		      size_t errlen, const char **field);

/* Gateway settings; the dialback secret shows only as "(set)" / "(unset)". */
json_t *policy_json_gateway(const struct gateway_settings *gw);
int policy_json_apply_gateway(struct gateway_settings *gw, json_t *obj, const char *const *skip,
			      char *err, size_t errlen, const char **field);

/* A JSON scalar as text: strings as they are, booleans as "true"/"false",
 * integers in decimal (written into buf); NULL for anything else. */
const char *policy_json_text(json_t *v, char *buf, size_t len);

/* What an audit row changed: for every key of before or after (objects,
 * either may be NULL) whose values differ, fn(ud, key, old, new), with
 * NULL for a side that lacks the key; in key order. */
void policy_json_diff(json_t *before, json_t *after,
		      void (*fn)(void *ud, const char *key, json_t *old, json_t *new_v), void *ud);

/* Warnings of the matrix alone (no set, no domain checks) into v. */
void policy_json_matrix_verdict(const struct partner *p, struct policy_verdict *v);

#endif
