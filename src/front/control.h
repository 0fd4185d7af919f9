/* The control socket: the CLI's way into a running daemon. One JSON request
 * per connection, one JSON reply, then close:
 *   -> {"command": "partner set", "params": {...}, "what_if": false}
 *   <- {"status": 0, "body": {...}}
 * The caller's identity comes from the socket (SO_PEERCRED), never from
 * the request. The socket is owner and group only (0660). */
#ifndef FG_CONTROL_H
#define FG_CONTROL_H

#include <event2/event.h>
#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

struct cmd_env;
struct cmd_request;
struct control;

/* Listens on path. A stale socket file (nobody answers) is replaced; one a
 * running daemon answers on is an error. */
struct control *control_start(struct event_base *base, const char *path, struct cmd_env *env,
			      char *err, size_t errlen);
/* Stops listening and removes the socket file. Requests under way still
 * get their replies if the loop runs on. Accepts NULL, clears the pointer. */
void control_stop(struct control **c);

/* Reads one request line (without its newline) into cr: name, params and
 * what_if, which borrow from *req; the caller sets who and iface and
 * json_decref()s *req once the command has run. FG_INVAL for a line that
 * is not a JSON object with a string "command" (a key given twice is
 * refused too); *req is NULL then, and why (may be NULL) says what is
 * wrong and where. */
int control_parse_request(const char *line, size_t len, struct cmd_request *cr, json_t **req,
			  char *why, size_t whylen);

/* Client side. Returns FG_OK with *status and *body (owned by the caller)
 * when the daemon answered, FG_NOTFOUND when no daemon listens on path,
 * FG_ERR with err set when it listens but the exchange failed. */
int control_call(const char *path, const char *command, json_t *params, int what_if, int *status,
		 json_t **body, char *err, size_t errlen);

/* Knocks on the control socket at path without sending anything: is a
 * daemon there? CONTROL_ABSENT: no socket, or nobody listens on it (a
 * daemon that died); CONTROL_LISTENING: a process accepted, *pid (when not
 * NULL) its process id; CONTROL_UNREACHABLE: something is there but this
 * user may not connect (permissions), so a daemon may well run. */
enum control_knock { CONTROL_ABSENT, CONTROL_LISTENING, CONTROL_UNREACHABLE };
enum control_knock control_knock(const char *path, pid_t *pid);

#endif
