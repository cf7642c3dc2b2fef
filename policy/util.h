/* Small containers shared by every module: allocation that aborts on
 * exhaustion, growable vectors, an open-addressing hash table and
 * intrusive lists. Allocation failure of small objects aborts, as in
 * nftables and ell; every kernel and HTTP error is propagated instead. */
#ifndef CORRAL_UTIL_H
#define CORRAL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A whole decimal number from lo to hi, nothing before or after it: 0, or
 * -EINVAL (not a number) or -ERANGE (outside lo..hi). Every number read
 * from text (flags, settings) goes through it: "abc" is never 0. */
int parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A growable array of pointers. */
struct vec {
	void **v;
	size_t n, cap;
};
void vec_push(struct vec *vec, void *p);
void vec_free(struct vec *vec);
bool vec_remove(struct vec *vec, const void *p); /* swap-remove, first match */
void vec_sort(struct vec *vec, int (*cmp)(const void *a, const void *b));

/* A growable string. */
struct sbuf {
	char *s;
	size_t n, cap;
};
void sbuf_add(struct sbuf *b, const char *s);
void sbuf_addn(struct sbuf *b, const void *data, size_t n); /* bytes, NULs included */
void sbuf_addf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *sbuf_steal(struct sbuf *b);
void sbuf_free(struct sbuf *b);

/* Open-addressing hash table of items; each item carries its own key.
 * The caller supplies the hash with every call and an equality callback
 * that compares an item with a key. Deletion uses backward shift, so
 * there are no tombstones. A slot is 12 bytes: the item in one array and
 * the low 32 bits of its hash in another, in one allocation (16 bytes as
 * one {hash, item} array: at 150,000 pods the agent's five largest tables
 * held 21 MB). The low bits find the home slot and reject most
 * non-matches before the equality callback is called. */
struct htab {
	void **item;   /* cap slots, NULL when free; the hashes follow them */
	size_t n, cap; /* cap is a power of two or 0 */
};
typedef bool (*htab_eq_fn)(const void *item, const void *key);
void *htab_find(const struct htab *h, uint64_t hash, htab_eq_fn eq, const void *key);
/* The slot holding the item equal to key (valid until the table changes), or NULL. */
void *const *htab_find_slot(const struct htab *h, uint64_t hash, htab_eq_fn eq, const void *key);
void htab_insert(struct htab *h, uint64_t hash, void *item); /* no duplicate check */
void *htab_remove(struct htab *h, uint64_t hash, htab_eq_fn eq, const void *key);
void htab_free(struct htab *h);
#define htab_foreach(h, it)                                                     \
	for (size_t _i = 0; _i < (h)->cap; _i++)                                \
		if (((it) = (h)->item[_i]) != NULL)

uint64_t hash_bytes(const void *p, size_t n, uint64_t seed);
uint64_t hash_ptr(const void *p);
uint64_t hash_str(const char *s);

/* Sets of pointers, built on htab. */
struct ptrset {
	struct htab h;
};
bool ptrset_add(struct ptrset *s, void *p);    /* true if newly added */
bool ptrset_del(struct ptrset *s, void *p);    /* true if it was there */
bool ptrset_has(const struct ptrset *s, const void *p);
void ptrset_free(struct ptrset *s);
#define ptrset_count(s) ((s)->h.n)

/* Intrusive doubly linked list (circular, with a head node). */
struct list {
	struct list *next, *prev;
};
#define LIST_INIT(l) { &(l), &(l) }
static inline void list_init(struct list *l) { l->next = l->prev = l; }
static inline bool list_empty(const struct list *l) { return l->next == l; }
static inline void list_add_tail(struct list *head, struct list *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}
static inline void list_del(struct list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define list_foreach(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
#define list_foreach_safe(pos, tmp, head)                                       \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

/* Interned, reference-counted strings: equal strings share one pointer, so
 * label keys, values and namespace names compare by pointer. */
typedef const char *istr;
istr istr_get(const char *s);          /* new reference */
istr istr_ref(istr s);                 /* another reference; NULL ok */
void istr_put(istr s);                 /* NULL ok */
size_t istr_count(void);               /* distinct strings held */

#endif
