#include "control.h"

#include "cmd.h"
#include "fg.h"
#include "jsonin.h"
#include "log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* An import of many thousand partners fits; anything larger is refused. */
#define CONTROL_MAX_REQUEST (64u << 20)
#define CONTROL_TIMEOUT_S   120

struct client;

struct control {
	struct evconnlistener *lev;
	struct client *clients; /* so that a stop can free them all */
	struct cmd_env *env;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct client {
	struct control *ctl;
	struct bufferevent *bev;
	char who[64];
	char ctx[96];
	bool busy; /* a command is running; its reply will come */
	bool gone; /* the peer went away while busy */
	struct client *prev, *next;
};

static void client_free(struct client *c)
{
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->ctl) {
		if (c->prev)
			c->prev->next = c->next;
		else
			c->ctl->clients = c->next;
		if (c->next)
			c->next->prev = c->prev;
	}
	free(c);
}

static void flushed_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	(void)bev;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		client_free(c);
}

static void on_reply(void *ud, int status, json_t *body)
{
	struct client *c = ud;
	c->busy = false;
	if (c->gone) {
		json_decref(body);
		client_free(c);
		return;
	}
	json_t *r = json_object();
	json_object_set_new(r, "status", json_integer(status));
	json_object_set_new(r, "body", body ? body : json_object());
	char *text = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	if (text) {
		bufferevent_write(c->bev, text, strlen(text));
		bufferevent_write(c->bev, "\n", 1);
		free(text);
	}
	bufferevent_setcb(c->bev, NULL, flushed_cb, NULL, c);
	bufferevent_enable(c->bev, EV_WRITE);
	flushed_cb(c->bev, c);
}

int control_parse_request(const char *line, size_t len, struct cmd_request *cr, json_t **req,
			  char *why, size_t whylen)
{
	struct jsonin_error jerr;
	*req = jsonin_load(line, len, &jerr);
	const char *command = *req ? json_string_value(json_object_get(*req, "command")) : NULL;
	if (!command) {
		if (why && !*req) {
			char what[600];
			jsonin_describe(&jerr, what, sizeof(what));
			snprintf(why, whylen, "malformed control request: %s", what);
		} else if (why) {
			snprintf(why, whylen, "malformed control request: no \"command\"");
		}
		json_decref(*req);
		*req = NULL;
		return FG_INVAL;
	}
	cr->name = command;
	cr->params = json_object_get(*req, "params");
	cr->what_if = json_is_true(json_object_get(*req, "what_if"));
	return FG_OK;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (c->busy)
		return;
	size_t len;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	if (!line) {
		if (evbuffer_get_length(in) > CONTROL_MAX_REQUEST) {
			log_warn(c->ctx, "request over %u bytes refused", CONTROL_MAX_REQUEST);
			client_free(c);
		}
		return;
	}
	json_t *req;
	struct cmd_request cr = {.who = c->who, .iface = "cli"};
	char msg[700];
	int rc = control_parse_request(line, len, &cr, &req, msg, sizeof(msg));
	free(line);
	if (rc != FG_OK) {
		c->busy = true;
		json_t *b = json_object();
		json_t *errs = json_array();
		json_array_append_new(errs, json_pack("{s:n, s:s}", "field", "message", msg));
		json_object_set_new(b, "errors", errs);
		on_reply(c, CMD_USAGE, b);
		return;
	}
	log_info(c->ctx, "%s runs '%s'%s", c->who, cr.name, cr.what_if ? " --what-if" : "");
	c->busy = true;
	cmd_exec(c->ctl->env, &cr, on_reply, c);
	json_decref(req);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;
	(void)bev;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
		return;
	if (c->busy) {
		/* The reply callback frees it once the command finishes. */
		c->gone = true;
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	client_free(c);
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct control *ctl = arg;
	(void)sa;
	(void)salen;
	struct client *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->ctl = ctl;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	snprintf(c->who, sizeof(c->who), "unknown");
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
		struct passwd pw, *res = NULL;
		char buf[1024];
		if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) == 0 && res)
			snprintf(c->who, sizeof(c->who), "%s", pw.pw_name);
		else
			snprintf(c->who, sizeof(c->who), "uid %u", (unsigned)cred.uid);
		snprintf(c->ctx, sizeof(c->ctx), "control pid %d", (int)cred.pid);
	} else {
		snprintf(c->ctx, sizeof(c->ctx), "control");
	}
	c->bev = bufferevent_socket_new(evconnlistener_get_base(lev), fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return;
	}
	c->next = ctl->clients;
	if (ctl->clients)
		ctl->clients->prev = c;
	ctl->clients = c;
	struct timeval tv = {CONTROL_TIMEOUT_S, 0};
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	bufferevent_enable(c->bev, EV_READ);
}

static int fill_addr(const char *path, struct sockaddr_un *sun, char *err, size_t errlen)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		snprintf(err, errlen, "the control socket path %s is too long (at most %zu bytes)",
			 path, sizeof(sun->sun_path) - 1);
		return FG_INVAL;
	}
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return FG_OK;
}

/* FG_OK: something answers; FG_NOTFOUND: nothing listens. */
static int probe(const char *path, int *fd_out)
{
	struct sockaddr_un sun;
	char err[200];
	if (fill_addr(path, &sun, err, sizeof(err)) != FG_OK)
		return FG_ERR;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return FG_ERR;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int e = errno;
		close(fd);
		return (e == ENOENT || e == ECONNREFUSED) ? FG_NOTFOUND : FG_ERR;
	}
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return FG_OK;
}

struct control *control_start(struct event_base *base, const char *path, struct cmd_env *env,
			      char *err, size_t errlen)
{
	struct sockaddr_un sun;
	if (fill_addr(path, &sun, err, errlen) != FG_OK)
		return NULL;
	int rc = probe(path, NULL);
	if (rc == FG_OK) {
		snprintf(err, errlen,
			 "another fedgate answers on the control socket %s; stop it first", path);
		return NULL;
	}
	/* Nobody answers: a file left by a crash is safe to replace. */
	unlink(path);
	struct control *ctl = calloc(1, sizeof(*ctl));
	if (!ctl) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ctl->env = env;
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	mode_t old = umask(0117); /* the socket is born 0660 */
	ctl->lev = evconnlistener_new_bind(base, accept_cb, ctl, LEV_OPT_CLOSE_ON_FREE, 16,
					   (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (!ctl->lev) {
		snprintf(err, errlen, "cannot listen on the control socket %s: %s", path,
			 strerror(errno));
		free(ctl);
		return NULL;
	}
	chmod(path, 0660);
	return ctl;
}

void control_stop(struct control **cp)
{
	if (!cp || !*cp)
		return;
	struct control *ctl = *cp;
	/* Idle clients go now; a busy one is freed by its reply, which the
	 * store's shutdown delivers. */
	while (ctl->clients) {
		struct client *c = ctl->clients;
		ctl->clients = c->next;
		c->ctl = NULL;
		c->prev = c->next = NULL;
		if (c->busy) {
			c->gone = true;
			if (c->bev)
				bufferevent_free(c->bev);
			c->bev = NULL;
		} else {
			/* A reply already queued (that of `fedgate stop`) goes
			 * out before the socket closes: one write to a local
			 * socket takes a reply this small. */
			if (c->bev) {
				/* The buffer is the bufferevent's to drain, so
				 * it is copied out, not written from. */
				struct evbuffer *out = bufferevent_get_output(c->bev);
				size_t n = evbuffer_get_length(out);
				unsigned char *p = n ? evbuffer_pullup(out, -1) : NULL;
				if (p && write(bufferevent_getfd(c->bev), p, n) < 0)
					log_debug("control", "last reply lost: %s",
						  strerror(errno));
			}
			client_free(c);
		}
	}
	evconnlistener_free(ctl->lev);
	unlink(ctl->path);
	free(ctl);
	*cp = NULL;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return FG_ERR;
		}
		p += w;
		n -= (size_t)w;
	}
	return FG_OK;
}

int control_call(const char *path, const char *command, json_t *params, int what_if, int *status,
		 json_t **body, char *err, size_t errlen)
{
	int fd = -1;
	int rc = probe(path, &fd);
	if (rc == FG_NOTFOUND)
		return FG_NOTFOUND;
	if (rc != FG_OK) {
		snprintf(err, errlen, "cannot reach the daemon on %s: %s", path, strerror(errno));
		return FG_ERR;
	}
	json_t *req = json_object();
	json_object_set_new(req, "command", json_string(command));
	json_object_set(req, "params", params);
	json_object_set_new(req, "what_if", json_boolean(what_if));
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	rc = FG_ERR;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	if (!text || write_all(fd, text, strlen(text)) != FG_OK ||
	    write_all(fd, "\n", 1) != FG_OK) {
		snprintf(err, errlen, "cannot send the request to the daemon on %s", path);
		goto out;
	}
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int pr = poll(&pfd, 1, CONTROL_TIMEOUT_S * 1000);
		if (pr == 0) {
			snprintf(err, errlen, "the daemon did not answer within %d seconds",
				 CONTROL_TIMEOUT_S);
			goto out;
		}
		if (pr < 0 && errno == EINTR)
			continue;
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 131072;
			char *nb = realloc(buf, cap);
			if (!nb)
				goto out;
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (buf[len - 1] == '\n')
			break;
	}
	json_error_t jerr;
	json_t *r = buf ? json_loadb(buf, len, 0, &jerr) : NULL;
	if (!r || !json_is_integer(json_object_get(r, "status"))) {
		snprintf(err, errlen, "the daemon on %s sent no valid answer", path);
		json_decref(r);
		goto out;
	}
	*status = (int)json_integer_value(json_object_get(r, "status"));
	*body = json_incref(json_object_get(r, "body"));
	json_decref(r);
	rc = FG_OK;
out:
	free(text);
	free(buf);
	close(fd);
	return rc;
}

enum control_knock control_knock(const char *path, pid_t *pid)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	enum control_knock k;

	if (pid)
		*pid = 0;
	if (strlen(path) >= sizeof(sun.sun_path))
		return CONTROL_ABSENT;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return CONTROL_UNREACHABLE;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		k = CONTROL_LISTENING;
		if (pid && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
			*pid = cred.pid;
	} else {
		k = errno == ENOENT || errno == ECONNREFUSED ? CONTROL_ABSENT : CONTROL_UNREACHABLE;
	}
	close(fd);
	return k;
}
