/* libFuzzer target for the control socket: each input line is one request
 * as the CLI sends it (control_parse_request), run in order on one fresh
 * store (cmd_fixture.h) as the socket's owner, so sequences of commands
 * are explored. A line is refused iff it is no JSON object with a string
 * "command"; every reply keeps the commands' contract and goes back as a
 * single line, since the protocol is one line each way. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "cmd_fixture.h"
#include "control.h"

#include <string.h>

#define LINES_MAX 4

static void one_line(struct fx *f, const char *line, size_t len)
{
	json_t *req = NULL;
	struct cmd_request cr = {.who = "root", .iface = "cli"};
	char why[700] = "";
	int rc = control_parse_request(line, len, &cr, &req, why, sizeof(why));
	json_error_t e;
	/* a key given twice is refused, as the API refuses it */
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &e);
	bool well_formed = json_is_string(json_object_get(j, "command"));

	json_decref(j);
	CHECK((rc == FG_OK) == well_formed);
	if (rc != FG_OK) {
		CHECK(req == NULL);
		CHECK(strncmp(why, "malformed control request: ", 27) == 0);
		return;
	}
	fx_exec(f, &cr);
	json_t *r = json_pack("{s:i, s:O}", "status", f->status, "body", f->body);
	char *text = json_dumps(r, JSON_COMPACT);

	CHECK(text != NULL && strchr(text, '\n') == NULL);
	free(text);
	json_decref(r);
	json_decref(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fx f;
	size_t lines = 0;

	fx_open(&f);
	for (const uint8_t *p = data, *end = data + size; p < end && lines < LINES_MAX; lines++) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		one_line(&f, (const char *)p, n);
		p += n + 1;
	}
	fx_close(&f);
	return 0;
}
