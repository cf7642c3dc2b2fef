/* The control socket (agentctl's side of the agent): a request is one JSON
 * line {"cmd": NAME, ...}; answers are JSON lines. Commands come from a
 * table. Every client socket is non-blocking with bounded buffers, so a
 * client that stops reading never holds the event loop: a reply that
 * outgrows its buffer is cut short (and says so), and a `drops --follow`
 * subscriber that cannot keep up loses lines, counted, and is told how
 * many when it catches up. */
#ifndef CORRAL_CTL_H
#define CORRAL_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_IN_MAX (64u << 10)      /* a request line */
#define CTL_OUT_MAX (16u << 20)     /* one reply (a dump, the drop ring with explanations) */
#define CTL_FOLLOW_MAX (1u << 20)   /* what a subscriber may have unread */

struct ctl;
struct ctl_client;

struct ctl_cmd {
	const char *name;
	/* answers with ctl_reply/ctl_send; ctl_follow keeps the client */
	void (*fn)(void *arg, struct ctl_client *c, json_t *req);
};

/* Listens on path (0600, its folder made 0700). 0 or -errno with *err. */
int ctl_new(struct ctl **out, const char *path, const struct ctl_cmd *cmds, size_t ncmds, void *arg, char **err);
/* Closes every client and removes the socket. NULL is fine. */
void ctl_free(struct ctl *c);
/* One fd for the event loop: readable when a client or the listener is. */
int ctl_fd(const struct ctl *c);
/* Accepts, reads and writes whatever is ready; never blocks. */
void ctl_dispatch(struct ctl *c);

/* Queues one line for the client; false if it does not fit. */
bool ctl_send(struct ctl_client *cl, json_t *o);
/* {"ok": ..., "data": data, "text": text, "error": error}; takes data and text. */
void ctl_reply(struct ctl_client *cl, json_t *data, char *text, const char *error);
/* Keeps the client after this request: it receives ctl_publish lines. */
void ctl_follow(struct ctl_client *cl, bool detail);

/* A line for every subscriber that has room (make is asked once per
 * distinct detail flag); the others lose it, counted. */
void ctl_publish(struct ctl *c, json_t *(*make)(void *arg, bool detail), void *arg);
size_t ctl_followers(const struct ctl *c);
uint64_t ctl_lost(const struct ctl *c); /* lines subscribers lost, in all */

#endif
