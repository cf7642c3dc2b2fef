/* Host names in policies (AccessPolicy outbound.external[].host) and the
 * addresses learned for them from DNS answers.
 *
 * A host pattern is a lower-case DNS name with at least two labels
 * ("api.example.com"), or "*." and such a name ("*.example.com"), which
 * matches exactly one more label ("a.example.com", not "example.com" nor
 * "a.b.example.com"), as the CRD's wildcard does.
 *
 * A learned set holds the addresses answers gave for one pattern, each
 * with the name the answer was for and its expiry (the answer's TTL plus
 * a grace). An address past its expiry is no longer admitted for new
 * flows (the kernel's element timed out at the same moment), but it is
 * remembered until forgotten (fqdn_set_expire), so that a flow opened
 * while it was live is not judged unknown later. Pure: times are given
 * by the caller (fqdn_now_ms() for the monotonic clock). */
#ifndef CORRAL_FQDN_H
#define CORRAL_FQDN_H

#include "addr.h"
#include "util.h"

#define FQDN_MAX 253 /* a name's length in text, without the final dot */

/* Whether s is a valid host pattern (above). */
bool fqdn_pattern_ok(const char *s);
/* Whether pattern matches name (lower case, no final dot). */
bool fqdn_match(const char *pattern, const char *name);

struct fqdn_addr {
	ip128 a;
	uint64_t learned_ms; /* first learned (monotonic ms) */
	uint64_t seen_ms;    /* last answer that gave it */
	uint64_t expires_ms; /* seen + TTL + grace */
	char name[FQDN_MAX + 1]; /* the name whose answer gave it (the query or a CNAME on its chain) */
	bool expired_counted;    /* counted once as expired */
};

struct fqdn_set {
	struct htab h; /* struct fqdn_addr, by address */
};

enum fqdn_learn_result { FQDN_NEW = 1, FQDN_REFRESHED = 0 };

/* Learns a for name until now + ttl_ms (an earlier expiry never shortens
 * a later one). At most cap addresses (live or remembered): when full,
 * remembered ones are forgotten first; -ENOSPC when every one is live. */
int fqdn_set_learn(struct fqdn_set *s, ip128 a, const char *name, uint64_t now_ms, uint64_t ttl_ms, size_t cap);
const struct fqdn_addr *fqdn_set_find(const struct fqdn_set *s, ip128 a);
/* Live: known and not expired at now. */
bool fqdn_set_live(const struct fqdn_set *s, ip128 a, uint64_t now_ms);
size_t fqdn_set_count(const struct fqdn_set *s);
size_t fqdn_set_live_count(const struct fqdn_set *s, uint64_t now_ms);
/* Counts addresses newly expired at now (each once) into *expired, and
 * forgets those expired more than forget_ms ago. */
void fqdn_set_expire(struct fqdn_set *s, uint64_t now_ms, uint64_t forget_ms, uint64_t *expired);
/* Every entry (struct fqdn_addr *), sorted by address. */
void fqdn_set_list(const struct fqdn_set *s, struct vec *out);
void fqdn_set_clear(struct fqdn_set *s);

/* The monotonic clock in ms (tests may replace it). */
uint64_t fqdn_now_ms(void);
void fqdn_clock_set(uint64_t (*fn)(void));

#endif
