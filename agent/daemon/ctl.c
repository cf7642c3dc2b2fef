/* The control socket (see ctl.h). Its clients live in an epoll set of
 * their own, whose fd the agent's event loop polls: one readiness there
 * means "call ctl_dispatch". */
#define _GNU_SOURCE
#include "agent/daemon/ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "policy/util.h"

struct ctl_client {
	struct ctl *ctl;
	int fd;
	char *in;
	size_t nin;
	struct sbuf out;
	size_t sent;       /* bytes of out already written */
	bool follow, detail, closing, truncated;
	uint64_t lost;     /* lines this subscriber lost and was not yet told of */
	uint32_t events;   /* what epoll waits for */
};

struct ctl {
	int ep, listen_fd;
	char *path;
	const struct ctl_cmd *cmds;
	size_t ncmds;
	void *arg;
	struct vec clients; /* struct ctl_client* */
	uint64_t lost;
};

static int listen_on(const char *path, char **err)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int e;
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			e = errno;
			*err = xasprintf("control socket folder %s: %s", dir, strerror(e));
			free(dir);
			return -e;
		}
	}
	free(dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		*err = xasprintf("control socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		e = errno;
		*err = xasprintf("control socket: %s", strerror(e));
		return -e;
	}
	unlink(path);
	mode_t old = umask(0177); /* the socket is root's only: 0600 */
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || listen(fd, 16) < 0) {
		e = errno;
		*err = xasprintf("control socket %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	chmod(path, 0600);
	return fd;
}

static int watch(struct ctl *c, int fd, uint32_t events, void *ptr, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };
	return epoll_ctl(c->ep, op, fd, &ev) < 0 ? -errno : 0;
}

int ctl_new(struct ctl **out, const char *path, const struct ctl_cmd *cmds, size_t ncmds, void *arg, char **err)
{
	struct ctl *c = xcalloc(1, sizeof(*c));
	c->cmds = cmds;
	c->ncmds = ncmds;
	c->arg = arg;
	c->path = xstrdup(path);
	c->listen_fd = -1;
	int rc;
	if ((c->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		rc = -errno;
		*err = xasprintf("control socket: epoll: %s", strerror(-rc));
	} else if ((rc = listen_on(path, err)) >= 0) {
		c->listen_fd = rc;
		if ((rc = watch(c, c->listen_fd, EPOLLIN, NULL, EPOLL_CTL_ADD)) < 0)
			*err = xasprintf("control socket: epoll: %s", strerror(-rc));
	}
	if (rc < 0) {
		ctl_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

static void client_close(struct ctl_client *cl)
{
	struct ctl *c = cl->ctl;
	epoll_ctl(c->ep, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	vec_remove(&c->clients, cl);
	free(cl->in);
	sbuf_free(&cl->out);
	free(cl);
}

void ctl_free(struct ctl *c)
{
	if (!c)
		return;
	while (c->clients.n)
		client_close(c->clients.v[0]);
	vec_free(&c->clients);
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->path);
	}
	if (c->ep >= 0)
		close(c->ep);
	free(c->path);
	free(c);
}

int ctl_fd(const struct ctl *c)
{
	return c->ep;
}

/* ---------- output ---------- */

static size_t pending(const struct ctl_client *cl)
{
	return cl->out.n - cl->sent;
}

static void set_events(struct ctl_client *cl, uint32_t events)
{
	if (events != cl->events && watch(cl->ctl, cl->fd, events, cl, EPOLL_CTL_MOD) == 0)
		cl->events = events;
}

/* Writes what the socket takes now; false when the client is gone. */
static bool flush(struct ctl_client *cl)
{
	while (pending(cl)) {
		ssize_t n = send(cl->fd, cl->out.s + cl->sent, pending(cl), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return false;
		cl->sent += (size_t)n;
	}
	if (!pending(cl)) {
		cl->out.n = cl->sent = 0;
		if (cl->closing)
			return false;
	}
	set_events(cl, pending(cl) ? EPOLLOUT : cl->closing ? EPOLLOUT : EPOLLIN);
	return true;
}

static bool append_line(struct ctl_client *cl, const char *line, size_t max)
{
	size_t len = strlen(line);
	if (pending(cl) + len + 1 > max)
		return false;
	if (cl->sent && cl->sent >= cl->out.n / 2) { /* what was written goes: the buffer stays bounded */
		memmove(cl->out.s, cl->out.s + cl->sent, cl->out.n - cl->sent);
		cl->out.n -= cl->sent;
		cl->sent = 0;
	}
	sbuf_addn(&cl->out, line, len);
	sbuf_addn(&cl->out, "\n", 1);
	return true;
}

bool ctl_send(struct ctl_client *cl, json_t *o)
{
	char *line = json_dumps(o, JSON_COMPACT);
	bool ok = line && append_line(cl, line, cl->follow ? CTL_FOLLOW_MAX : CTL_OUT_MAX);
	free(line);
	if (!ok && !cl->follow && !cl->truncated) {
		/* a reply too large for its buffer: say so rather than block */
		cl->truncated = true;
		char note[96];
		snprintf(note, sizeof(note), "{\"ok\":false,\"error\":\"reply larger than %u bytes: cut short\"}", CTL_OUT_MAX);
		sbuf_addf(&cl->out, "%s\n", note);
	}
	return ok;
}

void ctl_reply(struct ctl_client *cl, json_t *data, char *text, const char *error)
{
	json_t *o = json_pack("{s:b}", "ok", error == NULL);
	if (data)
		json_object_set_new(o, "data", data);
	if (text)
		json_object_set_new(o, "text", json_string(text));
	if (error)
		json_object_set_new(o, "error", json_string(error));
	ctl_send(cl, o);
	json_decref(o);
	free(text);
}

void ctl_follow(struct ctl_client *cl, bool detail)
{
	cl->follow = true;
	cl->detail = detail;
}

void ctl_publish(struct ctl *c, json_t *(*make)(void *arg, bool detail), void *arg)
{
	char *line[2] = { NULL, NULL };
	for (size_t i = 0; i < c->clients.n; i++) {
		struct ctl_client *cl = c->clients.v[i];
		if (!cl->follow || cl->closing)
			continue;
		if (!line[cl->detail]) {
			json_t *o = make(arg, cl->detail);
			line[cl->detail] = json_dumps(o, JSON_COMPACT);
			json_decref(o);
		}
		if (cl->lost) { /* caught up enough: tell it what it missed first */
			char note[64];
			snprintf(note, sizeof(note), "{\"lost\":%llu}", (unsigned long long)cl->lost);
			if (append_line(cl, note, CTL_FOLLOW_MAX))
				cl->lost = 0;
		}
		if (cl->lost || !append_line(cl, line[cl->detail], CTL_FOLLOW_MAX)) {
			cl->lost++;
			c->lost++;
			continue;
		}
		if (!flush(cl)) {
			client_close(cl);
			i--;
		}
	}
	free(line[0]);
	free(line[1]);
}

size_t ctl_followers(const struct ctl *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->clients.n; i++)
		n += ((struct ctl_client *)c->clients.v[i])->follow;
	return n;
}

uint64_t ctl_lost(const struct ctl *c)
{
	return c->lost;
}

/* ---------- input ---------- */

static void handle(struct ctl_client *cl, char *line)
{
	struct ctl *c = cl->ctl;
	json_error_t je;
	json_t *req = json_loads(line, 0, &je);
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	if (!req) {
		ctl_reply(cl, NULL, NULL, "malformed request");
	} else if (!cmd) {
		ctl_reply(cl, NULL, NULL, "request without cmd");
	} else {
		size_t i = 0;
		while (i < c->ncmds && strcmp(c->cmds[i].name, cmd))
			i++;
		if (i < c->ncmds) {
			c->cmds[i].fn(c->arg, cl, req);
		} else {
			struct sbuf b = { 0 };
			for (size_t k = 0; k < c->ncmds; k++)
				sbuf_addf(&b, "%s%s", k ? ", " : "", c->cmds[k].name);
			char *m = xasprintf("unknown command (%s)", b.s);
			ctl_reply(cl, NULL, NULL, m);
			free(m);
			sbuf_free(&b);
		}
	}
	json_decref(req);
	if (!cl->follow)
		cl->closing = true; /* one request, one answer */
}

/* Reads what has come; a whole line is a request. false: close it. */
static bool on_input(struct ctl_client *cl)
{
	for (;;) {
		if (cl->nin == CTL_IN_MAX) {
			ctl_reply(cl, NULL, NULL, "request line too long");
			cl->closing = true;
			return flush(cl);
		}
		ssize_t n = recv(cl->fd, cl->in + cl->nin, CTL_IN_MAX - cl->nin, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0) /* gone (a subscriber hanging up, or a request cut short) */
			return false;
		char *nl = memchr(cl->in + cl->nin, '\n', (size_t)n);
		cl->nin += (size_t)n;
		if (nl && !cl->closing && !cl->follow) {
			*nl = 0;
			handle(cl, cl->in);
			return flush(cl);
		}
		if (cl->follow) /* a subscriber has nothing more to say */
			cl->nin = 0;
	}
}

static void accept_all(struct ctl *c)
{
	int fd;
	while ((fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		struct ctl_client *cl = xcalloc(1, sizeof(*cl));
		cl->ctl = c;
		cl->fd = fd;
		cl->in = xmalloc(CTL_IN_MAX);
		cl->events = EPOLLIN;
		if (watch(c, fd, EPOLLIN, cl, EPOLL_CTL_ADD) < 0) {
			close(fd);
			free(cl->in);
			free(cl);
			continue;
		}
		vec_push(&c->clients, cl);
	}
}

void ctl_dispatch(struct ctl *c)
{
	struct epoll_event evs[32];
	int n = epoll_wait(c->ep, evs, 32, 0);
	for (int i = 0; i < n; i++) {
		struct ctl_client *cl = evs[i].data.ptr;
		if (!cl) {
			accept_all(c);
			continue;
		}
		bool keep = true;
		if (evs[i].events & EPOLLIN)
			keep = on_input(cl);
		if (keep && (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			keep = !(evs[i].events & EPOLLERR) && flush(cl);
		if (!keep)
			client_close(cl);
	}
}
