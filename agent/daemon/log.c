#define _GNU_SOURCE
#include "agent/daemon/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/clip.h"

static bool g_json;
static enum log_level g_min = LOG_INFO;
static const char *const names[] = { "debug", "info", "warn", "error" };

void log_setup(bool json, enum log_level min)
{
	g_json = json;
	g_min = min;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

void log_msg(enum log_level l, const char *event, const char *fmt, ...)
{
	if (l < g_min)
		return;
	char *raw, *msg, ts[40];
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&raw, fmt, ap) < 0)
		abort();
	va_end(ap);
	msg = clip_msg(raw, 0); /* messages quote input: never a whole 1 MB value */
	free(raw);
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
	if (g_json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "time", ts, "level", names[l], "event", event, "msg", msg);
		char *line = json_dumps(o, JSON_COMPACT);
		fprintf(stderr, "%s\n", line);
		free(line);
		json_decref(o);
	} else {
		fprintf(stderr, "%s %-5s %s: %s\n", ts, names[l], event, msg);
	}
	fflush(stderr);
	free(msg);
}
