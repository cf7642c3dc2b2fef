/* Addresses and address ranges. IPv4 and IPv6 share one 128-bit space,
 * IPv4 written as IPv4-mapped IPv6 (::ffff:a.b.c.d), so one range set can
 * hold both families and ranges never straddle them. */
#ifndef CORRAL_ADDR_H
#define CORRAL_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint64_t hi, lo;
} ip128;

bool ip_is_v4(ip128 a);
ip128 ip_from_v4(uint32_t host_order);
/* From network-order bytes: 4 of them (v4) or 16. */
ip128 ip_from_bytes(const uint8_t *b, bool v4);
uint32_t ip_v4(ip128 a); /* host order */
int ip_cmp(ip128 a, ip128 b);
bool ip_eq(ip128 a, ip128 b);
/* Parses a dotted quad or an IPv6 address; 0 or -EINVAL. */
int ip_parse(const char *s, ip128 *out);
/* Parses "addr/len"; *host_bits tells whether bits past the prefix were set
 * (the range returned is masked). 0 or -EINVAL. */
int cidr_parse(const char *s, ip128 *lo, ip128 *hi, bool *host_bits);
/* Writes the address in its family's usual text form. */
void ip_format(ip128 a, char *buf, size_t len);
#define IP_STRLEN 46

struct ip_range {
	ip128 lo, hi; /* inclusive */
};

/* A sorted list of disjoint, non-adjacent ranges. */
struct range_set {
	struct ip_range *r;
	size_t n, cap;
};
void range_set_add(struct range_set *s, ip128 lo, ip128 hi);
void range_set_sub(struct range_set *s, ip128 lo, ip128 hi);
/* Removes every range of ex (any order, may overlap; ex is sorted in
 * place): O((n + m) log m) where the loop of range_set_sub is O(n * m). */
void range_set_sub_many(struct range_set *s, struct ip_range *ex, size_t m);
/* Adds every range of src in one merge pass. */
void range_set_union(struct range_set *dst, const struct range_set *src);
bool range_set_contains(const struct range_set *s, ip128 a);
/* Adds a parsed CIDR. An IPv6 prefix never covers IPv4 packets (the kernel
 * matches `ip6 saddr` only on IPv6), so the IPv4-mapped block is carved out
 * of a prefix written in IPv6 notation. */
void range_set_add_cidr(struct range_set *s, const char *text, ip128 lo, ip128 hi);
void range_set_copy(struct range_set *dst, const struct range_set *src);
void range_set_free(struct range_set *s);
/* Writes ranges as CIDR prefixes where they are exact, else "lo-hi". */
void range_format(const struct ip_range *r, char *buf, size_t len);

#endif
