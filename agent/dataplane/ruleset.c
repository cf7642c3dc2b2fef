/* The ruleset as data, and as nft text. */
#include "agent/dataplane/ruleset.h"

#include <netinet/in.h>
#include "policy/addr.h"

#include <stdlib.h>
#include <string.h>

size_t rs_key_len(enum rs_key k)
{
	static const size_t len[] = { [RS_KEY_V4] = 4, [RS_KEY_V6] = 16, [RS_KEY_PORTS] = 8,
				      [RS_KEY_NAMED_V4] = 12, [RS_KEY_NAMED_V6] = 24,
				      [RS_KEY_IFNAME] = 16, [RS_KEY_IF_V4] = 20, [RS_KEY_IF_V6] = 32 };
	return len[k];
}

struct rs_set *rs_set_new(const char *name, enum rs_key key)
{
	struct rs_set *s = xcalloc(1, sizeof(*s));
	s->name = xstrdup(name);
	s->key = key;
	s->refs = 1;
	return s;
}

void rs_set_put(struct rs_set *s)
{
	if (!s || --s->refs)
		return;
	for (size_t i = 0; s->chain && i < s->n; i++)
		free(s->chain[i]);
	free(s->chain);
	for (size_t i = 0; s->comments && i < s->n; i++)
		free(s->comments[i]);
	free(s->comments);
	free(s->timeouts);
	free(s->dadd);
	free(s->ddel);
	free(s->keys);
	free(s->name);
	free(s->origin);
	free(s->comment);
	free(s);
}

static void rs_rule_free(struct rs_rule *r)
{
	free(r->prefix);
	free(r->comment);
	free(r);
}

void rs_chain_free(struct rs_chain *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->rules.n; i++)
		rs_rule_free(c->rules.v[i]);
	vec_free(&c->rules);
	free(c->name);
	free(c->comment);
	free(c);
}

void ruleset_free(struct ruleset *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->sets.n; i++)
		rs_set_put(rs->sets.v[i]);
	for (size_t i = 0; i < rs->chains.n; i++)
		rs_chain_free(rs->chains.v[i]);
	vec_free(&rs->sets);
	vec_free(&rs->chains);
	free(rs->table);
	free(rs);
}

struct rs_set *ruleset_set(const struct ruleset *rs, const char *name)
{
	size_t lo = 0, hi = rs->sets.n;
	while (lo < hi) { /* sets are sorted by name */
		size_t mid = (lo + hi) / 2;
		struct rs_set *s = rs->sets.v[mid];
		int c = strcmp(s->name, name);
		if (!c)
			return s;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

struct rs_chain *ruleset_chain(const struct ruleset *rs, const char *name)
{
	for (size_t i = 0; i < rs->chains.n; i++) {
		struct rs_chain *c = rs->chains.v[i];
		if (!strcmp(c->name, name))
			return c;
	}
	return NULL;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

bool rs_rule_eq(const struct rs_rule *a, const struct rs_rule *b)
{
	return a->kind == b->kind && a->family == b->family && a->src == b->src && a->ret == b->ret &&
	       a->rate == b->rate && a->burst == b->burst && a->group == b->group && str_eq(a->set, b->set) &&
	       str_eq(a->ports, b->ports) && str_eq(a->named, b->named) && str_eq(a->prefix, b->prefix) &&
	       str_eq(a->comment, b->comment) && str_eq(a->dset, b->dset) && a->l4 == b->l4 &&
	       !memcmp(a->nat_addr, b->nat_addr, sizeof(a->nat_addr)) && a->nat_port == b->nat_port &&
	       a->icmp == b->icmp && a->hops == b->hops;
}

/* ---------- text ---------- */

static ip128 key_ip(const uint8_t *k, bool v4)
{
	if (v4)
		return ip_from_v4((uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 | (uint32_t)k[2] << 8 | k[3]);
	ip128 a = { 0, 0 };
	for (int i = 0; i < 8; i++) {
		a.hi = a.hi << 8 | k[i];
		a.lo = a.lo << 8 | k[8 + i];
	}
	return a;
}

static const char *proto_lower(uint8_t p)
{
	return p == IPPROTO_TCP ? "tcp" : p == IPPROTO_UDP ? "udp" : p == IPPROTO_SCTP ? "sctp" : "?";
}

static void port_format(const uint8_t *lo, const uint8_t *hi, struct sbuf *out)
{
	unsigned a = (unsigned)lo[0] << 8 | lo[1], b = (unsigned)hi[0] << 8 | hi[1];
	if (a == b)
		sbuf_addf(out, "%u", a);
	else
		sbuf_addf(out, "%u-%u", a, b);
}

void rs_elem_format(const struct rs_set *s, size_t i, struct sbuf *out)
{
	size_t kl = rs_key_len(s->key);
	const uint8_t *lo = s->keys + i * 2 * kl, *hi = lo + kl;
	char buf[2 * IP_STRLEN + 2];
	switch (s->key) {
	case RS_KEY_V4:
	case RS_KEY_V6: {
		struct ip_range r = { key_ip(lo, s->key == RS_KEY_V4), key_ip(hi, s->key == RS_KEY_V4) };
		range_format(&r, buf, sizeof(buf));
		sbuf_add(out, buf);
		if (s->map)
			sbuf_addf(out, " : %s %s", s->jump ? "jump" : "goto", s->chain[i]);
		break;
	}
	case RS_KEY_PORTS:
		sbuf_addf(out, "%s . ", proto_lower(lo[0]));
		port_format(lo + 4, hi + 4, out);
		break;
	case RS_KEY_NAMED_V4:
	case RS_KEY_NAMED_V6: {
		size_t al = s->key == RS_KEY_NAMED_V4 ? 4 : 16;
		ip_format(key_ip(lo, al == 4), buf, sizeof(buf));
		sbuf_addf(out, "%s . %s . ", buf, proto_lower(lo[al]));
		port_format(lo + al + 4, hi + al + 4, out);
		break;
	}
	case RS_KEY_IFNAME:
		sbuf_addf(out, "\"%.16s\"", (const char *)lo);
		break;
	case RS_KEY_IF_V4:
	case RS_KEY_IF_V6:
		ip_format(key_ip(lo + 16, s->key == RS_KEY_IF_V4), buf, sizeof(buf));
		sbuf_addf(out, "\"%.16s\" . %s", (const char *)lo, buf);
		break;
	}
}

static const char *key_type_name(enum rs_key k)
{
	static const char *const n[] = { [RS_KEY_V4] = "ipv4_addr", [RS_KEY_V6] = "ipv6_addr",
					 [RS_KEY_PORTS] = "inet_proto . inet_service",
					 [RS_KEY_NAMED_V4] = "ipv4_addr . inet_proto . inet_service",
					 [RS_KEY_NAMED_V6] = "ipv6_addr . inet_proto . inet_service",
					 [RS_KEY_IFNAME] = "ifname", [RS_KEY_IF_V4] = "ifname . ipv4_addr",
					 [RS_KEY_IF_V6] = "ifname . ipv6_addr" };
	return n[k];
}

static void set_format(const struct rs_set *s, struct sbuf *out)
{
	sbuf_addf(out, "\t%s %s {\n\t\ttype %s%s\n", s->map ? "map" : "set", s->name, key_type_name(s->key),
		  s->map ? " : verdict" : "");
	if (s->size)
		sbuf_addf(out, "\t\tsize %u\n", s->size);
	if (s->interval || s->timeout)
		sbuf_addf(out, "\t\tflags %s\n", s->interval ? "interval" : "timeout");
	if (s->comment)
		sbuf_addf(out, "\t\tcomment \"%s\"\n", s->comment);
	/* a timeout set's elements come and go without the plan (ruleset.h):
	 * what the ruleset held when the set was made is not shown */
	if (s->n && !s->timeout) {
		sbuf_add(out, "\t\telements = { ");
		for (size_t i = 0; i < s->n; i++) {
			if (i)
				sbuf_add(out, ",\n\t\t\t     ");
			rs_elem_format(s, i, out);
		}
		sbuf_add(out, " }\n");
	}
	sbuf_add(out, "\t}\n");
}

static const char *fam_word(uint8_t family)
{
	return family == 6 ? "ip6" : "ip";
}

void rs_rule_format(const struct rs_rule *r, struct sbuf *out)
{
	switch (r->kind) {
	case RR_CT_ESTABLISHED:
		sbuf_add(out, "ct state established,related accept");
		break;
	case RR_CT_INVALID:
		sbuf_add(out, "ct state invalid drop");
		break;
	case RR_TCP_UNTRACKED:
		sbuf_addf(out, "ct state new tcp flags & (fin | syn | rst | ack) != syn goto %s", r->set);
		break;
	case RR_CT_REVOKED:
		sbuf_addf(out, "ct mark & 0x%08x == 0x%08x drop", r->mark, r->mark);
		break;
	case RR_SRC_CHECK:
		sbuf_addf(out, "fib saddr . iif oif missing goto %s", r->set);
		break;
	case RR_LOCAL_SRC:
		sbuf_add(out, "fib saddr type local accept");
		break;
	case RR_ND:
		sbuf_addf(out, "icmpv6 type 135-136 ip6 hoplimit 255 ip6 length <= %u accept", DP_ND_MAX_LEN);
		break;
	case RR_BR_NOT_PORT:
		if (r->ports)
			sbuf_addf(out, "iifname != @%s goto %s", r->set, r->ports);
		else
			sbuf_addf(out, "iifname != @%s accept", r->set);
		break;
	case RR_BR_BIND:
		sbuf_addf(out, "ether type %s %s . %s %s @%s accept", fam_word(r->family), r->oif ? "oifname" : "iifname",
			  fam_word(r->family), r->oif ? "daddr" : "saddr", r->set);
		break;
	case RR_BR_IF:
		sbuf_addf(out, "%s @%s accept", r->oif ? "oifname" : "iifname", r->set);
		break;
	case RR_BR_ND_LONG:
		sbuf_addf(out, "ether type ip6 icmpv6 type 135-136 ip6 length > %u goto %s", DP_ND_MAX_LEN, r->ports);
		break;
	case RR_BR_ND:
		sbuf_add(out, "ether type ip6 icmpv6 type 135-136 ip6 hoplimit 255 accept");
		break;
	case RR_BR_MCAST6:
		if (r->icmp)
			sbuf_addf(out, "ether type ip6 ip6 daddr ff00::/8 icmpv6 type %u accept", r->icmp);
		else
			sbuf_add(out, "ether type ip6 ip6 daddr ff00::/8 icmpv6 type 130-136 accept");
		break;
	case RR_BR_ARP_ANY:
		sbuf_add(out, "ether type arp accept");
		break;
	case RR_BR_ARP:
		sbuf_addf(out, "ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4 iifname . arp saddr ip @%s accept",
			  r->set);
		break;
	case RR_BR_NA_TARGET:
		sbuf_addf(out, "ether type ip6 icmpv6 type nd-neighbor-advert iifname . icmpv6 taddr != @%s goto %s",
			  r->set, r->ports);
		break;
	case RR_BR_UNSPEC6:
		sbuf_addf(out, "ether type ip6 ip6 saddr :: icmpv6 type %u ip6 hoplimit %u accept", r->icmp, r->hops);
		break;
	case RR_BR_LL_PROTO:
		sbuf_addf(out, "ether type ip6 ip6 %s fe80::/10 meta l4proto != ipv6-icmp goto %s",
			  r->src ? "saddr" : "daddr", r->ports);
		break;
	case RR_BR_LL_ICMP:
		sbuf_addf(out, "ether type ip6 ip6 %s fe80::/10 icmpv6 type != 130-136 icmpv6 type != 143 goto %s",
			  r->src ? "saddr" : "daddr", r->ports);
		break;
	case RR_GOTO:
		sbuf_addf(out, "%s %s", r->ret ? "jump" : "goto", r->set);
		break;
	case RR_IIF_SRC_CHECK:
		sbuf_addf(out, "iifname != @%s fib saddr . iif oif missing goto %s", r->set, r->ports);
		break;
	case RR_UNCLASSIFIED:
		sbuf_addf(out, "%s != @%s ", r->src ? "iifname" : "oifname", r->dset);
		if (r->src && r->family == 6)
			sbuf_add(out, "ip6 saddr != fe80::/10 ");
		sbuf_addf(out, "%s %s != @%s goto %s", fam_word(r->family), r->src ? "saddr" : "daddr", r->set, r->ports);
		break;
	case RR_VMAP:
		sbuf_addf(out, "%s %s vmap @%s", fam_word(r->family), r->src ? "saddr" : "daddr", r->set);
		break;
	case RR_MATCH: {
		const char *sep = "";
		if (r->set) {
			sbuf_addf(out, "%s %s @%s", fam_word(r->family), r->src ? "saddr" : "daddr", r->set);
			sep = " ";
		}
		if (r->ports) {
			sbuf_addf(out, "%smeta l4proto . th dport @%s", sep, r->ports);
			sep = " ";
		}
		if (r->named) {
			sbuf_addf(out, "%s%s daddr . meta l4proto . th dport @%s", sep, fam_word(r->family), r->named);
			sep = " ";
		}
		sbuf_addf(out, "%s%s", sep, r->ret ? "return" : "accept");
		break;
	}
	case RR_LOG_DROP:
		sbuf_addf(out, "limit rate %u/second burst %u packets log prefix \"%s\" group %u", r->rate, r->burst,
			  r->prefix, r->group);
		break;
	case RR_COUNTER_DROP:
		sbuf_add(out, "counter drop");
		break;
	case RR_DNS_REDIRECT: {
		char a[IP_STRLEN];
		ip_format(key_ip(r->nat_addr, r->family == 4), a, sizeof(a));
		sbuf_addf(out, "%s saddr @%s %s daddr @%s meta l4proto . th dport @%s meta l4proto %s dnat %s to %s%s%s:%u",
			  fam_word(r->family), r->set, fam_word(r->family), r->dset, r->ports, proto_lower(r->l4),
			  fam_word(r->family), r->family == 6 ? "[" : "", a, r->family == 6 ? "]" : "", r->nat_port);
		break;
	}
	}
	if (r->comment)
		sbuf_addf(out, " comment \"%s\"", r->comment);
}

static void chain_format(const struct rs_chain *c, struct sbuf *out)
{
	sbuf_addf(out, "\tchain %s {\n", c->name);
	static const char *const hook[] = { [RS_HOOK_FORWARD] = "forward", [RS_HOOK_INPUT] = "input",
					    [RS_HOOK_OUTPUT] = "output" };
	if (c->base)
		sbuf_addf(out, "\t\ttype filter hook %s priority filter; policy accept;\n", hook[c->hook]);
	if (c->nat)
		sbuf_add(out, "\t\ttype nat hook prerouting priority dstnat - 10; policy accept;\n");
	if (c->bridge_base)
		sbuf_addf(out, "\t\ttype filter hook %s priority filter; policy accept;\n",
			  c->br_hook == 2 ? "forward" : c->br_hook == 3 ? "output" : "prerouting");
	if (c->comment)
		sbuf_addf(out, "\t\tcomment \"%s\"\n", c->comment);
	for (size_t i = 0; i < c->rules.n; i++) {
		sbuf_add(out, "\t\t");
		rs_rule_format(c->rules.v[i], out);
		sbuf_add(out, "\n");
	}
	sbuf_add(out, "\t}\n");
}

char *ruleset_format(const struct ruleset *rs)
{
	struct sbuf out = { 0 };
	sbuf_addf(&out, "table %s %s {\n", rs->bridge ? "bridge" : "inet", rs->table);
	for (size_t i = 0; i < rs->sets.n; i++) {
		set_format(rs->sets.v[i], &out);
		sbuf_add(&out, "\n");
	}
	for (size_t i = 0; i < rs->chains.n; i++) {
		if (i)
			sbuf_add(&out, "\n");
		chain_format(rs->chains.v[i], &out);
	}
	sbuf_add(&out, "}\n");
	return sbuf_steal(&out);
}
