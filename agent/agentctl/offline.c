#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/report/report.h"
#include "ctl.h"

void print_diags(FILE *f, const struct diags *d)
{
	for (size_t i = 0; i < d->v.n; i++) {
		char *s = diag_format(d->v.v[i]);
		fprintf(f, "%s\n", s);
		free(s);
	}
}

int offline_resolve(struct engine *e, const char *spec, struct endpoint *out, char **note)
{
	return report_resolve(e, spec, out, note);
}

int parse_protocol_arg(const char *s)
{
	char up[8] = { 0 };
	for (size_t i = 0; s[i] && i < sizeof(up) - 1; i++)
		up[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
	return strlen(s) < sizeof(up) ? proto_parse(up) : -1;
}

int parse_port_arg(const char *s)
{
	uint64_t v;
	return parse_uint(s, 1, 65535, &v) == 0 ? (int)v : -1;
}

void ctl_pods(const struct engine *e, const char *ns, struct vec *out)
{
	struct vec all = { 0 };
	engine_pods(e, &all);
	for (size_t i = 0; i < all.n; i++) {
		struct pod *p = all.v[i];
		if (p->active && (!ns || !strcmp(p->spec->ns, ns)))
			vec_push(out, p);
	}
	vec_free(&all);
}

/* The pod's address of one family, if it has one. */
static bool family_addr(const struct pod *p, bool v6, ip128 *out)
{
	for (uint32_t i = 0; i < p->spec->naddr; i++)
		if (ip_is_v4(p->spec->addr[i]) != v6) {
			*out = p->spec->addr[i];
			return true;
		}
	return false;
}

void ctl_eval_pair(const struct engine *e, struct pod *s, struct pod *d, int proto, int port, int fam[2])
{
	for (int f = 0; f < 2; f++) {
		struct endpoint src = { s, { 0, 0 } }, dst = { d, { 0, 0 } };
		struct verdict v;
		fam[f] = -1;
		if (!family_addr(s, f, &src.addr) || !family_addr(d, f, &dst.addr))
			continue;
		policy_eval(e, &src, &dst, proto, port, &v);
		fam[f] = v.allowed;
		verdict_free(&v);
	}
}

/* '.' allowed over every family the two pods share, 'X' over none, '4' or
 * '6' over that family only, '-' no family in common. */
char ctl_cell(const int fam[2])
{
	if (fam[0] < 0 && fam[1] < 0)
		return '-';
	if (fam[0] < 0 || fam[1] < 0 || fam[0] == fam[1])
		return (fam[0] < 0 ? fam[1] : fam[0]) ? '.' : 'X';
	return fam[0] ? '4' : '6';
}
