/* Where agentctl's objects come from: a folder of manifests (--from), the
 * cluster read once (--kubeconfig, --context, --cluster, or the kubectl
 * plugin), or the folder applied on top of the cluster: the question a
 * reviewer asks of a pull request. Objects with the same kind, namespace
 * and name replace the cluster's; the rest of the cluster stays. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "kube/list.h"

struct ctl_cluster {
	struct kube_auth auth;
	struct manifest_set set; /* specs shared by every engine made from it */
	char *ns;                /* -n, else the context's namespace, else "default" */
};

struct ctl_cluster *ctl_cluster_read(const struct ctl_opts *o)
{
	struct ctl_cluster *c = xcalloc(1, sizeof(*c));
	char *err = NULL, *warn = NULL;
	/* kubectl's order: --kubeconfig, $KUBECONFIG, ~/.kube/config; in a
	 * pod without any of them, its service account */
	const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
	char *dflt = home ? xasprintf("%s/.kube/config", home) : NULL;
	bool in_pod = !o->kubeconfig && !o->context && !(env && *env) && !(dflt && access(dflt, R_OK) == 0) &&
		      getenv("KUBERNETES_SERVICE_HOST");
	free(dflt);
	int rc = in_pod ? kube_auth_in_cluster(&c->auth, NULL, &err)
			: kube_auth_kubeconfig_exec(&c->auth, o->kubeconfig, o->context, &err);
	struct kube_list_opts lo = { o->app_label, 0, 0 };
	if (rc == 0)
		rc = kube_list_all(&c->auth, &lo, &c->set, &warn, &err);
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", ctl_prog, err);
		free(err);
		ctl_cluster_free(c);
		return NULL;
	}
	if (warn)
		fprintf(stderr, "%s: warning: %s\n", ctl_prog, warn);
	free(warn);
	if (o->fmt == FMT_TEXT && strcmp(o->cmd->name, "check")) /* check prints them itself */
		print_diags(stderr, &c->set.diags);
	else if (c->set.diags.errors && strcmp(o->cmd->name, "check"))
		fprintf(stderr, "%s: %zu objects of the cluster could not be read and are enforced fail-closed\n",
			ctl_prog, c->set.diags.errors);
	c->ns = xstrdup(o->ns ? o->ns : c->auth.namespace ? c->auth.namespace : "default");
	return c;
}

void ctl_cluster_free(struct ctl_cluster *c)
{
	if (!c)
		return;
	kube_auth_free(&c->auth);
	manifest_set_free(&c->set);
	free(c->ns);
	free(c);
}

size_t ctl_cluster_objects(const struct ctl_cluster *c)
{
	return c->set.objects;
}

const struct diags *ctl_cluster_diags(const struct ctl_cluster *c)
{
	return &c->set.diags;
}

const char *ctl_cluster_namespace(const struct ctl_cluster *c)
{
	return c->ns;
}

char *ctl_source_name(const struct ctl_cluster *c, const char *dir)
{
	char *cl = !c ? NULL
		   : c->auth.context ? xasprintf("the cluster (context %s)", c->auth.context)
				     : xasprintf("the cluster (%s)", c->auth.server);
	char *out = !c ? xstrdup(dir ? dir : "nothing") : dir ? xasprintf("%s on top of %s", dir, cl) : xstrdup(cl);
	free(cl);
	return out;
}

/* ---------- one set of objects per engine ---------- */

static bool key_eq(const void *item, const void *key)
{
	return !strcmp(item, key);
}

static void share(struct vec *to, const struct vec *from, enum obj_type t, const struct htab *replaced)
{
	for (size_t i = 0; i < from->n; i++) {
		char *k = manifest_key(t, from->v[i]);
		bool gone = htab_find(replaced, hash_str(k), key_eq, k) != NULL;
		free(k);
		if (gone)
			continue;
		if (t == OBJ_NAMESPACE)
			((struct ns_spec *)from->v[i])->refs++;
		else if (t == OBJ_POD)
			((struct pod_spec *)from->v[i])->refs++;
		else if (t == OBJ_NODE)
			((struct node_spec *)from->v[i])->refs++;
		else
			((struct policy_spec *)from->v[i])->refs++;
		vec_push(to, from->v[i]);
	}
}

static void keys_of(struct htab *h, const struct vec *v, enum obj_type t)
{
	for (size_t i = 0; i < v->n; i++) {
		char *k = manifest_key(t, v->v[i]);
		htab_insert(h, hash_str(k), k);
	}
}

/* The cluster's objects that the folder does not replace, into set. */
static void overlay(struct manifest_set *set, const struct ctl_cluster *c)
{
	struct htab replaced = { 0 };
	char *k;
	keys_of(&replaced, &set->nss, OBJ_NAMESPACE);
	keys_of(&replaced, &set->pods, OBJ_POD);
	keys_of(&replaced, &set->policies, OBJ_POLICY);
	keys_of(&replaced, &set->nodes, OBJ_NODE);
	share(&set->nodes, &c->set.nodes, OBJ_NODE, &replaced);
	share(&set->nss, &c->set.nss, OBJ_NAMESPACE, &replaced);
	share(&set->pods, &c->set.pods, OBJ_POD, &replaced);
	share(&set->policies, &c->set.policies, OBJ_POLICY, &replaced);
	htab_foreach(&replaced, k) free(k);
	htab_free(&replaced);
}

struct engine *ctl_engine(const struct ctl_opts *o, struct ctl_cluster *c, const char *dir, const char *node,
			  bool quiet)
{
	struct manifest_set set = { 0 };
	const char *app_label = o->app_label ? o->app_label : APP_LABELS_DEFAULT;
	struct decode_opts d = { DECODE_AGENT, true, app_label, c ? c->ns : o->ns ? o->ns : "default" };
	struct engine_config cfg = { node, app_label, true, o->pod_cidrs, o->apiserver };
	if (dir) {
		int rc = !strcmp(dir, "-") ? ctl_load_stdin(&set, &d) : manifest_load_path(&set, dir, &d);
		if (rc < 0) {
			print_diags(stderr, &set.diags);
			manifest_set_free(&set);
			return NULL;
		}
		manifest_resolve_duplicates(&set); /* within the folder: an error naming both files */
		if (!quiet)
			print_diags(stderr, &set.diags);
		else if (set.unreadable) /* even -o json: what is missing is said */
			fprintf(stderr, "%s: %zu manifest files could not be read and are left out (agentctl check %s "
					"names them)\n", ctl_prog, set.unreadable, dir);
	}
	if (c)
		overlay(&set, c);
	manifest_assign_addresses(&set);
	struct engine *e = engine_new(&cfg);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	return e;
}
