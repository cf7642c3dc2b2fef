/* Address parsing and range sets: merges, carving, both families. */
#include "harness.h"

static void cidr_and_format(void **st)
{
	ip128 lo, hi;
	bool hb;
	char buf[100];
	assert_int_equal(cidr_parse("10.1.2.3/16", &lo, &hi, &hb), 0);
	assert_true(hb);
	struct ip_range r = { lo, hi };
	range_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "10.1.0.0/16");
	assert_int_equal(cidr_parse("fd00::/8", &lo, &hi, &hb), 0);
	assert_false(hb);
	r = (struct ip_range){ lo, hi };
	range_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "fd00::/8");
	assert_int_equal(cidr_parse("0.0.0.0/0", &lo, &hi, &hb), 0);
	assert_true(ip_is_v4(lo) && ip_is_v4(hi)); /* never straddles families */
	assert_true(cidr_parse("10.0.0.0/33", &lo, &hi, &hb) < 0);
	assert_true(cidr_parse("10.0.0.0/08", &lo, &hi, &hb) < 0);
	assert_true(cidr_parse("010.0.0.0/8", &lo, &hi, &hb) < 0);
	assert_true(cidr_parse("10.0.0.0", &lo, &hi, &hb) < 0);
}

static void ranges_merge_and_carve(void **st)
{
	struct range_set s = { 0 };
	ip128 a, b, c, d;
	bool hb;
	char buf[100];
	cidr_parse("10.0.0.0/24", &a, &b, &hb);
	range_set_add(&s, a, b);
	cidr_parse("10.0.1.0/24", &c, &d, &hb);
	range_set_add(&s, c, d); /* adjacent: merged */
	assert_int_equal(s.n, 1);
	range_format(&s.r[0], buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.0/23");
	cidr_parse("10.0.0.128/25", &c, &d, &hb);
	range_set_sub(&s, c, d);
	assert_int_equal(s.n, 2);
	range_format(&s.r[0], buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.0/25");
	range_format(&s.r[1], buf, sizeof(buf));
	assert_string_equal(buf, "10.0.1.0/24");
	ip_parse("10.0.0.200", &a);
	assert_false(range_set_contains(&s, a));
	ip_parse("10.0.1.200", &a);
	assert_true(range_set_contains(&s, a));
	cidr_parse("fd00::/64", &c, &d, &hb);
	range_set_add(&s, c, d);
	cidr_parse("0.0.0.0/0", &c, &d, &hb); /* swallows the v4 ranges only */
	range_set_add(&s, c, d);
	assert_int_equal(s.n, 2);
	range_set_free(&s);
}

/* ipBlock ::/0 must not let IPv4 through: the kernel never matches an
 * IPv4 packet against an ip6 set, and explain must agree. */
static void v6_cidr_excludes_v4(void **st)
{
	struct range_set s = { 0 };
	ip128 lo, hi, a;
	bool hb;
	assert_int_equal(cidr_parse("::/0", &lo, &hi, &hb), 0);
	range_set_add_cidr(&s, "::/0", lo, hi);
	assert_int_equal(s.n, 2);
	ip_parse("10.1.2.3", &a);
	assert_false(range_set_contains(&s, a));
	ip_parse("fd00::1", &a);
	assert_true(range_set_contains(&s, a));
	range_set_free(&s);
	assert_int_equal(cidr_parse("10.0.0.0/8", &lo, &hi, &hb), 0);
	range_set_add_cidr(&s, "10.0.0.0/8", lo, hi);
	ip_parse("10.1.2.3", &a);
	assert_true(range_set_contains(&s, a));
	range_set_free(&s);
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
	return *x;
}

/* Random address near a few bases (so that ranges overlap, touch and nest),
 * sometimes at the very ends of the space. */
static ip128 rnd_ip(uint64_t *x)
{
	static const ip128 base[] = { { 0, 0 }, { 0, 0xffff0a000000ULL }, { 0xfd00000000000000ULL, 0 },
				      { ~0ULL, ~0ULL - 300 } };
	ip128 a = base[rnd(x) % 4];
	uint64_t off = rnd(x) % 300;
	if (a.lo + off < a.lo)
		a.hi++;
	a.lo += off;
	return a;
}

/* Carving many excepts at once gives exactly what carving them one by one
 * gave (the old, quadratic way), in any order, overlapping or not. */
static void sub_many_equals_sub(void **st)
{
	uint64_t x = 88172645463325252ULL;
	for (int round = 0; round < 2000; round++) {
		struct range_set a = { 0 }, b = { 0 };
		size_t n = rnd(&x) % 6, m = rnd(&x) % 12;
		for (size_t i = 0; i < n; i++) {
			ip128 p = rnd_ip(&x), q = rnd_ip(&x);
			if (ip_cmp(p, q) > 0) {
				ip128 t = p;
				p = q, q = t;
			}
			range_set_add(&a, p, q);
			range_set_add(&b, p, q);
		}
		struct ip_range *ex = xcalloc(m + 1, sizeof(*ex));
		for (size_t i = 0; i < m; i++) {
			ex[i].lo = rnd_ip(&x), ex[i].hi = rnd_ip(&x);
			if (ip_cmp(ex[i].lo, ex[i].hi) > 0) {
				ip128 t = ex[i].lo;
				ex[i].lo = ex[i].hi, ex[i].hi = t;
			}
			range_set_sub(&a, ex[i].lo, ex[i].hi);
		}
		range_set_sub_many(&b, ex, m);
		assert_int_equal(a.n, b.n);
		for (size_t i = 0; i < a.n; i++) {
			assert_true(ip_eq(a.r[i].lo, b.r[i].lo));
			assert_true(ip_eq(a.r[i].hi, b.r[i].hi));
		}
		/* and the union of what is left with itself changes nothing */
		struct range_set c = { 0 };
		range_set_union(&c, &b);
		range_set_union(&c, &a);
		assert_int_equal(c.n, a.n);
		for (size_t i = 0; i < a.n; i++)
			assert_true(ip_eq(a.r[i].lo, c.r[i].lo) && ip_eq(a.r[i].hi, c.r[i].hi));
		free(ex);
		range_set_free(&a);
		range_set_free(&b);
		range_set_free(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cidr_and_format),
		cmocka_unit_test(ranges_merge_and_carve),
		cmocka_unit_test(v6_cidr_excludes_v4),
		cmocka_unit_test(sub_many_equals_sub),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
