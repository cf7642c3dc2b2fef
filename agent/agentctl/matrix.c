#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

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

/* One pair, every family both pods have: verdict per family (-1: the
 * pair lacks that family). */
static void eval_pair(const struct engine *e, struct pod *s, struct pod *d, int proto, int port, int fam[2])
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
static char cell(const int fam[2])
{
	if (fam[0] < 0 && fam[1] < 0)
		return '-';
	if (fam[0] < 0 || fam[1] < 0 || fam[0] == fam[1])
		return (fam[0] < 0 ? fam[1] : fam[0]) ? '.' : 'X';
	return fam[0] ? '4' : '6';
}

static json_t *fam_json(int v)
{
	return v < 0 ? json_null() : json_boolean(v);
}

static const char usage[] = "usage: agentctl matrix --from DIR [--port N] [--protocol TCP|UDP|SCTP] [-o json]\n";

int cmd_matrix(int argc, char **argv)
{
	const char *from = NULL, *app_label = "app";
	int port = 80, proto = PROTO_TCP;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--from") && v)
			from = argv[++i];
		else if (!strcmp(argv[i], "--port") && v && (port = parse_port_arg(argv[++i])) > 0)
			;
		else if (!strcmp(argv[i], "--protocol") && v && (proto = parse_protocol_arg(argv[++i])) > 0)
			;
		else if (!strcmp(argv[i], "-o") && v)
			json = !strcmp(argv[++i], "json");
		else if (!strcmp(argv[i], "--app-label") && v)
			app_label = argv[++i];
		else {
			fprintf(stderr, "agentctl matrix: bad argument %s\n%s", argv[i], usage);
			return 2;
		}
	}
	if (!from) {
		fputs(usage, stderr);
		return 2;
	}
	struct engine *e = offline_load(from, NULL, app_label, json);
	if (!e)
		return 2;
	struct vec all = { 0 }, pods = { 0 };
	engine_pods(e, &all);
	for (size_t i = 0; i < all.n; i++)
		if (((struct pod *)all.v[i])->active)
			vec_push(&pods, all.v[i]);
	json_t *rows = json_array(), *names = json_array(), *fams[2] = { json_array(), json_array() };
	size_t w = 4;
	for (size_t i = 0; i < pods.n; i++) {
		struct pod *p = pods.v[i];
		size_t l = strlen(p->spec->ns) + strlen(p->spec->name) + 1;
		w = l > w ? l : w;
	}
	if (!json) {
		printf("%s/%d: rows are sources, columns destinations, every address family the two pods share;\n"
		       ". allowed, X denied, 4 or 6 allowed over IPv4 or IPv6 only, - no family in common\n",
		       proto_name(proto), port);
		printf("%-*s", (int)w + 1, "");
		for (size_t j = 0; j < pods.n; j++)
			printf(" %zu", j % 10);
		printf("\n");
	}
	for (size_t i = 0; i < pods.n; i++) {
		struct pod *s = pods.v[i];
		char *name = xasprintf("%s/%s", s->spec->ns, s->spec->name);
		json_t *row = json_array(), *frow[2] = { json_array(), json_array() };
		if (!json)
			printf("%-*s", (int)w + 1, name);
		json_array_append_new(names, json_string(name));
		free(name);
		for (size_t j = 0; j < pods.n; j++) {
			int fam[2];
			eval_pair(e, s, pods.v[j], proto, port, fam);
			char c = cell(fam);
			if (!json)
				printf(" %c", c);
			json_array_append_new(row, c == '-' ? json_null() : json_boolean(c == '.'));
			for (int f = 0; f < 2; f++)
				json_array_append_new(frow[f], fam_json(fam[f]));
		}
		if (!json)
			printf("   %zu\n", i % 10);
		json_array_append_new(rows, row);
		for (int f = 0; f < 2; f++)
			json_array_append_new(fams[f], frow[f]);
	}
	if (json) {
		/* allowed: over every family the pair shares (null: none);
		 * ipv4, ipv6: per family (null: the pair lacks it) */
		json_t *o = json_pack("{s:s, s:i, s:o, s:o, s:o, s:o}", "protocol", proto_name(proto), "port", port,
				      "pods", names, "allowed", rows, "ipv4", fams[0], "ipv6", fams[1]);
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(o);
	} else {
		json_decref(rows);
		json_decref(names);
		json_decref(fams[0]);
		json_decref(fams[1]);
	}
	vec_free(&all);
	vec_free(&pods);
	engine_free(e);
	return 0;
}
