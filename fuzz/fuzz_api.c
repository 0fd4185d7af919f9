/* libFuzzer target for what an admin's JSON reaches: the bodies of the HTTP
 * API's changes (POST/PUT/PATCH of partners, users, the gateway) and the
 * partner import file, run through the command layer exactly as api.c and
 * the CLI hand them over (cmd_fixture.h: a fresh store per input).
 *
 * The first byte picks the endpoint, the second what-if and the viewer
 * role, the rest is the body. Besides the contract every command keeps
 * (cmd_fixture.h), a change is idempotent: a partner saved from a body and
 * saved again from its own `partner get` record, or an import followed by
 * an import of its own export, changes nothing more. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "cmd_fixture.h"

enum ep {
	EP_PARTNER_NEW,
	EP_PARTNER_SET,
	EP_GATEWAY_SET,
	EP_USER_ADD,
	EP_USER_SET,
	EP_IMPORT,
	EP_N
};

/* The partner named in the reply, saved again from its own record. */
static void check_partner_idempotent(struct fx *f, const char *domain)
{
	json_t *p = json_pack("{s:s}", "domain", domain);
	struct cmd_request get = {
		.name = "partner get", .params = p, .who = "fuzz", .iface = "api"};

	CHECK(fx_exec(f, &get) == CMD_OK);
	json_t *rec = json_object_get(f->body, "result");

	if (json_is_array(rec))
		rec = json_array_get(rec, 0);
	CHECK(json_is_object(rec));
	json_t *again = json_deep_copy(rec);

	json_decref(p);
	CHECK(again != NULL);
	char *before = fx_snapshot(f);
	struct cmd_request set = {
		.name = "partner set", .params = again, .who = "fuzz", .iface = "api"};

	fx_exec(f, &set);
	char *after = fx_snapshot(f);

	CHECK(strcmp(before, after) == 0);
	free(before);
	free(after);
	json_decref(again);
}

static void check_import_idempotent(struct fx *f)
{
	json_t *none = json_object();
	struct cmd_request exp = {
		.name = "partner export", .params = none, .who = "fuzz", .iface = "cli"};

	CHECK(fx_exec(f, &exp) == CMD_OK);
	json_t *doc = json_deep_copy(json_object_get(f->body, "result"));
	json_t *p = json_pack("{s:o}", "partners", doc);
	char *before = fx_snapshot(f);
	struct cmd_request imp = {
		.name = "partner import", .params = p, .who = "fuzz", .iface = "cli"};

	CHECK(fx_exec(f, &imp) == CMD_OK);
	char *after = fx_snapshot(f);

	CHECK(strcmp(before, after) == 0);
	free(before);
	free(after);
	json_decref(p);
	json_decref(none);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const cmds[EP_N] = {"partner new", "partner set", "gateway set",
					       "user add",    "user set",    "partner import"};
	struct fx f;
	json_error_t e;

	if (size < 2)
		return 0;
	enum ep ep = (enum ep)(data[0] % EP_N);
	json_t *body = json_loadb((const char *)data + 2, size - 2, 0, &e);

	/* api.c answers 400 to anything but an object; an import file may be
	 * a list or {"partners": [...]}. */
	if (!body || (ep != EP_IMPORT && !json_is_object(body))) {
		json_decref(body);
		return 0;
	}
	json_t *params = body;

	if (ep == EP_IMPORT)
		params = json_pack("{s:o}", "partners", body);
	/* The last path segment wins over the body, as in api.c. */
	if (ep == EP_PARTNER_SET)
		json_object_set_new(
			params, "domain",
			json_string(data[1] & 4 ? "corp.fabrikam.test" : "fabrikam.test"));
	if (ep == EP_USER_SET)
		json_object_set_new(params, "jid", json_string("alice@contoso.test"));

	fx_open(&f);
	struct cmd_request r = {.name = cmds[ep],
				.params = params,
				.what_if = data[1] & 1,
				.read_only = data[1] & 2,
				.who = "fuzz",
				.iface = "api"};
	int st = fx_exec(&f, &r);

	if (st == CMD_OK && !r.what_if && !r.read_only) {
		const char *d = json_string_value(json_object_get(params, "domain"));

		if ((ep == EP_PARTNER_NEW || ep == EP_PARTNER_SET) && d)
			check_partner_idempotent(&f, d);
		if (ep == EP_IMPORT)
			check_import_idempotent(&f);
	}
	json_decref(params);
	fx_close(&f);
	return 0;
}
