/* One partner's page (/partners/view?domain=D, web_partner_page.c) and
 * the health words the partner list shares with it. web_partners.c routes
 * to the page, so that web.c's table stays as it is. */
#ifndef FG_WEB_PARTNER_PAGE_H
#define FG_WEB_PARTNER_PAGE_H

#include "web_page.h"

#include <stdbool.h>
#include <stddef.h>

enum web_health {
	WEB_HEALTH_IDLE,      /* no stream, no failure */
	WEB_HEALTH_CONNECTED, /* a stream is up, in or out */
	WEB_HEALTH_FAILING,   /* a route to it fails now */
	WEB_HEALTH_SUSPENDED, /* enabled: false */
};

/* Whether a `status` row is a stream or route of partner (a `partner get`
 * record): its remote is one of the partner's domains. */
bool web_partner_owns_row(json_t *partner, json_t *row);
/* The partner's health from the status rows in a few words ("Connected
 * in/out (SASL over TLS)", "Failing since 08:12 UTC: short reason",
 * "Suspended", "Idle") into buf; the full failure reason, when there is
 * one, into detail (else ""). */
enum web_health web_partner_health(json_t *partner, json_t *rows, char *buf, size_t len,
				   char *detail, size_t dlen);
/* The CSS class of a health ("health-failing"...). */
const char *web_health_class(enum web_health hl);
/* The health as a badge: its class, the short text, the detail as the
 * title (hover) when there is one; id NULL for none. */
void web_health_badge(struct evbuffer *b, enum web_health hl, const char *id, const char *text,
		      const char *detail);

/* /partners/view (GET), /partners/retry, /partners/suspend,
 * /partners/resume (POST). */
bool web_partner_page_route(struct hreq *h, bool post);

/* The page's style rules, joined into web_css_partners. */
#define WEB_CSS_PARTNER_PAGE                                                                   \
	".health{display:inline-block;padding:.1em .6em;border-radius:1em;font-size:.92em;"    \
	"white-space:nowrap;max-width:100%;overflow:hidden;text-overflow:ellipsis}"            \
	".health-connected{background:#e3f3e8;color:#17602d}"                                  \
	".health-failing{background:#fde6e3;color:#a02116}"                                    \
	".health-suspended{background:#fff1c9;color:#7a5600}"                                  \
	".health-idle{background:#eef1f4;color:#4a5866}"                                       \
	".titlebar{display:flex;align-items:center;gap:.8em;flex-wrap:wrap;margin:0 0 .8em}"   \
	".titlebar .health{font-size:1em}"                                                     \
	".titlebar .buttons{margin-left:auto;display:flex;gap:.4em;align-items:center}"        \
	".titlebar form{margin:0}"                                                             \
	".cards{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.6fr);gap:1em}"     \
	".card{background:#fff;border:1px solid #d5dbe1;border-radius:4px;padding:.7em 1em;"   \
	"margin:0 0 1em;min-width:0}"                                                          \
	".card h2{font-size:1.02em;margin:0 0 .5em;display:flex;align-items:baseline;gap:1em}" \
	".card h2 .spans{margin-left:auto;font-weight:400;font-size:.9em}"                     \
	".card h2 .spans a{margin-left:.6em}.card h2 .spans b{margin-left:.6em}"               \
	"table.kv th{width:10.5em;background:#f7f9fb;font-weight:600}"                         \
	"table.kv td,table.kv th{border-width:0 0 1px 0}"                                      \
	"table.compact td,table.compact th{padding:.25em .5em;font-size:.93em}"                \
	"td.num,th.num{text-align:right}"                                                      \
	"svg.chart{display:block;width:100%;height:auto}"                                      \
	"svg.chart text{font-size:11px;fill:#4a5866;font-family:system-ui,sans-serif}"         \
	"svg.chart .grid{stroke:#e4e9ee;stroke-width:1}"                                       \
	"svg.chart .axis{stroke:#9aa6b2;stroke-width:1}"                                       \
	".legend{display:flex;gap:1.4em;font-size:.9em;color:#3a4a5a;margin:.3em 0 0 3.2em}"   \
	".legend svg{vertical-align:-2px;margin-right:.3em}"                                   \
	".reason{max-width:48em;overflow-wrap:anywhere}"                                       \
	"a.button.danger{background:#b3261e}"

#endif
