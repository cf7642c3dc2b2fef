/* agentctl matrix: who can talk to whom on one port, as a table (text,
 * Markdown, CSV), as data (JSON, YAML), or as a picture (Graphviz). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

struct matrix {
	const struct engine *e;
	struct vec pods; /* struct pod*, sorted by namespace and name */
	int proto, port;
	bool port_given;
	int (*fam)[2];  /* [i * n + j], per family as ctl_eval_pair */
};

static char *pod_name(const struct pod *p)
{
	return xasprintf("%s/%s", p->spec->ns, p->spec->name);
}

static void fill(struct matrix *m)
{
	size_t n = m->pods.n;
	m->fam = xcalloc(n * n + 1, sizeof(*m->fam));
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			ctl_eval_pair(m->e, m->pods.v[i], m->pods.v[j], m->proto, m->port, m->fam[i * n + j]);
}

static char cell(const struct matrix *m, size_t i, size_t j)
{
	return ctl_cell(m->fam[i * m->pods.n + j]);
}

static void header(FILE *f, const struct matrix *m, const char *pre, const char *post)
{
	fprintf(f, "%s%s/%d%s%s: rows are sources, columns destinations\n", pre, proto_name(m->proto), m->port, post,
		m->port_given ? "" : " (the default; --port and --protocol choose another)");
}

/* ---------- text ---------- */

static void line_out(FILE *f, struct sbuf *b)
{
	while (b->n && b->s[b->n - 1] == ' ')
		b->n--;
	fprintf(f, "%.*s\n", (int)b->n, b->s ? b->s : "");
	b->n = 0;
}

static void print_text(FILE *f, const struct matrix *m)
{
	size_t n = m->pods.n, w = 0, *cw = xcalloc(n, sizeof(size_t));
	struct sbuf b = { 0 };
	header(f, m, "", "");
	fprintf(f, ". allowed, X denied, 4 or 6 allowed over IPv4 or IPv6 only, - no address family in common\n\n");
	for (size_t i = 0; i < n; i++) {
		const struct pod *p = m->pods.v[i];
		size_t l = strlen(p->spec->ns) + strlen(p->spec->name) + 1;
		bool first = !i || strcmp(((struct pod *)m->pods.v[i - 1])->spec->ns, p->spec->ns);
		w = l > w ? l : w;
		cw[i] = strlen(p->spec->name);
		if (first && strlen(p->spec->ns) > cw[i])
			cw[i] = strlen(p->spec->ns);
	}
	/* two header lines: the namespace over its first column, the pod names */
	for (int line = 0; line < 2; line++) {
		sbuf_addf(&b, "%-*s", (int)w, "");
		for (size_t j = 0; j < n; j++) {
			const struct pod *p = m->pods.v[j];
			bool first = !j || strcmp(((struct pod *)m->pods.v[j - 1])->spec->ns, p->spec->ns);
			sbuf_addf(&b, "  %-*s", (int)cw[j], line ? p->spec->name : first ? p->spec->ns : "");
		}
		line_out(f, &b);
	}
	for (size_t i = 0; i < n; i++) {
		char *name = pod_name(m->pods.v[i]);
		sbuf_addf(&b, "%-*s", (int)w, name);
		free(name);
		for (size_t j = 0; j < n; j++)
			sbuf_addf(&b, "  %-*c", (int)cw[j], cell(m, i, j));
		line_out(f, &b);
	}
	sbuf_free(&b);
	free(cw);
}

/* ---------- data ---------- */

static json_t *fam_json(int v)
{
	return v < 0 ? json_null() : json_boolean(v);
}

/* allowed: over every family the pair shares (null: none); ipv4, ipv6:
 * per family (null: the pair lacks it) */
static json_t *to_json(const struct matrix *m)
{
	size_t n = m->pods.n;
	json_t *names = json_array(), *rows = json_array(), *fams[2] = { json_array(), json_array() };
	for (size_t i = 0; i < n; i++) {
		char *name = pod_name(m->pods.v[i]);
		json_array_append_new(names, json_string(name));
		free(name);
		json_t *row = json_array(), *frow[2] = { json_array(), json_array() };
		for (size_t j = 0; j < n; j++) {
			char c = cell(m, i, j);
			json_array_append_new(row, c == '-' ? json_null() : json_boolean(c == '.'));
			for (int f = 0; f < 2; f++)
				json_array_append_new(frow[f], fam_json(m->fam[i * n + j][f]));
		}
		json_array_append_new(rows, row);
		for (int f = 0; f < 2; f++)
			json_array_append_new(fams[f], frow[f]);
	}
	return json_pack("{s:s, s:i, s:o, s:o, s:o, s:o}", "protocol", proto_name(m->proto), "port", m->port, "pods",
			 names, "allowed", rows, "ipv4", fams[0], "ipv6", fams[1]);
}

static const char *verdict_word(char c)
{
	return c == '.' ? "allowed" : c == 'X' ? "denied" : c == '4' ? "ipv4-only" : c == '6' ? "ipv6-only"
										: "no-common-family";
}

static void print_csv(FILE *f, const struct matrix *m)
{
	size_t n = m->pods.n;
	fprintf(f, "source,destination,protocol,port,verdict,ipv4,ipv6\n");
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			char *s = pod_name(m->pods.v[i]), *d = pod_name(m->pods.v[j]);
			const int *fam = m->fam[i * n + j];
			ctl_csv_field(f, s);
			fputc(',', f);
			ctl_csv_field(f, d);
			fprintf(f, ",%s,%d,%s,%s,%s\n", proto_name(m->proto), m->port, verdict_word(cell(m, i, j)),
				fam[0] < 0 ? "" : fam[0] ? "allowed" : "denied", fam[1] < 0 ? "" : fam[1] ? "allowed" : "denied");
			free(s);
			free(d);
		}
}

static void print_md(FILE *f, const struct matrix *m)
{
	static const struct {
		char c;
		const char *md;
	} words[] = { { '.', "allow" }, { 'X', "deny" }, { '4', "IPv4 only" }, { '6', "IPv6 only" }, { '-', "n/a" } };
	size_t n = m->pods.n;
	header(f, m, "**", "**");
	fprintf(f, "\n| |");
	for (size_t j = 0; j < n; j++) {
		char *d = pod_name(m->pods.v[j]);
		fputc(' ', f);
		ctl_md_cell(f, d);
		fprintf(f, " |");
		free(d);
	}
	fprintf(f, "\n|---|");
	for (size_t j = 0; j < n; j++)
		fprintf(f, ":-:|");
	fputc('\n', f);
	for (size_t i = 0; i < n; i++) {
		char *s = pod_name(m->pods.v[i]);
		fprintf(f, "| **");
		ctl_md_cell(f, s);
		fprintf(f, "** |");
		free(s);
		for (size_t j = 0; j < n; j++) {
			char c = cell(m, i, j);
			for (size_t k = 0; k < ARRAY_SIZE(words); k++)
				if (words[k].c == c)
					fprintf(f, " %s |", words[k].md);
		}
		fputc('\n', f);
	}
}

/* ---------- picture ---------- */

/* The ports drawn to d: --port, else each port d declares, else TCP/80. */
static size_t graph_ports(const struct matrix *m, const struct pod *d, struct cport *out, size_t max)
{
	size_t k = 0;
	if (m->port_given || !d->spec->nports) {
		out[0] = (struct cport){ NULL, (uint8_t)m->proto, (uint16_t)m->port };
		return 1;
	}
	for (uint32_t i = 0; i < d->spec->nports && k < max; i++) {
		size_t x = 0;
		while (x < k && (out[x].proto != d->spec->ports[i].proto || out[x].port != d->spec->ports[i].port))
			x++;
		if (x == k)
			out[k++] = d->spec->ports[i];
	}
	return k;
}

static char *print_dot(const struct matrix *m)
{
	size_t n = m->pods.n;
	struct sbuf b = { 0 };
	char *title = m->port_given ? xasprintf("allowed flows, %s/%d", proto_name(m->proto), m->port)
				    : xstrdup("allowed flows to each pod's declared ports");
	ctl_dot_begin(&b, title);
	free(title);
	ctl_dot_pods(&b, &m->pods, NULL);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			struct cport ports[64];
			size_t np = graph_ports(m, m->pods.v[j], ports, ARRAY_SIZE(ports));
			struct sbuf label = { 0 };
			if (i == j)
				continue;
			for (size_t k = 0; k < np; k++) {
				int fam[2];
				ctl_eval_pair(m->e, m->pods.v[i], m->pods.v[j], ports[k].proto, ports[k].port, fam);
				char c = ctl_cell(fam);
				if (c == 'X' || c == '-')
					continue;
				sbuf_addf(&label, "%s%s %u%s", label.n ? ", " : "", proto_name(ports[k].proto), ports[k].port,
					  c == '4' ? " (IPv4 only)" : c == '6' ? " (IPv6 only)" : "");
			}
			if (label.n) {
				char *s = pod_name(m->pods.v[i]), *d = pod_name(m->pods.v[j]);
				ctl_dot_edge(&b, s, d, label.s, NULL);
				free(s);
				free(d);
			}
			sbuf_free(&label);
		}
	sbuf_add(&b, "}\n");
	return sbuf_steal(&b);
}

/* ---------- the command ---------- */

int cmd_matrix(struct ctl_opts *o)
{
	struct ctl_cluster *c = NULL;
	struct matrix m = { 0 };
	int rc = 2;
	if (!o->from && !ctl_use_cluster(o)) {
		fprintf(stderr, "%s matrix: from where? --from DIR, or the cluster (--kubeconfig, --context, --cluster)  "
				"(%s matrix --help)\n", ctl_prog, ctl_prog);
		return 2;
	}
	if (ctl_use_cluster(o) && !(c = ctl_cluster_read(o)))
		return 2;
	struct engine *e = ctl_engine(o, c, o->from, NULL, o->fmt != FMT_TEXT);
	if (!e)
		goto out;
	m.e = e;
	m.proto = o->proto ? o->proto : PROTO_TCP;
	m.port = o->port ? o->port : 80;
	m.port_given = o->port || o->proto;
	ctl_pods(e, o->ns, &m.pods);
	if (!m.pods.n) {
		char *src = ctl_source_name(c, o->from);
		fprintf(stderr, "%s matrix: no pod with an address in %s%s%s\n", ctl_prog, src,
			o->ns ? ", namespace " : "", o->ns ? o->ns : "");
		free(src);
		goto out;
	}
	rc = 0;
	if (o->fmt == FMT_DOT || o->fmt == FMT_SVG) {
		rc = ctl_graph_out(print_dot(&m), o->fmt);
		goto out;
	}
	fill(&m);
	if (o->fmt == FMT_JSON || o->fmt == FMT_YAML)
		ctl_print_doc(stdout, to_json(&m), o->fmt);
	else if (o->fmt == FMT_CSV)
		print_csv(stdout, &m);
	else if (o->fmt == FMT_MD)
		print_md(stdout, &m);
	else
		print_text(stdout, &m);
out:
	free(m.fam);
	vec_free(&m.pods);
	engine_free(e);
	ctl_cluster_free(c);
	return rc;
}
