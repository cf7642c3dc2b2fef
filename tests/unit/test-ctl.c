/* Review: the control socket (agent/daemon/ctl.c) never makes the event
 * loop spin or wait, whatever its clients do. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/daemon/ctl.h"

static char path[108];

static void cmd_echo(void *arg, struct ctl_client *c, json_t *req)
{
	(void)arg;
	json_t *n = json_object_get(req, "bytes");
	size_t len = json_is_integer(n) ? (size_t)json_integer_value(n) : 10;
	char *s = malloc(len + 1);
	memset(s, 'x', len);
	s[len] = 0;
	ctl_reply(c, json_string(s), NULL, NULL);
	free(s);
}

static const struct ctl_cmd cmds[] = { { "echo", cmd_echo } };

static int dial(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static bool readable(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	return poll(&p, 1, 0) == 1;
}

/* A client that sends its request and half-closes (shutdown(SHUT_WR), as
 * `echo '{...}' | socat - UNIX:...` does) gets its whole answer. */
static void half_close_gets_answer(void **st)
{
	struct ctl *c = NULL;
	char *err = NULL;
	assert_int_equal(ctl_new(&c, path, cmds, 1, NULL, &err), 0);
	int fd = dial();
	const char *req = "{\"cmd\": \"echo\", \"bytes\": 400000}\n";
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	shutdown(fd, SHUT_WR);
	size_t got = 0;
	char buf[65536];
	for (int i = 0; i < 2000; i++) {
		ctl_dispatch(c);
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			got += (size_t)n;
		usleep(1000);
	}
	assert_true(got > 400000);
	close(fd);
	ctl_free(c);
}

/* Out of descriptors (EMFILE): accept4 fails, the connection stays in
 * the backlog and the listening socket stays readable. The agent's loop
 * waits on ctl_fd(): it must not find it readable again at once after a
 * dispatch, or the single-threaded agent spins at 100% CPU for as long as
 * the descriptors are short (and new clients wait). */
static void emfile_does_not_spin(void **st)
{
	struct ctl *c = NULL;
	char *err = NULL;
	assert_int_equal(ctl_new(&c, path, cmds, 1, NULL, &err), 0);
	int fd = dial(); /* pending in the backlog */
	struct rlimit old, lim;
	getrlimit(RLIMIT_NOFILE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)fd + 1; /* no descriptor left for accept4 */
	setrlimit(RLIMIT_NOFILE, &lim);
	int spins = 0;
	for (int i = 0; i < 100; i++) {
		if (!readable(ctl_fd(c)))
			break;
		ctl_dispatch(c);
		spins++;
	}
	setrlimit(RLIMIT_NOFILE, &old);
	print_message("ctl_fd readable again after %d dispatches in a row\n", spins);
	assert_true(spins <= 2);
	close(fd);
	ctl_free(c);
}

/* Clients that connect and never send anything are not kept for ever: a
 * bounded number (or a timeout). main keeps every one, each holding a
 * descriptor and a 64 KiB input buffer, until the agent runs out of
 * descriptors (then see emfile_does_not_spin). */
static void idle_clients_bounded(void **st)
{
	struct ctl *c = NULL;
	char *err = NULL;
	assert_int_equal(ctl_new(&c, path, cmds, 1, NULL, &err), 0);
	enum { N = 300 };
	int fds[N];
	for (int i = 0; i < N; i++) {
		fds[i] = dial();
		ctl_dispatch(c);
	}
	ctl_dispatch(c);
	size_t open_ = 0;
	for (int i = 0; i < N; i++) { /* closed by the agent: EOF readable */
		char b;
		open_ += recv(fds[i], &b, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
	}
	print_message("%zu of %d idle clients kept\n", open_, N);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	ctl_free(c);
	assert_true(open_ <= 128);
}

int main(void)
{
	snprintf(path, sizeof(path), "/tmp/corral-test-ctl-%d.sock", getpid());
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(half_close_gets_answer),
		cmocka_unit_test(emfile_does_not_spin),
		cmocka_unit_test(idle_clients_bounded),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(path);
	return rc;
}
