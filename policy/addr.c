#include "addr.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V4_MAPPED_LO 0x0000ffff00000000ULL

bool ip_is_v4(ip128 a)
{
	return a.hi == 0 && (a.lo >> 32) == 0xffff;
}

ip128 ip_from_v4(uint32_t v)
{
	return (ip128){ 0, V4_MAPPED_LO | v };
}

ip128 ip_from_bytes(const uint8_t *b, bool v4)
{
	if (v4)
		return ip_from_v4((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
	ip128 r = { 0, 0 };
	for (int i = 0; i < 8; i++) {
		r.hi = r.hi << 8 | b[i];
		r.lo = r.lo << 8 | b[8 + i];
	}
	return r;
}

uint32_t ip_v4(ip128 a)
{
	return (uint32_t)a.lo;
}

int ip_cmp(ip128 a, ip128 b)
{
	if (a.hi != b.hi)
		return a.hi < b.hi ? -1 : 1;
	if (a.lo != b.lo)
		return a.lo < b.lo ? -1 : 1;
	return 0;
}

bool ip_eq(ip128 a, ip128 b)
{
	return a.hi == b.hi && a.lo == b.lo;
}

int ip_parse(const char *s, ip128 *out)
{
	struct in_addr a4;
	unsigned char a6[16];
	if (!s || !*s)
		return -EINVAL;
	/* inet_pton accepts only canonical dotted quads: no octal, no
	 * shortened forms, which is what Kubernetes validation wants. */
	if (inet_pton(AF_INET, s, &a4) == 1) {
		*out = ip_from_v4(ntohl(a4.s_addr));
		return 0;
	}
	if (inet_pton(AF_INET6, s, a6) == 1) {
		*out = ip_from_bytes(a6, false);
		return 0;
	}
	return -EINVAL;
}

/* mask of the low (128 - len) bits */
static ip128 ip_hostmask(unsigned len)
{
	ip128 m;
	if (len >= 128)
		return (ip128){ 0, 0 };
	if (len >= 64) {
		m.hi = 0;
		m.lo = len == 64 ? ~0ULL : (~0ULL >> (len - 64));
	} else {
		m.hi = len == 0 ? ~0ULL : (~0ULL >> len);
		m.lo = ~0ULL;
	}
	return m;
}

int cidr_parse(const char *s, ip128 *lo, ip128 *hi, bool *host_bits)
{
	char buf[64];
	const char *slash = s ? strchr(s, '/') : NULL;
	char *end;
	ip128 a, m;
	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	if (ip_parse(buf, &a) < 0)
		return -EINVAL;
	if (slash[1] < '0' || slash[1] > '9' || (slash[1] == '0' && slash[2]))
		return -EINVAL;
	errno = 0;
	unsigned long len = strtoul(slash + 1, &end, 10);
	if (*end || errno || len > (ip_is_v4(a) && !strchr(buf, ':') ? 32UL : 128UL))
		return -EINVAL;
	if (ip_is_v4(a) && !strchr(buf, ':'))
		len += 96;
	m = ip_hostmask((unsigned)len);
	*host_bits = (a.hi & m.hi) || (a.lo & m.lo);
	lo->hi = a.hi & ~m.hi;
	lo->lo = a.lo & ~m.lo;
	hi->hi = lo->hi | m.hi;
	hi->lo = lo->lo | m.lo;
	return 0;
}

void ip_format(ip128 a, char *buf, size_t len)
{
	if (ip_is_v4(a)) {
		uint32_t v = ip_v4(a);
		snprintf(buf, len, "%u.%u.%u.%u", v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255);
		return;
	}
	unsigned char b[16];
	for (int i = 0; i < 8; i++) {
		b[i] = (unsigned char)(a.hi >> (56 - 8 * i));
		b[8 + i] = (unsigned char)(a.lo >> (56 - 8 * i));
	}
	if (!inet_ntop(AF_INET6, b, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

static ip128 ip_inc(ip128 a)
{
	if (++a.lo == 0)
		a.hi++;
	return a;
}

static ip128 ip_dec(ip128 a)
{
	if (a.lo-- == 0)
		a.hi--;
	return a;
}

static bool ip_is_max(ip128 a)
{
	return a.hi == ~0ULL && a.lo == ~0ULL;
}

static void rs_insert(struct range_set *s, size_t at, ip128 lo, ip128 hi)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4;
		s->r = xrealloc(s->r, s->cap * sizeof(*s->r));
	}
	memmove(&s->r[at + 1], &s->r[at], (s->n - at) * sizeof(*s->r));
	s->r[at].lo = lo;
	s->r[at].hi = hi;
	s->n++;
}

/* Adds [lo,hi], merging with overlapping and adjacent ranges. */
void range_set_add(struct range_set *s, ip128 lo, ip128 hi)
{
	size_t i = 0, j;
	/* first range that could touch: its hi + 1 >= lo */
	while (i < s->n && !ip_is_max(s->r[i].hi) && ip_cmp(ip_inc(s->r[i].hi), lo) < 0)
		i++;
	j = i;
	while (j < s->n && (ip_is_max(hi) || ip_cmp(s->r[j].lo, ip_inc(hi)) <= 0)) {
		if (ip_cmp(s->r[j].lo, lo) < 0)
			lo = s->r[j].lo;
		if (ip_cmp(s->r[j].hi, hi) > 0)
			hi = s->r[j].hi;
		j++;
	}
	if (j > i) {
		memmove(&s->r[i], &s->r[j], (s->n - j) * sizeof(*s->r));
		s->n -= j - i;
	}
	rs_insert(s, i, lo, hi);
}

/* Removes [lo,hi], splitting ranges that contain it. */
void range_set_add_cidr(struct range_set *s, const char *text, ip128 lo, ip128 hi)
{
	range_set_add(s, lo, hi);
	if (strchr(text, ':'))
		range_set_sub(s, ip_from_v4(0), ip_from_v4(UINT32_MAX));
}

void range_set_sub(struct range_set *s, ip128 lo, ip128 hi)
{
	for (size_t i = 0; i < s->n; i++) {
		struct ip_range *r = &s->r[i];
		if (ip_cmp(r->hi, lo) < 0 || ip_cmp(r->lo, hi) > 0)
			continue;
		bool keep_left = ip_cmp(r->lo, lo) < 0;
		bool keep_right = ip_cmp(r->hi, hi) > 0;
		ip128 rhi = r->hi;
		if (keep_left && keep_right) {
			r->hi = ip_dec(lo);
			rs_insert(s, i + 1, ip_inc(hi), rhi);
			return;
		} else if (keep_left) {
			r->hi = ip_dec(lo);
		} else if (keep_right) {
			r->lo = ip_inc(hi);
		} else {
			memmove(r, r + 1, (s->n - i - 1) * sizeof(*s->r));
			s->n--;
			i--;
		}
	}
}

static int range_lo_cmp(const void *a, const void *b)
{
	return ip_cmp(((const struct ip_range *)a)->lo, ((const struct ip_range *)b)->lo);
}

/* Sorts r and merges overlapping and adjacent ranges in place; returns
 * how many are left. */
static size_t ranges_normalize(struct ip_range *r, size_t n)
{
	size_t out = 0;
	if (n > 1)
		qsort(r, n, sizeof(*r), range_lo_cmp);
	for (size_t i = 0; i < n; i++) {
		struct ip_range *last = out ? &r[out - 1] : NULL;
		if (last && (ip_is_max(last->hi) || ip_cmp(r[i].lo, ip_inc(last->hi)) <= 0)) {
			if (ip_cmp(r[i].hi, last->hi) > 0)
				last->hi = r[i].hi;
			continue;
		}
		r[out++] = r[i];
	}
	return out;
}

static void rs_push(struct range_set *s, ip128 lo, ip128 hi)
{
	rs_insert(s, s->n, lo, hi);
}

void range_set_sub_many(struct range_set *s, struct ip_range *ex, size_t m)
{
	struct range_set out = { 0 };
	size_t j = 0;
	m = ranges_normalize(ex, m);
	for (size_t i = 0; i < s->n; i++) {
		ip128 lo = s->r[i].lo, hi = s->r[i].hi;
		bool left = true; /* [lo, hi] still has addresses to place */
		while (j < m && ip_cmp(ex[j].hi, lo) < 0)
			j++; /* excepts wholly below this range */
		/* excepts that start inside the range cut it; the last one may
		 * reach into the next range, so j stays on it */
		for (size_t k = j; left && k < m && ip_cmp(ex[k].lo, hi) <= 0; k++) {
			if (ip_cmp(ex[k].lo, lo) > 0)
				rs_push(&out, lo, ip_dec(ex[k].lo));
			if (ip_cmp(ex[k].hi, hi) >= 0)
				left = false;
			else {
				lo = ip_inc(ex[k].hi);
				j = k + 1;
			}
		}
		if (left)
			rs_push(&out, lo, hi);
	}
	free(s->r);
	*s = out;
}

void range_set_union(struct range_set *dst, const struct range_set *src)
{
	if (!src->n)
		return;
	size_t total = dst->n + src->n;
	struct ip_range *all = xmalloc(total * sizeof(*all));
	if (dst->n)
		memcpy(all, dst->r, dst->n * sizeof(*all));
	memcpy(all + dst->n, src->r, src->n * sizeof(*all));
	free(dst->r);
	dst->r = all;
	dst->n = ranges_normalize(all, total);
	dst->cap = total;
}

bool range_set_contains(const struct range_set *s, ip128 a)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ip_cmp(s->r[mid].hi, a) < 0)
			lo = mid + 1;
		else if (ip_cmp(s->r[mid].lo, a) > 0)
			hi = mid;
		else
			return true;
	}
	return false;
}

void range_set_copy(struct range_set *dst, const struct range_set *src)
{
	dst->n = dst->cap = src->n;
	dst->r = src->n ? xmalloc(src->n * sizeof(*src->r)) : NULL;
	if (src->n)
		memcpy(dst->r, src->r, src->n * sizeof(*src->r));
}

void range_set_free(struct range_set *s)
{
	free(s->r);
	s->r = NULL;
	s->n = s->cap = 0;
}

/* prefix length if [lo,hi] is exactly one prefix, else -1 */
static int range_prefix(const struct ip_range *r)
{
	for (unsigned len = 0; len <= 128; len++) {
		ip128 m = ip_hostmask(len);
		if ((r->lo.hi & m.hi) == 0 && (r->lo.lo & m.lo) == 0 &&
		    r->hi.hi == (r->lo.hi | m.hi) && r->hi.lo == (r->lo.lo | m.lo))
			return (int)len;
	}
	return -1;
}

void range_format(const struct ip_range *r, char *buf, size_t len)
{
	char a[IP_STRLEN], b[IP_STRLEN];
	int plen = range_prefix(r);
	bool v4 = ip_is_v4(r->lo) && ip_is_v4(r->hi);
	ip_format(r->lo, a, sizeof(a));
	if (plen >= 0 && (!v4 || plen >= 96)) {
		int shown = v4 ? plen - 96 : plen;
		if ((v4 && shown == 32) || (!v4 && shown == 128))
			snprintf(buf, len, "%s", a);
		else
			snprintf(buf, len, "%s/%d", a, shown);
		return;
	}
	ip_format(r->hi, b, sizeof(b));
	snprintf(buf, len, "%s-%s", a, b);
}
