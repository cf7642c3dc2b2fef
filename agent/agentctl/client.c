/* Talking to a running agent over its control socket: one JSON request
 * line, then JSON lines back until the agent closes (or forever, for
 * `drops --follow`). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"

const char *ctl_socket = NULL;

const char *ctl_socket_path(void)
{
	if (ctl_socket)
		return ctl_socket;
	const char *env = getenv("CORRAL_SOCKET");
	return env && *env ? env : "/run/corral/agent.sock";
}

int ctl_request(json_t *req, int (*on_line)(json_t *line, void *arg), void *arg)
{
	const char *path = ctl_socket_path();
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "%s: cannot reach the agent at %s: %s (is corral-agent running? --socket PATH "
				"or $CORRAL_SOCKET pick another)\n", ctl_prog, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	char *line = json_dumps(req, JSON_COMPACT);
	if (dprintf(fd, "%s\n", line) < 0) {
		free(line);
		close(fd);
		return 2;
	}
	free(line);
	FILE *f = fdopen(fd, "r");
	char *buf = NULL;
	size_t cap = 0;
	int rc = 0;
	while (getline(&buf, &cap, f) > 0) {
		json_error_t je;
		json_t *o = json_loads(buf, 0, &je);
		if (!o) {
			fprintf(stderr, "%s: the agent sent something unreadable: %s\n", ctl_prog, je.text);
			rc = 2;
			break;
		}
		rc = on_line(o, arg);
		json_decref(o);
		if (rc)
			break;
	}
	free(buf);
	fclose(f);
	return rc < 0 ? 0 : rc;
}

struct one {
	enum ctl_fmt fmt;
	int (*done)(json_t *data); /* the exit code from the reply's data, or NULL: 0 */
};

/* A single reply: {"ok", "text", "data", "error"}. */
static int print_reply(json_t *o, void *arg)
{
	struct one *w = arg;
	if (!json_is_true(json_object_get(o, "ok"))) {
		fprintf(stderr, "%s: %s\n", ctl_prog, json_string_value(json_object_get(o, "error")) ?: "error");
		return 2;
	}
	json_t *data = json_object_get(o, "data");
	if (w->fmt != FMT_TEXT && data)
		ctl_print_doc(stdout, json_incref(data), w->fmt);
	else
		fputs(json_string_value(json_object_get(o, "text")) ?: "", stdout);
	int rc = w->done && data ? w->done(data) : 0;
	return rc ? rc : -1; /* done */
}

static int explain_done(json_t *data)
{
	return json_is_false(json_object_get(data, "allowed")) ? 1 : 0;
}

int ctl_simple(json_t *req, enum ctl_fmt fmt)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	struct one w = { fmt, cmd && !strcmp(cmd, "explain") ? explain_done : NULL };
	int rc = ctl_request(req, print_reply, &w);
	json_decref(req);
	return rc;
}
