/* The body of a watch: JSON events, one per line, in whatever chunks the
 * network delivers. Parses the byte stream, never the chunks. */
#ifndef CORRAL_KUBE_STREAM_H
#define CORRAL_KUBE_STREAM_H

#include <jansson.h>
#include <stddef.h>

#include "policy/util.h"

enum kube_ev { KEV_ADDED, KEV_MODIFIED, KEV_DELETED, KEV_BOOKMARK, KEV_ERROR };

struct kube_event {
	enum kube_ev type;
	json_t *object; /* borrowed: valid during the callback */
};

struct kube_stream {
	struct sbuf buf;   /* bytes of the event being received */
	size_t max_event;  /* larger events are an error (default 16 MiB) */
	size_t events;
	/* If set, each event's line (without its newline) comes here first,
	 * with the callback's arg; true: it was read there (a pod scanned,
	 * kube/podscan.h), the callback is not called for it. */
	bool (*raw)(const char *line, size_t len, void *arg);
};

/* Returns 0 to go on, non-zero to stop the stream (passed back). */
typedef int (*kube_event_cb)(const struct kube_event *ev, void *arg);

/* Feeds bytes; calls cb for every complete event. Returns 0, the
 * callback's non-zero value, or -EBADMSG with *err set for malformed
 * JSON, an unknown event type or an oversized event: the caller must drop
 * the stream (no half-read object is ever delivered). */
int kube_stream_feed(struct kube_stream *s, const char *data, size_t len, kube_event_cb cb, void *arg, char **err);
/* The body ended: bytes left over are a truncated event (-EBADMSG). */
int kube_stream_end(struct kube_stream *s, char **err);
void kube_stream_reset(struct kube_stream *s);

#endif
