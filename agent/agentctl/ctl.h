/* agentctl: one file per subcommand, dispatched from a table in main.c. */
#ifndef CORRAL_AGENTCTL_H
#define CORRAL_AGENTCTL_H

#include <stdio.h>

#include "kube/manifest.h"
#include "policy/eval.h"
#include "policy/explain.h"

int cmd_check(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_matrix(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_drops(int argc, char **argv);
int cmd_dns(int argc, char **argv);

/* client.c: the running agent's control socket */
#include <jansson.h>
extern const char *ctl_socket; /* --socket */
const char *ctl_socket_path(void);
/* Sends req; on_line gets each reply line (return 0 to go on, -1 to stop
 * fine, >0 to stop with that exit code). Returns the exit code. */
int ctl_request(json_t *req, int (*on_line)(json_t *line, void *arg), void *arg);
/* One request, one reply printed as text (or its data as JSON); takes req. */
int ctl_simple(json_t *req, bool json);

/* offline.c: a folder of manifests made into an engine that treats every
 * pod as local, so that both ends of a flow are evaluated. */
struct engine *offline_load(const char *dir, const char *node, const char *app_label, bool quiet);
/* SRC/DST: "ns/pod", "ns/app" or an IP address. */
int offline_resolve(struct engine *e, const char *spec, struct endpoint *out, char **note);
int parse_protocol_arg(const char *s);
int parse_port_arg(const char *s);
void print_diags(FILE *f, const struct diags *d);

#endif
