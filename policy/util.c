#define _GNU_SOURCE
#include "util.h"
#include "util-private.h"

#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void oom(void)
{
	fputs("corral: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		oom();
	return d;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	return s;
}

void vec_push(struct vec *vec, void *p)
{
	if (vec->n == vec->cap) {
		vec->cap = vec->cap ? vec->cap * 2 : 4;
		vec->v = xrealloc(vec->v, vec->cap * sizeof(*vec->v));
	}
	vec->v[vec->n++] = p;
}

void vec_free(struct vec *vec)
{
	free(vec->v);
	vec->v = NULL;
	vec->n = vec->cap = 0;
}

bool vec_remove(struct vec *vec, const void *p)
{
	for (size_t i = 0; i < vec->n; i++) {
		if (vec->v[i] == p) {
			vec->v[i] = vec->v[--vec->n];
			return true;
		}
	}
	return false;
}

void vec_sort(struct vec *vec, int (*cmp)(const void *a, const void *b))
{
	if (vec->n > 1)
		qsort(vec->v, vec->n, sizeof(*vec->v), cmp);
}

static void sbuf_grow(struct sbuf *b, size_t add)
{
	if (b->n + add + 1 > b->cap) {
		b->cap = (b->n + add + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
}

void sbuf_add(struct sbuf *b, const char *s)
{
	size_t l = strlen(s);
	sbuf_grow(b, l);
	memcpy(b->s + b->n, s, l + 1);
	b->n += l;
}

void sbuf_addn(struct sbuf *b, const void *data, size_t n)
{
	sbuf_grow(b, n);
	memcpy(b->s + b->n, data, n);
	b->n += n;
	b->s[b->n] = '\0';
}

void sbuf_addf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int l;
	va_start(ap, fmt);
	l = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (l < 0)
		return;
	sbuf_grow(b, (size_t)l);
	va_start(ap, fmt);
	vsnprintf(b->s + b->n, (size_t)l + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)l;
}

char *sbuf_steal(struct sbuf *b)
{
	/* the string is kept, its growth room is not (a capacity up to twice
	 * the length: 2 MB over the peer sets' keys at 150,000 pods) */
	char *s = b->s ? (b->cap > b->n + 1 ? xrealloc(b->s, b->n + 1) : b->s) : xstrdup("");
	b->s = NULL;
	b->n = b->cap = 0;
	return s;
}

void sbuf_free(struct sbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->n = b->cap = 0;
}

static bool hash_constant;

void util_test_hash_constant(void)
{
	hash_constant = true;
}

/* FNV-1a followed by a murmur finaliser: cheap and well mixed. */
uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *c = p;
	if (hash_constant)
		return 42;
	/* eight bytes a step (a byte a step was a tenth of the watch path's
	 * instructions), the tail as one word with its length, then the
	 * final mix spreads every input bit over the whole result */
	uint64_t h = 0xcbf29ce484222325ULL ^ seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15ULL);
	for (; n >= 8; n -= 8, c += 8) {
		uint64_t w;
		memcpy(&w, c, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	if (n) {
		uint64_t w = 0;
		memcpy(&w, c, n);
		h = (h ^ w ^ ((uint64_t)n << 56)) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

uint64_t hash_ptr(const void *p)
{
	uint64_t h = (uint64_t)(uintptr_t)p;
	if (hash_constant)
		return 42;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

uint64_t hash_str(const char *s)
{
	return hash_bytes(s, strlen(s), 0);
}

/* The low 32 bits of each slot's hash, after the items. */
static inline uint32_t *htab_hashes(const struct htab *h)
{
	return h->item ? (uint32_t *)(h->item + h->cap) : NULL; /* no offset from NULL (UBSan) */
}

static void htab_alloc(struct htab *h, size_t cap)
{
	h->item = xcalloc(cap, sizeof(*h->item) + sizeof(uint32_t));
	h->cap = cap;
	h->n = 0;
}

static void htab_put(struct htab *h, uint32_t hash, void *item)
{
	size_t mask = h->cap - 1, i = hash & mask;
	while (h->item[i])
		i = (i + 1) & mask;
	htab_hashes(h)[i] = hash;
	h->item[i] = item;
	h->n++;
}

static void htab_grow(struct htab *h)
{
	void **old = h->item;
	uint32_t *oldh = htab_hashes(h);
	size_t ocap = h->cap;
	htab_alloc(h, ocap ? ocap * 2 : 16);
	for (size_t i = 0; i < ocap; i++)
		if (old[i])
			htab_put(h, oldh[i], old[i]);
	free(old);
}

/* The slot of the item equal to key, or -1. */
static ptrdiff_t htab_slot(const struct htab *h, uint64_t hash, htab_eq_fn eq, const void *key)
{
	if (!h->cap)
		return -1;
	size_t mask = h->cap - 1;
	uint32_t h32 = (uint32_t)hash, *hs = htab_hashes(h);
	for (size_t i = h32 & mask;; i = (i + 1) & mask) {
		if (!h->item[i])
			return -1;
		if (hs[i] == h32 && eq(h->item[i], key))
			return (ptrdiff_t)i;
	}
}

void *htab_find(const struct htab *h, uint64_t hash, htab_eq_fn eq, const void *key)
{
	ptrdiff_t i = htab_slot(h, hash, eq, key);
	return i < 0 ? NULL : h->item[i];
}

void *const *htab_find_slot(const struct htab *h, uint64_t hash, htab_eq_fn eq, const void *key)
{
	ptrdiff_t i = htab_slot(h, hash, eq, key);
	return i < 0 ? NULL : &h->item[i];
}

void htab_insert(struct htab *h, uint64_t hash, void *item)
{
	if ((h->n + 1) * 4 > h->cap * 3)
		htab_grow(h);
	htab_put(h, (uint32_t)hash, item);
}

void *htab_remove(struct htab *h, uint64_t hash, htab_eq_fn eq, const void *key)
{
	ptrdiff_t found = htab_slot(h, hash, eq, key);
	if (found < 0)
		return NULL;
	size_t mask = h->cap - 1, i = (size_t)found;
	uint32_t *hs = htab_hashes(h);
	void *item = h->item[i];
	/* Backward-shift deletion keeps every probe chain unbroken. */
	size_t j = i;
	for (;;) {
		h->item[i] = NULL;
		for (;;) {
			j = (j + 1) & mask;
			if (!h->item[j])
				goto done;
			size_t home = hs[j] & mask;
			/* can the entry at j move to the hole at i? */
			if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
				break;
		}
		h->item[i] = h->item[j];
		hs[i] = hs[j];
		i = j;
	}
done:
	h->n--;
	return item;
}

void htab_free(struct htab *h)
{
	free(h->item);
	h->item = NULL;
	h->n = h->cap = 0;
}

static bool ptr_eq(const void *item, const void *key)
{
	return item == key;
}

bool ptrset_add(struct ptrset *s, void *p)
{
	uint64_t hv = hash_ptr(p);
	if (htab_find(&s->h, hv, ptr_eq, p))
		return false;
	htab_insert(&s->h, hv, p);
	return true;
}

bool ptrset_del(struct ptrset *s, void *p)
{
	return htab_remove(&s->h, hash_ptr(p), ptr_eq, p) != NULL;
}

bool ptrset_has(const struct ptrset *s, const void *p)
{
	return htab_find(&s->h, hash_ptr(p), ptr_eq, p) != NULL;
}

void ptrset_free(struct ptrset *s)
{
	htab_free(&s->h);
}

/* Interned strings: the string follows its reference count. */
struct istr_ent {
	uint32_t ref;
	char s[];
};
static struct htab istr_tab;

static bool istr_eq(const void *item, const void *key)
{
	return strcmp(((const struct istr_ent *)item)->s, key) == 0;
}

istr istr_get(const char *s)
{
	uint64_t hv = hash_str(s);
	struct istr_ent *e = htab_find(&istr_tab, hv, istr_eq, s);
	if (!e) {
		size_t l = strlen(s);
		e = xmalloc(sizeof(*e) + l + 1);
		e->ref = 0;
		memcpy(e->s, s, l + 1);
		htab_insert(&istr_tab, hv, e);
	}
	e->ref++;
	return e->s;
}

istr istr_ref(istr s)
{
	if (s)
		container_of(s, struct istr_ent, s)->ref++;
	return s;
}

void istr_put(istr s)
{
	if (!s)
		return;
	struct istr_ent *e = container_of(s, struct istr_ent, s);
	if (--e->ref == 0) {
		htab_remove(&istr_tab, hash_str(s), istr_eq, s);
		free(e);
	}
}

size_t istr_count(void)
{
	return istr_tab.n;
}

int parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v = 0;
	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}
