#include "kube/stream.h"
#include "kube/yaml.h"

#include <errno.h>
#include <string.h>

static const char *const names[] = { "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR" };

void kube_stream_reset(struct kube_stream *s)
{
	sbuf_free(&s->buf);
	memset(&s->buf, 0, sizeof(s->buf));
}

static int one(struct kube_stream *s, const char *line, size_t len, kube_event_cb cb, void *arg, char **err)
{
	json_error_t je;
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (!len)
		return 0; /* blank line between events */
	if (s->raw && s->raw(line, len, arg)) {
		s->events++;
		return 0;
	}
	/* JSON_ALLOW_NUL: the API server stores "\u0000" in any free text (an
	 * annotation); refusing it dropped the stream at that event and resumed
	 * before it, for ever. The decoder refuses a NUL where it reads. */
	size_t slen = 0;
	char *stripped = kube_json_strip_managed(line, len, &slen); /* yaml.h: never read, 40% of an object */
	json_t *o = json_loadb(stripped ? stripped : line, stripped ? slen : len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
			       &je);
	free(stripped);
	if (!o || !json_is_object(o)) {
		*err = xasprintf("watch event %zu: malformed JSON: %s", s->events + 1, o ? "not an object" : je.text);
		json_decref(o);
		return -EBADMSG;
	}
	const char *t = json_string_value(json_object_get(o, "type"));
	json_t *obj = json_object_get(o, "object");
	int type = -1;
	for (int i = 0; t && i < 5; i++)
		if (!strcmp(t, names[i]))
			type = i;
	if (type < 0 || !json_is_object(obj)) {
		*err = xasprintf("watch event %zu: %s", s->events + 1,
				 type < 0 ? "unknown event type" : "event without an object");
		if (t && type < 0) {
			char *e2 = xasprintf("%s \"%.40s\"", *err, t);
			free(*err);
			*err = e2;
		}
		json_decref(o);
		return -EBADMSG;
	}
	s->events++;
	struct kube_event ev = { (enum kube_ev)type, obj };
	int rc = cb(&ev, arg);
	json_decref(o);
	return rc;
}

int kube_stream_feed(struct kube_stream *s, const char *data, size_t len, kube_event_cb cb, void *arg, char **err)
{
	size_t max = s->max_event ? s->max_event : (16u << 20);
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		if (s->buf.n + take > max) {
			*err = xasprintf("watch event %zu: larger than %zu bytes", s->events + 1, max);
			kube_stream_reset(s);
			return -EBADMSG;
		}
		if (!nl) {
			sbuf_addn(&s->buf, data, take);
			return 0;
		}
		int rc;
		if (s->buf.n) {
			sbuf_addn(&s->buf, data, take);
			rc = one(s, s->buf.s, s->buf.n, cb, arg, err);
			s->buf.n = 0;
		} else {
			rc = one(s, data, take, cb, arg, err);
		}
		if (rc)
			return rc;
		data += take + 1;
		len -= take + 1;
	}
	return 0;
}

int kube_stream_end(struct kube_stream *s, char **err)
{
	size_t n = s->buf.n;
	while (n && (s->buf.s[n - 1] == ' ' || s->buf.s[n - 1] == '\r' || s->buf.s[n - 1] == '\t'))
		n--;
	kube_stream_reset(s);
	if (n) {
		*err = xasprintf("watch stream ended inside an event (%zu bytes of it dropped)", n);
		return -EBADMSG;
	}
	return 0;
}
