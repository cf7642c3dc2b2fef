/* Output formats shared by the commands: JSON and YAML documents, CSV
 * fields, Markdown cells, Graphviz ids, and svg made by Graphviz's dot. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"

/* ---------- YAML ---------- */

/* Whether s reads back as the same string when written plain: a
 * conservative subset (a letter first; letters, digits and -_./()+,
 * and inner spaces after it), and none of the words YAML 1.1 (kubectl's
 * reading) takes for a boolean or null. */
static bool y_plain_ok(const char *s)
{
	static const char *const words[] = { "y", "yes", "n", "no", "true", "false", "on", "off", "null" };
	size_t n = strlen(s);
	if (!n || !isalpha((unsigned char)s[0]) || s[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && !strchr("-_./()+, ", c))
			return false;
		if (c == ' ' && (s[i + 1] == ' ' || s[i + 1] == '#'))
			return false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (!strcasecmp(s, words[i]))
			return false;
	return true;
}

/* A literal block (|) keeps text of several lines readable: every
 * character printable, no line with spaces at its end, the first not
 * starting with one. */
static bool y_block_ok(const char *s)
{
	if (!strchr(s, '\n') || s[0] == ' ' || s[0] == '\n')
		return false;
	for (const char *p = s; *p; p++)
		if (((unsigned char)*p < 0x20 && *p != '\n') || *p == 0x7f || (*p == ' ' && (p[1] == '\n' || !p[1])))
			return false;
	return true;
}

static void y_block(FILE *f, const char *s, int indent)
{
	size_t n = strlen(s), nl = 0;
	while (nl < n && s[n - 1 - nl] == '\n')
		nl++;
	fputs(nl == 0 ? "|-" : nl == 1 ? "|" : "|+", f);
	for (const char *p = s; *p;) {
		size_t l = strcspn(p, "\n");
		if (l)
			fprintf(f, "\n%*s%.*s", indent, "", (int)l, p);
		else
			fputc('\n', f);
		p += l;
		if (*p == '\n')
			p++;
	}
}

static void y_string(FILE *f, const char *s)
{
	if (y_plain_ok(s)) {
		fputs(s, f);
		return;
	}
	/* JSON's escapes are YAML's double-quoted escapes */
	json_t *j = json_string(s);
	char *q = json_dumps(j, JSON_ENCODE_ANY);
	fputs(q ? q : "\"\"", f);
	free(q);
	json_decref(j);
}

/* indent: of a literal block's lines */
static void y_scalar(FILE *f, const json_t *v, int indent)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		if (y_block_ok(json_string_value(v)))
			y_block(f, json_string_value(v), indent);
		else
			y_string(f, json_string_value(v));
		break;
	case JSON_INTEGER: fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
	case JSON_REAL: fprintf(f, "%.17g", json_real_value(v)); break;
	case JSON_TRUE: fputs("true", f); break;
	case JSON_FALSE: fputs("false", f); break;
	case JSON_NULL: fputs("null", f); break;
	case JSON_OBJECT: fputs("{}", f); break; /* only empty ones get here */
	case JSON_ARRAY: fputs("[]", f); break;
	}
}

static bool y_nested(const json_t *v)
{
	return (json_is_object(v) && json_object_size(v)) || (json_is_array(v) && json_array_size(v));
}

static void y_node(FILE *f, const json_t *v, int indent, bool inline_first);

/* A key's value: scalars on the key's line, collections below it. Items
 * of a sequence under a key stay at the key's indentation, as kubectl
 * writes them. */
static void y_value(FILE *f, const json_t *v, int indent)
{
	if (!y_nested(v)) {
		fputc(' ', f);
		y_scalar(f, v, indent + 2);
		fputc('\n', f);
		return;
	}
	fputc('\n', f);
	y_node(f, v, json_is_array(v) ? indent : indent + 2, false);
}

/* inline_first: the first line goes after a "- " already written. */
static void y_node(FILE *f, const json_t *v, int indent, bool inline_first)
{
	bool first = true;
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)v, k, x) {
			if (!(first && inline_first))
				fprintf(f, "%*s", indent, "");
			first = false;
			y_string(f, k);
			fputc(':', f);
			y_value(f, x, indent);
		}
	} else {
		size_t i;
		json_t *x;
		json_array_foreach((json_t *)v, i, x) {
			if (!(first && inline_first))
				fprintf(f, "%*s", indent, "");
			first = false;
			fputs("- ", f);
			if (y_nested(x))
				y_node(f, x, indent + 2, true);
			else {
				y_scalar(f, x, indent + 2);
				fputc('\n', f);
			}
		}
	}
}

void ctl_yaml_write(FILE *f, const json_t *o)
{
	if (y_nested(o))
		y_node(f, o, 0, false);
	else {
		y_scalar(f, o, 2);
		fputc('\n', f);
	}
}

void ctl_print_doc(FILE *f, json_t *o, enum ctl_fmt fmt)
{
	if (fmt == FMT_YAML) {
		ctl_yaml_write(f, o);
	} else {
		json_dumpf(o, f, JSON_INDENT(2));
		fputc('\n', f);
	}
	json_decref(o);
}

/* ---------- CSV, Markdown, Graphviz ---------- */

void ctl_csv_field(FILE *f, const char *s)
{
	if (!s[strcspn(s, ",\"\r\n")]) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void ctl_md_cell(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '|' || *s == '\\' || *s == '*' || *s == '_' || *s == '`' || *s == '<')
			fputc('\\', f);
		fputc(*s == '\n' ? ' ' : *s, f);
	}
}

static void dot_id(struct sbuf *b, const char *s)
{
	sbuf_add(b, "\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			sbuf_add(b, "\\");
		sbuf_addn(b, *s == '\n' ? " " : s, 1);
	}
	sbuf_add(b, "\"");
}

void ctl_dot_begin(struct sbuf *b, const char *title)
{
	sbuf_add(b, "digraph corral {\n\tgraph [rankdir=LR, fontname=\"sans-serif\", labelloc=t, label=");
	dot_id(b, title);
	sbuf_add(b, "];\n\tnode [shape=box, style=\"rounded,filled\", fillcolor=\"#f4f4f4\", fontname=\"sans-serif\"];\n"
		    "\tedge [fontname=\"sans-serif\", fontsize=10];\n");
}

void ctl_dot_pods(struct sbuf *b, const struct vec *pods, const char *const *attrs)
{
	const char *ns = NULL;
	for (size_t i = 0; i < pods->n; i++) {
		const struct pod *p = pods->v[i];
		if (!ns || strcmp(ns, p->spec->ns)) {
			if (ns)
				sbuf_add(b, "\t}\n");
			ns = p->spec->ns;
			char *cl = xasprintf("cluster_%s", ns);
			sbuf_add(b, "\tsubgraph ");
			dot_id(b, cl);
			sbuf_add(b, " {\n\t\tlabel=");
			dot_id(b, ns);
			sbuf_add(b, "; style=\"rounded\"; color=\"#999999\";\n");
			free(cl);
		}
		char *id = xasprintf("%s/%s", p->spec->ns, p->spec->name);
		sbuf_add(b, "\t\t");
		dot_id(b, id);
		sbuf_add(b, " [label=");
		dot_id(b, p->spec->name);
		if (attrs && attrs[i])
			sbuf_addf(b, ", %s", attrs[i]);
		sbuf_add(b, "];\n");
		free(id);
	}
	if (ns)
		sbuf_add(b, "\t}\n");
}

void ctl_dot_edge(struct sbuf *b, const char *from, const char *to, const char *label, const char *attrs)
{
	sbuf_add(b, "\t");
	dot_id(b, from);
	sbuf_add(b, " -> ");
	dot_id(b, to);
	sbuf_add(b, " [label=");
	dot_id(b, label);
	if (attrs)
		sbuf_addf(b, ", %s", attrs);
	sbuf_add(b, "];\n");
}

static char *find_in_path(const char *name)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		char *cand = xasprintf("%.*s/%s", (int)n, p, name);
		if (n && access(cand, X_OK) == 0)
			return cand;
		free(cand);
		p += n + (p[n] == ':');
	}
	return NULL;
}

int ctl_graph_out(char *text, enum ctl_fmt fmt)
{
	if (fmt != FMT_SVG) {
		fputs(text, stdout);
		free(text);
		return 0;
	}
	char *dot = find_in_path("dot");
	if (!dot) {
		fprintf(stderr, "%s: -o svg needs Graphviz's dot on PATH (Debian: apt-get install graphviz); "
				"-o dot prints its input\n", ctl_prog);
		free(text);
		return 2;
	}
	int p[2];
	fflush(stdout);
	if (pipe(p) < 0) {
		fprintf(stderr, "%s: pipe: %s\n", ctl_prog, strerror(errno));
		free(dot);
		free(text);
		return 2;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[0], 0);
		close(p[0]);
		close(p[1]);
		execl(dot, "dot", "-Tsvg", (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	void (*old)(int) = signal(SIGPIPE, SIG_IGN); /* dot may stop reading: its status says why */
	size_t len = strlen(text), off = 0;
	while (pid > 0 && off < len) {
		ssize_t w = write(p[1], text + off, len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(p[1]);
	signal(SIGPIPE, old);
	int st = 0;
	if (pid > 0)
		waitpid(pid, &st, 0);
	free(dot);
	free(text);
	if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "%s: dot -Tsvg failed\n", ctl_prog);
		return 2;
	}
	return 0;
}
