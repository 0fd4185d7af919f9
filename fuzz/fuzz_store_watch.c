/* libFuzzer target for the payload of a fedgate_config notification (input
 * from another process, store_watch_parse). Invariants: an accepted note
 * has a non-empty node and at most STORE_WATCH_MAX_ACTIONS actions, none
 * with a control character; the action text fits its buffer; a refusal
 * leaves nothing allocated and says why. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "fg.h"
#include "store_watch.h"

static bool clean(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_watch_note n;
	char err[200] = "";
	int rc = store_watch_parse((const char *)data, size, &n, err, sizeof(err));
	if (rc != FG_OK) {
		CHECK(n.node == NULL && n.actions == NULL && n.nactions == 0 && err[0] != '\0');
		return 0;
	}
	CHECK(n.node && n.node[0] && strlen(n.node) <= STORE_WATCH_MAX_NODE && clean(n.node));
	CHECK(n.at_ms >= 0 && n.more >= 0 && n.nactions <= STORE_WATCH_MAX_ACTIONS);
	for (size_t i = 0; i < n.nactions; i++)
		CHECK(n.actions[i][0] && strlen(n.actions[i]) <= STORE_WATCH_MAX_ACTION &&
		      clean(n.actions[i]));
	char text[100];
	store_watch_actions_text(&n, text, sizeof(text));
	CHECK(strlen(text) < sizeof(text));
	store_watch_note_clear(&n);
	return 0;
}
