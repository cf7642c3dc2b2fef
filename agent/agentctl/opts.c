/* agentctl's flags as one table (pfctl keeps its rule knowledge the same
 * way): the parser, each command's --help, and the shell completion read
 * the rows, so that a flag cannot exist without its help. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "kube/yaml.h"

enum fkind { FK_STRING, FK_BOOL, FK_PORT, FK_PROTOCOL, FK_OUTPUT, FK_FAIL_ON };

static const struct cflag {
	const char *lng;
	char shrt;
	const char *metavar; /* NULL: takes no value */
	enum fkind kind;
	const char *help;
} cflags[CF_COUNT] = {
	[CF_FROM] = { "--from", 0, "DIR", FK_STRING,
		      "a folder (or file) of manifests: Namespaces, Pods, workloads, NetworkPolicies, AccessPolicies; "
		      "with the cluster, applied on top of it" },
	[CF_TO] = { "--to", 0, "DIR", FK_STRING, "the side after, like --from" },
	[CF_KUBECONFIG] = { "--kubeconfig", 0, "FILE", FK_STRING,
			    "read the cluster with this kubeconfig (the cluster becomes the source)" },
	[CF_CONTEXT] = { "--context", 0, "NAME", FK_STRING, "the kubeconfig context to use (the cluster becomes the source)" },
	[CF_CLUSTER] = { "--cluster", 0, NULL, FK_BOOL,
			 "read the cluster: $KUBECONFIG, else ~/.kube/config, else the pod's service account" },
	[CF_NAMESPACE] = { "--namespace", 'n', "NS", FK_STRING,
			   "names without a namespace are in NS (default: the context's namespace, else default)" },
	[CF_PORT] = { "--port", 0, "N", FK_PORT, "destination port, 1-65535" },
	[CF_PROTOCOL] = { "--protocol", 0, "P", FK_PROTOCOL, "TCP (default), UDP or SCTP" },
	[CF_OUTPUT] = { "--output", 'o', "FORMAT", FK_OUTPUT, "output format" },
	[CF_APP_LABEL] = { "--app-label", 0, "KEYS", FK_STRING,
			   "the label keys that name an application, a comma list in order: a pod's application is "
			   "its first key's value (default app,app.kubernetes.io/name)" },
	[CF_NODE] = { "--node", 0, "NAME", FK_STRING, "the ruleset of this node (default: every pod counts as local)" },
	[CF_TABLE] = { "--table", 0, "NAME", FK_STRING, "the nftables table (default corral)" },
	[CF_SOCKET] = { "--socket", 0, "PATH", FK_STRING,
			"the running agent's control socket (default $CORRAL_SOCKET, else /run/corral/agent.sock)" },
	[CF_FOLLOW] = { "--follow", 'f', NULL, FK_BOOL, "keep printing drops as they happen" },
	[CF_EXPLAIN] = { "--explain", 0, NULL, FK_BOOL, "explain each drop" },
	[CF_FAIL_ON] = { "--fail-on", 0, "WHAT", FK_FAIL_ON,
			 "added: exit 1 when a change opens a flow; removed: when one closes; changed: either" },
	[CF_HELP] = { "--help", 'h', NULL, FK_BOOL, "this help" },
	[CF_POD_CIDRS] = { "--pod-cidrs", 0, "CIDRS", FK_STRING,
			   "the cluster's pod ranges beside the Nodes' podCIDRs, a comma list (the agent's podCidrs; "
			   "the world entity is what lies outside them)" },
	[CF_APISERVER] = { "--apiserver-addresses", 0, "ADDRS", FK_STRING,
			   "the API server's endpoint addresses or CIDRs, a comma list (the agent's "
			   "apiServerAddresses: the kube-apiserver entity)" },
};

static const struct {
	enum ctl_fmt f;
	const char *name;
} formats[] = {
	{ FMT_TEXT, "txt" }, { FMT_JSON, "json" }, { FMT_YAML, "yaml" }, { FMT_MD, "md" },
	{ FMT_CSV, "csv" },  { FMT_DOT, "dot" },   { FMT_SVG, "svg" },
};

const char *ctl_fmt_name(enum ctl_fmt f)
{
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
		if (formats[i].f == f)
			return formats[i].name;
	return "?";
}

const struct ctl_cmd *ctl_cmd_find(const char *name)
{
	for (size_t i = 0; i < ctl_ncommands; i++)
		if (!strcmp(ctl_commands[i].name, name))
			return &ctl_commands[i];
	return NULL;
}

static bool cmd_has(const struct ctl_cmd *c, enum ctl_flag f)
{
	for (size_t i = 0; c->flags[i].f != CF_END; i++)
		if (c->flags[i].f == f)
			return true;
	return false;
}

static void formats_of(const struct ctl_cmd *c, struct sbuf *b, const char *sep)
{
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
		if (c->formats & formats[i].f)
			sbuf_addf(b, "%s%s", n++ ? sep : "", formats[i].name);
}

/* ---------- parsing ---------- */

static int bad(const struct ctl_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(const struct ctl_cmd *c, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s %s: ", ctl_prog, c->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (%s %s --help)\n", ctl_prog, c->name);
	return 2;
}

static int set_flag(const struct ctl_cmd *c, struct ctl_opts *o, enum ctl_flag f, const char *v)
{
	switch (f) {
	case CF_FROM: o->from = v; break;
	case CF_TO: o->to = v; break;
	case CF_KUBECONFIG: o->kubeconfig = v; break;
	case CF_CONTEXT: o->context = v; break;
	case CF_CLUSTER: o->cluster = true; break;
	case CF_NAMESPACE: o->ns = v; break;
	case CF_APP_LABEL: o->app_label = v; break;
	case CF_NODE: o->node = v; break;
	case CF_TABLE: o->table = v; break;
	case CF_SOCKET: o->socket = v; break;
	case CF_FOLLOW: o->follow = true; break;
	case CF_EXPLAIN: o->explain = true; break;
	case CF_HELP: o->help = true; break;
	case CF_POD_CIDRS:
	case CF_APISERVER: {
		char *dup = xstrdup(v), *save = NULL;
		for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			ip128 lo, hi;
			bool hb;
			if (strchr(t, '/') ? cidr_parse(t, &lo, &hi, &hb) < 0 : ip_parse(t, &lo) < 0) {
				int rc = bad(c, "%s %s: \"%s\" is not an IP address or CIDR", cflags[f].lng, v, t);
				free(dup);
				return rc;
			}
		}
		free(dup);
		*(f == CF_POD_CIDRS ? &o->pod_cidrs : &o->apiserver) = v;
		break;
	}
	case CF_PORT:
		if ((o->port = parse_port_arg(v)) < 0)
			return bad(c, "--port %s: not a port number 1-65535", v);
		break;
	case CF_PROTOCOL:
		if ((o->proto = parse_protocol_arg(v)) < 0)
			return bad(c, "--protocol %s: must be TCP, UDP or SCTP", v);
		break;
	case CF_OUTPUT: {
		size_t i = 0;
		if (!strcmp(v, "text"))
			v = "txt";
		while (i < ARRAY_SIZE(formats) && strcmp(formats[i].name, v))
			i++;
		if (i == ARRAY_SIZE(formats) || !(c->formats & formats[i].f)) {
			struct sbuf b = { 0 };
			formats_of(c, &b, ", ");
			bad(c, "-o %s: not an output format of %s (%s)", v, c->name, b.s);
			sbuf_free(&b);
			return 2;
		}
		o->fmt = formats[i].f;
		break;
	}
	case CF_FAIL_ON:
		if (!strcmp(v, "added"))
			o->fail_on |= FAIL_ON_ADDED;
		else if (!strcmp(v, "removed"))
			o->fail_on |= FAIL_ON_REMOVED;
		else if (!strcmp(v, "changed"))
			o->fail_on |= FAIL_ON_ADDED | FAIL_ON_REMOVED;
		else
			return bad(c, "--fail-on %s: must be added, removed or changed", v);
		break;
	case CF_END:
	case CF_COUNT:
		break;
	}
	return 0;
}

/* The row of a flag as written ("--port", "--port=80", "-o", "-ojson"),
 * and where its value starts inside the word (NULL: the next word). */
static enum ctl_flag lookup(const char *arg, const char **inword)
{
	*inword = NULL;
	if (arg[1] == '-') {
		const char *eq = strchr(arg, '=');
		size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
		for (int f = 1; f < CF_COUNT; f++)
			if (strlen(cflags[f].lng) == n && !strncmp(cflags[f].lng, arg, n)) {
				*inword = eq ? eq + 1 : NULL;
				return (enum ctl_flag)f;
			}
		return CF_END;
	}
	for (int f = 1; f < CF_COUNT; f++)
		if (cflags[f].shrt && cflags[f].shrt == arg[1]) {
			*inword = arg[2] ? arg + 2 + (arg[2] == '=') : NULL;
			return (enum ctl_flag)f;
		}
	return CF_END;
}

bool ctl_flag_needs_next(const char *arg)
{
	const char *v;
	enum ctl_flag f = arg[0] == '-' && arg[1] ? lookup(arg, &v) : CF_END;
	return f != CF_END && cflags[f].metavar && !v;
}

int ctl_parse(const struct ctl_cmd *c, int argc, char **argv, struct ctl_opts *o)
{
	bool plugin = o->plugin;
	memset(o, 0, sizeof(*o));
	o->cmd = c;
	o->plugin = plugin;
	o->fmt = FMT_TEXT;
	o->args = xcalloc((size_t)argc + 1, sizeof(char *));
	bool dashdash = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		if (dashdash || a[0] != '-' || !a[1]) { /* "-": standard input, an argument */
			o->args[o->nargs++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			dashdash = true;
			continue;
		}
		enum ctl_flag f = lookup(a, &v);
		if (f == CF_END || !cmd_has(c, f))
			return bad(c, "unknown flag %s", a);
		if (cflags[f].metavar && !v) {
			if (i + 1 >= argc)
				return bad(c, "%s needs a value (%s)", a, cflags[f].metavar);
			v = argv[++i];
		} else if (!cflags[f].metavar && v) {
			return bad(c, "%s takes no value", cflags[f].lng);
		}
		int rc = set_flag(c, o, f, v);
		if (rc)
			return rc;
	}
	if (o->help) {
		ctl_cmd_help(stdout, c);
		return 0;
	}
	if (o->nargs < c->min_args || (c->max_args >= 0 && o->nargs > c->max_args)) {
		fprintf(stderr, "usage: %s %s%s%s [flags]  (%s %s --help)\n", ctl_prog, c->name, c->args ? " " : "",
			c->args ? c->args : "", ctl_prog, c->name);
		return 2;
	}
	return 0;
}

bool ctl_use_cluster(const struct ctl_opts *o)
{
	return o->plugin || o->kubeconfig || o->context || o->cluster;
}

char *ctl_qualify(const struct ctl_opts *o, const char *spec, const char *default_ns)
{
	ip128 a;
	const char *ns = o->ns ? o->ns : default_ns;
	/* a name with a dot is a host name (a live explain takes one) or an address */
	if (strchr(spec, '/') || strchr(spec, '.') || ip_parse(spec, &a) == 0 || !ns)
		return xstrdup(spec);
	return xasprintf("%s/%s", ns, spec);
}

/* ---------- help ---------- */

/* Text wrapped at 79 columns, each line after the first indented. */
static void wrap(FILE *f, const char *text, int col, int indent)
{
	int start = col;
	for (const char *p = text; *p;) {
		while (*p == ' ')
			p++;
		size_t w = strcspn(p, " ");
		if (!w)
			break;
		if (col > start && col + 1 + (int)w > 79) {
			fprintf(f, "\n%*s", indent, "");
			col = start = indent;
		} else if (col > start) {
			fputc(' ', f);
			col++;
		}
		fwrite(p, 1, w, f);
		col += (int)w;
		p += w;
	}
	fputc('\n', f);
}

void ctl_cmd_help(FILE *f, const struct ctl_cmd *c)
{
	fprintf(f, "usage: %s %s%s%s%s\n\n", ctl_prog, c->name, c->args && *c->args ? " " : "", c->args ? c->args : "",
		c->flags[0].f != CF_END ? " [flags]" : "");
	wrap(f, c->summary, 0, 0);
	fprintf(f, "\nflags:\n");
	for (size_t i = 0; c->flags[i].f != CF_END; i++) {
		const struct cflag *x = &cflags[c->flags[i].f];
		char lhs[64];
		if (x->shrt)
			snprintf(lhs, sizeof(lhs), "-%c, %s%s%s", x->shrt, x->lng, x->metavar ? " " : "",
				 x->metavar ? x->metavar : "");
		else
			snprintf(lhs, sizeof(lhs), "    %s%s%s", x->lng, x->metavar ? " " : "", x->metavar ? x->metavar : "");
		fprintf(f, "  %-24s ", lhs);
		struct sbuf h = { 0 };
		sbuf_add(&h, c->flags[i].help ? c->flags[i].help : x->help);
		if (c->flags[i].f == CF_OUTPUT) {
			sbuf_add(&h, ": ");
			formats_of(c, &h, ", ");
		}
		wrap(f, h.s, 27, 27);
		sbuf_free(&h);
	}
	if (c->details) {
		fputc('\n', f);
		for (const char *p = c->details; *p;) { /* paragraphs, each wrapped */
			size_t n = strcspn(p, "\n");
			char *para = strndup(p, n);
			if (n && para[0] == ' ')
				fprintf(f, "%s\n", para); /* indented: an example, as written */
			else if (n)
				wrap(f, para, 0, 0);
			else
				fputc('\n', f);
			free(para);
			p += n + (p[n] == '\n');
		}
	}
}

void ctl_usage(FILE *f)
{
	fprintf(f, "usage: %s COMMAND [ARGS] [flags]\n\ncommands:\n", ctl_prog);
	for (size_t i = 0; i < ctl_ncommands; i++) {
		fprintf(f, "  %-9s ", ctl_commands[i].name);
		wrap(f, ctl_commands[i].summary, 12, 12);
	}
	fprintf(f, "\n%s COMMAND --help tells more: arguments, flags and exit status.\n", ctl_prog);
	fprintf(f, "Objects come from a folder of manifests (--from DIR), from the cluster (--kubeconfig FILE,\n"
		   "--context NAME or --cluster; as `kubectl corral`, always), or from both: the folder applied\n"
		   "on top of the cluster. explain, dump, status, drops and dns without them ask the running agent.\n");
	fprintf(f, "Exit status: 0 done, 1 the answer is no (explain DENIED, check found errors, diff --fail-on),\n"
		   "2 the question could not be answered (usage, unreadable input, no agent, the API server).\n");
}

/* ---------- completion ---------- */

/* Contexts of the kubeconfig in use, for --context. */
static void contexts(const char *path, const char *cur)
{
	char *file = path ? xstrdup(path)
			  : getenv("KUBECONFIG") && *getenv("KUBECONFIG") ? strndup(getenv("KUBECONFIG"),
										   strcspn(getenv("KUBECONFIG"), ":"))
			  : getenv("HOME") ? xasprintf("%s/.kube/config", getenv("HOME")) : NULL;
	size_t len;
	char *err = NULL, *text = file ? manifest_read_file(file, 4u << 20, &len, &err) : NULL;
	struct vec docs = { 0 };
	if (text && kube_yaml_parse(text, len, &docs, &err) == 0 && docs.n == 1) {
		json_t *x;
		size_t i;
		json_array_foreach(json_object_get(docs.v[0], "contexts"), i, x) {
			const char *n = json_string_value(json_object_get(x, "name"));
			if (n && !strncmp(n, cur, strlen(cur)))
				printf("%s\n", n);
		}
	}
	for (size_t i = 0; i < docs.n; i++)
		json_decref(docs.v[i]);
	vec_free(&docs);
	free(err);
	free(text);
	free(file);
}

static void cand(const char *word, const char *cur)
{
	if (!strncmp(word, cur, strlen(cur)))
		printf("%s\n", word);
}

/* Values of flag f for command c; the directive (0: files). */
static int complete_value(const struct ctl_cmd *c, enum ctl_flag f, const char *kubeconfig, const char *cur)
{
	switch (cflags[f].kind) {
	case FK_OUTPUT:
		for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
			if (c->formats & formats[i].f)
				cand(formats[i].name, cur);
		return 4;
	case FK_PROTOCOL:
		cand("TCP", cur);
		cand("UDP", cur);
		cand("SCTP", cur);
		return 4;
	case FK_FAIL_ON:
		cand("added", cur);
		cand("removed", cur);
		cand("changed", cur);
		return 4;
	default:
		break;
	}
	if (f == CF_CONTEXT) {
		contexts(kubeconfig, cur);
		return 4;
	}
	return f == CF_FROM || f == CF_TO || f == CF_KUBECONFIG || f == CF_SOCKET ? 0 : 4;
}

int ctl_complete(int argc, char **argv)
{
	/* argv: the words before the cursor, then the word being completed */
	const char *cur = argc ? argv[argc - 1] : "", *kubeconfig = NULL;
	const struct ctl_cmd *c = NULL;
	enum ctl_flag want = CF_END; /* the previous word is a flag that takes a value */
	int directive = 4;
	for (int i = 0; i < argc - 1; i++) {
		const char *a = argv[i], *v;
		want = CF_END;
		if (a[0] == '-' && a[1]) {
			enum ctl_flag f = lookup(a, &v);
			if (f != CF_END && cflags[f].metavar && !v) {
				want = f;
				if (i + 1 < argc - 1 && f == CF_KUBECONFIG)
					kubeconfig = argv[i + 1];
				if (i + 1 < argc - 1)
					i++, want = CF_END;
			}
		} else if (!c) {
			c = ctl_cmd_find(a);
		}
	}
	if (want != CF_END) {
		directive = complete_value(c ? c : ctl_cmd_find("matrix"), want, kubeconfig, cur);
	} else if (cur[0] == '-') {
		for (int f = 1; f < CF_COUNT; f++)
			if (!c || cmd_has(c, (enum ctl_flag)f))
				cand(cflags[f].lng, cur);
	} else if (!c) {
		for (size_t i = 0; i < ctl_ncommands; i++)
			cand(ctl_commands[i].name, cur);
	} else if (!strcmp(c->name, "check")) {
		directive = 0; /* files and folders */
	} else if (!strcmp(c->name, "help")) {
		for (size_t i = 0; i < ctl_ncommands; i++)
			cand(ctl_commands[i].name, cur);
	}
	printf(":%d\n", directive);
	return 0;
}
