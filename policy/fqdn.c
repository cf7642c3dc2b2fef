#include "fqdn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------- patterns ---------- */

/* One label of a lower-case DNS name: 1-63 of [a-z0-9-], alphanumeric at
 * both ends (RFC 1123 2.1, as Kubernetes' DNS-1123 label). */
static bool label_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* A name of two labels or more. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s), labels = 0;
	if (n == 0 || n > FQDN_MAX)
		return false;
	for (const char *p = s;; labels++) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (!label_ok(p, len))
			return false;
		if (!dot)
			break;
		p = dot + 1;
	}
	return labels >= 1;
}

bool fqdn_pattern_ok(const char *s)
{
	if (!strncmp(s, "*.", 2))
		return strlen(s) <= FQDN_MAX && name_ok(s + 2);
	return name_ok(s);
}

bool fqdn_match(const char *pattern, const char *name)
{
	if (strncmp(pattern, "*.", 2))
		return !strcmp(pattern, name);
	const char *dot = strchr(name, '.'); /* exactly one label before the suffix */
	return dot && dot != name && !strcmp(dot + 1, pattern + 2);
}

/* ---------- learned addresses ---------- */

static bool addr_eq(const void *item, const void *key)
{
	return ip_eq(((const struct fqdn_addr *)item)->a, *(const ip128 *)key);
}

static uint64_t addr_hash(ip128 a)
{
	return hash_bytes(&a, sizeof(a), 0x66716471);
}

const struct fqdn_addr *fqdn_set_find(const struct fqdn_set *s, ip128 a)
{
	return s ? htab_find(&s->h, addr_hash(a), addr_eq, &a) : NULL;
}

bool fqdn_set_live(const struct fqdn_set *s, ip128 a, uint64_t now_ms)
{
	const struct fqdn_addr *x = fqdn_set_find(s, a);
	return x && x->expires_ms > now_ms;
}

size_t fqdn_set_count(const struct fqdn_set *s)
{
	return s ? s->h.n : 0;
}

size_t fqdn_set_live_count(const struct fqdn_set *s, uint64_t now_ms)
{
	size_t n = 0;
	struct fqdn_addr *x;
	if (!s)
		return 0;
	htab_foreach(&s->h, x) n += x->expires_ms > now_ms;
	return n;
}

static void forget(struct fqdn_set *s, struct fqdn_addr *x)
{
	htab_remove(&s->h, addr_hash(x->a), addr_eq, &x->a);
	free(x);
}

/* Room for one more: the remembered (expired) entry that expired first
 * goes; false when every entry is live. */
static bool make_room(struct fqdn_set *s, uint64_t now_ms)
{
	struct fqdn_addr *x, *oldest = NULL;
	htab_foreach(&s->h, x) if (x->expires_ms <= now_ms && (!oldest || x->expires_ms < oldest->expires_ms)) oldest = x;
	if (!oldest)
		return false;
	forget(s, oldest);
	return true;
}

int fqdn_set_learn(struct fqdn_set *s, ip128 a, const char *name, uint64_t now_ms, uint64_t ttl_ms, size_t cap)
{
	struct fqdn_addr *x = htab_find(&s->h, addr_hash(a), addr_eq, &a);
	uint64_t until = now_ms + ttl_ms;
	if (x) {
		if (until >= x->expires_ms) { /* the latest answer names it */
			snprintf(x->name, sizeof(x->name), "%s", name);
			x->expires_ms = until;
		}
		if (x->expired_counted) /* expired, now learned again */
			x->learned_ms = now_ms;
		x->expired_counted = false;
		x->seen_ms = now_ms;
		return FQDN_REFRESHED;
	}
	if (s->h.n >= cap && !make_room(s, now_ms))
		return -ENOSPC;
	x = xcalloc(1, sizeof(*x));
	x->a = a;
	x->learned_ms = x->seen_ms = now_ms;
	x->expires_ms = until;
	snprintf(x->name, sizeof(x->name), "%s", name);
	htab_insert(&s->h, addr_hash(a), x);
	return FQDN_NEW;
}

void fqdn_set_expire(struct fqdn_set *s, uint64_t now_ms, uint64_t forget_ms, uint64_t *expired)
{
	struct vec gone = { 0 };
	struct fqdn_addr *x;
	htab_foreach(&s->h, x) {
		if (x->expires_ms > now_ms)
			continue;
		if (!x->expired_counted) {
			x->expired_counted = true;
			++*expired;
		}
		if (now_ms - x->expires_ms >= forget_ms)
			vec_push(&gone, x);
	}
	for (size_t i = 0; i < gone.n; i++)
		forget(s, gone.v[i]);
	vec_free(&gone);
}

static int entry_cmp(const void *a, const void *b)
{
	return ip_cmp((*(const struct fqdn_addr *const *)a)->a, (*(const struct fqdn_addr *const *)b)->a);
}

void fqdn_set_list(const struct fqdn_set *s, struct vec *out)
{
	struct fqdn_addr *x;
	if (!s)
		return;
	htab_foreach(&s->h, x) vec_push(out, x);
	vec_sort(out, entry_cmp);
}

void fqdn_set_clear(struct fqdn_set *s)
{
	struct fqdn_addr *x;
	if (!s)
		return;
	htab_foreach(&s->h, x) free(x);
	htab_free(&s->h);
}

/* ---------- clock ---------- */

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t (*clock_fn)(void) = mono_ms;

uint64_t fqdn_now_ms(void)
{
	return clock_fn();
}

void fqdn_clock_set(uint64_t (*fn)(void))
{
	clock_fn = fn ? fn : mono_ms;
}
