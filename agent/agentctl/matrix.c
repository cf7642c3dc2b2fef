#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

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
			fprintf(stderr, "agentctl matrix: bad argument %s\n"
					"usage: agentctl matrix --from DIR [--port N] [--protocol TCP|UDP|SCTP] [-o json]\n",
				argv[i]);
			return 2;
		}
	}
	if (!from) {
		fprintf(stderr, "usage: agentctl matrix --from DIR [--port N] [--protocol TCP|UDP|SCTP] [-o json]\n");
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
	json_t *rows = json_array(), *names = json_array();
	size_t w = 4;
	for (size_t i = 0; i < pods.n; i++) {
		struct pod *p = pods.v[i];
		size_t l = strlen(p->spec->ns) + strlen(p->spec->name) + 1;
		w = l > w ? l : w;
	}
	if (!json) {
		printf("%s/%d: rows are sources, columns destinations; . allowed, X denied\n", proto_name(proto), port);
		printf("%-*s", (int)w + 1, "");
		for (size_t j = 0; j < pods.n; j++)
			printf(" %zu", j % 10);
		printf("\n");
	}
	for (size_t i = 0; i < pods.n; i++) {
		struct pod *s = pods.v[i];
		struct endpoint src = { s, s->spec->addr[0] };
		char *name = xasprintf("%s/%s", s->spec->ns, s->spec->name);
		json_t *row = json_array();
		if (!json)
			printf("%-*s", (int)w + 1, name);
		json_array_append_new(names, json_string(name));
		free(name);
		for (size_t j = 0; j < pods.n; j++) {
			struct pod *d = pods.v[j];
			struct endpoint dst = { d, d->spec->addr[0] };
			struct verdict v;
			policy_eval(e, &src, &dst, proto, port, &v);
			if (!json)
				printf(" %c", v.allowed ? '.' : 'X');
			json_array_append_new(row, json_boolean(v.allowed));
			verdict_free(&v);
		}
		if (!json)
			printf("   %zu\n", i % 10);
		json_array_append_new(rows, row);
	}
	if (json) {
		json_t *o = json_pack("{s:s, s:i, s:o, s:o}", "protocol", proto_name(proto), "port", port, "pods", names,
				      "allowed", rows);
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(o);
	} else {
		json_decref(rows);
		json_decref(names);
	}
	vec_free(&all);
	vec_free(&pods);
	engine_free(e);
	return 0;
}
