/* agentctl: one file per subcommand, dispatched from the commands[] table
 * of main.c; every flag is a row of one table (opts.c) that the parser,
 * each command's --help and the shell completion all read. */
#ifndef CORRAL_AGENTCTL_H
#define CORRAL_AGENTCTL_H

#include <jansson.h>
#include <stdio.h>

#include "kube/manifest.h"
#include "policy/eval.h"
#include "policy/explain.h"

/* Output formats (-o), as bits: a command lists those it has. */
enum ctl_fmt {
	FMT_TEXT = 1 << 0,
	FMT_JSON = 1 << 1,
	FMT_YAML = 1 << 2,
	FMT_MD = 1 << 3,
	FMT_CSV = 1 << 4,
	FMT_DOT = 1 << 5,
	FMT_SVG = 1 << 6,
};
const char *ctl_fmt_name(enum ctl_fmt f);

/* The flags, one row each in opts.c. */
enum ctl_flag {
	CF_END = 0, /* ends a command's list */
	CF_FROM,
	CF_TO,
	CF_KUBECONFIG,
	CF_CONTEXT,
	CF_CLUSTER,
	CF_NAMESPACE,
	CF_PORT,
	CF_PROTOCOL,
	CF_OUTPUT,
	CF_APP_LABEL,
	CF_NODE,
	CF_TABLE,
	CF_SOCKET,
	CF_FOLLOW,
	CF_EXPLAIN,
	CF_FAIL_ON,
	CF_HELP,
	CF_POD_CIDRS,
	CF_APISERVER,
	CF_COUNT
};

/* diff --fail-on */
enum { FAIL_ON_ADDED = 1, FAIL_ON_REMOVED = 2 };

struct ctl_cmd;

struct ctl_opts {
	const struct ctl_cmd *cmd;
	const char *from, *to, *kubeconfig, *context, *ns, *app_label, *node, *table, *socket;
	const char *pod_cidrs, *apiserver; /* the agent's podCidrs and apiServerAddresses settings */
	bool cluster, follow, explain, help;
	int port, proto;   /* 0: not given */
	enum ctl_fmt fmt;  /* FMT_TEXT unless -o */
	unsigned fail_on;  /* FAIL_ON_* */
	bool plugin;       /* run as kubectl-corral: the cluster is the source */
	int nargs;
	char **args;
};

struct ctl_cmd_flag {
	enum ctl_flag f;
	const char *help; /* NULL: the flag's own */
};

struct ctl_cmd {
	const char *name, *args, *summary;
	int (*fn)(struct ctl_opts *o);
	int min_args, max_args;
	unsigned formats; /* FMT_* it can print; FMT_TEXT alone: no -o */
	struct ctl_cmd_flag flags[16];
	const char *details; /* paragraphs after the flags in --help */
};

extern const struct ctl_cmd ctl_commands[];
extern const size_t ctl_ncommands;
extern const char *ctl_prog; /* "agentctl" or "kubectl corral", in messages */

/* opts.c */
const struct ctl_cmd *ctl_cmd_find(const char *name);
/* Parses a command's arguments (argv[0] is the command); 0, or 2 after
 * saying what is wrong on stderr. --help prints the help and sets o->help. */
int ctl_parse(const struct ctl_cmd *c, int argc, char **argv, struct ctl_opts *o);
void ctl_cmd_help(FILE *f, const struct ctl_cmd *c);
/* Whether a flag as written takes its value from the next word. */
bool ctl_flag_needs_next(const char *arg);
void ctl_usage(FILE *f);
/* The shell completion protocol (kubectl's for plugins, cobra's):
 * candidates for the last word, one per line, then ":DIRECTIVE". */
int ctl_complete(int argc, char **argv);
/* Whether the command's objects come from the cluster. */
bool ctl_use_cluster(const struct ctl_opts *o);
/* A name as the user wrote it with -n applied: "NAME" -> "NS/NAME" (to free). */
char *ctl_qualify(const struct ctl_opts *o, const char *spec, const char *default_ns);

int cmd_check(struct ctl_opts *o);
int cmd_explain(struct ctl_opts *o);
int cmd_matrix(struct ctl_opts *o);
int cmd_diff(struct ctl_opts *o);
int cmd_dump(struct ctl_opts *o);
int cmd_status(struct ctl_opts *o);
int cmd_drops(struct ctl_opts *o);
int cmd_dns(struct ctl_opts *o);
int cmd_version(struct ctl_opts *o);
int cmd_help(struct ctl_opts *o);

/* client.c: the running agent's control socket */
extern const char *ctl_socket; /* --socket */
const char *ctl_socket_path(void);
/* Sends req; on_line gets each reply line (return 0 to go on, -1 to stop
 * fine, >0 to stop with that exit code). Returns the exit code. */
int ctl_request(json_t *req, int (*on_line)(json_t *line, void *arg), void *arg);
/* One request, one reply printed as text (or its data as JSON or YAML);
 * takes req. Exit code 0, or 2 when the agent answers an error. */
int ctl_simple(json_t *req, enum ctl_fmt fmt);

/* source.c: where objects come from. A folder of manifests (--from), the
 * cluster (read once), or the folder applied on top of the cluster
 * (objects of the same kind, namespace and name replace the cluster's).
 * Each engine counts every pod as local (node NULL) or node's pods. */
struct ctl_cluster; /* the cluster's objects, read once, shared by engines */
/* NULL after saying why on stderr. */
struct ctl_cluster *ctl_cluster_read(const struct ctl_opts *o);
void ctl_cluster_free(struct ctl_cluster *c);
/* What reading the cluster found: objects it holds, and what could not
 * be read (enforced fail-closed). */
size_t ctl_cluster_objects(const struct ctl_cluster *c);
const struct diags *ctl_cluster_diags(const struct ctl_cluster *c);
/* Manifests from standard input ("-") into set, as a file named "-". */
int ctl_load_stdin(struct manifest_set *set, const struct decode_opts *o);
/* The default namespace of names without one: -n, else the context's. */
const char *ctl_cluster_namespace(const struct ctl_cluster *c);
/* dir may be NULL (the cluster alone), cluster may be NULL (the folder
 * alone). quiet: problems of the objects are not printed (-o json). NULL
 * after saying why on stderr. */
struct engine *ctl_engine(const struct ctl_opts *o, struct ctl_cluster *cluster, const char *dir, const char *node,
			  bool quiet);
/* "DIR", "the cluster (context C)" or "DIR on top of the cluster (...)". To free. */
char *ctl_source_name(const struct ctl_cluster *cluster, const char *dir);

/* offline.c */
/* SRC/DST: "ns/pod", "ns/app" or an IP address. */
int offline_resolve(struct engine *e, const char *spec, struct endpoint *out, char **note);
int parse_protocol_arg(const char *s);
int parse_port_arg(const char *s);
void print_diags(FILE *f, const struct diags *d);

/* output.c */
/* JSON (indented) or YAML of o, to f; takes o. */
void ctl_print_doc(FILE *f, json_t *o, enum ctl_fmt fmt);
void ctl_yaml_write(FILE *f, const json_t *o);
/* A CSV field, quoted when it must be (RFC 4180). */
void ctl_csv_field(FILE *f, const char *s);
/* A Markdown table cell: | and newlines escaped. */
void ctl_md_cell(FILE *f, const char *s);
/* Graphviz: a digraph's opening; pods grouped by namespace (attrs[i], may
 * be NULL, adds attributes to pod i); an edge. Ids are "ns/pod". */
void ctl_dot_begin(struct sbuf *b, const char *title);
void ctl_dot_pods(struct sbuf *b, const struct vec *pods, const char *const *attrs);
void ctl_dot_edge(struct sbuf *b, const char *from, const char *to, const char *label, const char *attrs);
/* Graphviz text to stdout: as is (-o dot), or through `dot -Tsvg` (-o svg).
 * Takes text. Exit code. */
int ctl_graph_out(char *text, enum ctl_fmt fmt);

/* Active pods of e, sorted, of namespace ns only when set. */
void ctl_pods(const struct engine *e, const char *ns, struct vec *out);
/* Per family (0: IPv4, 1: IPv6): 1 allowed, 0 denied, -1 the pair lacks it. */
void ctl_eval_pair(const struct engine *e, struct pod *s, struct pod *d, int proto, int port, int fam[2]);
char ctl_cell(const int fam[2]);

#endif
