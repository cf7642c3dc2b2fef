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
		fprintf(stderr, "agentctl: cannot reach the agent at %s: %s (is corral-agent running? --socket PATH "
				"or $CORRAL_SOCKET pick another)\n", path, strerror(errno));
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
			fprintf(stderr, "agentctl: the agent sent something unreadable: %s\n", je.text);
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
	bool json;
};

/* A single reply: {"ok", "text", "data", "error"}. */
static int print_reply(json_t *o, void *arg)
{
	struct one *w = arg;
	if (!json_is_true(json_object_get(o, "ok"))) {
		fprintf(stderr, "agentctl: %s\n", json_string_value(json_object_get(o, "error")) ?: "error");
		return 1;
	}
	json_t *data = json_object_get(o, "data");
	if (w->json && data) {
		json_dumpf(data, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		fputs(json_string_value(json_object_get(o, "text")) ?: "", stdout);
	}
	return -1; /* done */
}

int ctl_simple(json_t *req, bool json)
{
	struct one w = { json };
	int rc = ctl_request(req, print_reply, &w);
	json_decref(req);
	return rc;
}
