/* Reload (SIGHUP, `fedgate reload`): the configuration file, certificates
 * and keys read again while streams stay up. */
#ifndef FG_RELOAD_H
#define FG_RELOAD_H

#include <jansson.h>

struct server;

/* Reads srv->conf->path again. On success every key that can change live
 * takes its new value, new connections get the new certificates (streams
 * already open keep theirs), keys that need a restart keep running on
 * their old values and are reported, and the result goes to body's
 * "result" ({"applied": [...], "restart_needed": [...], "certificate":
 * {...}}); returns CMD_OK. When the file has errors or a certificate or key
 * cannot be loaded, nothing changes, each error (with its line) is logged
 * and added to body's "errors", and it returns CMD_REFUSED. body comes from
 * cmd_body_new(). */
int reload_run(struct server *srv, json_t *body);

#endif
