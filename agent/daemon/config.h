/* The agent's cluster-wide settings: a YAML/JSON file, then flags. */
#ifndef CORRAL_CONFIG_H
#define CORRAL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct agent_config {
	char *app_label;       /* appLabels (or appLabel): the keys naming an application, a comma
				  list in order ("app,app.kubernetes.io/name") */
	char *pod_cidrs;       /* podCidrs: the cluster's pod ranges, a comma list, beside every
				  Node's spec.podCIDRs ("": those only); the world entity */
	char *apiserver_addrs; /* apiServerAddresses: the API server's endpoint addresses, a comma
				  list ("": none); the kube-apiserver entity */
	bool dns_default;      /* dnsDefault: AccessPolicy pods may reach cluster DNS (true) */
	uint32_t log_rate;     /* logRate: drop logs per second per chain (10) */
	uint32_t log_burst;    /* logBurst (20) */
	uint16_t nflog_group;  /* nflogGroup (100) */
	char *metrics_address; /* metricsAddress: host:port, "" disables ("127.0.0.1:9464") */
	uint32_t debounce_ms;  /* debounceMs: changes gathered into one transaction (20) */
	char *log_format;      /* logFormat: text | json */
	char *log_level;       /* logLevel: debug | info | warn | error */
	bool source_check;     /* sourceCheck: drop sources that do not route back via their interface (true) */
	bool deny_unexplained; /* denyUnexplainedAddresses: a new local address no pending pod explains drops
				  everything until a pod claims it (true) */
	bool revoke_flows;     /* revokeFlows: mark the conntrack entries of flows a change stops allowing,
				  whose packets the ruleset then drops (true) */
	uint32_t revoke_mark;  /* revokeMark: the conntrack mark bits of a revoked flow, set by the agent and
				  matched by its ruleset; bits no other software on the node uses
				  (DP_REVOKED_MARK, 0x00800000); taken at start only */
	uint32_t revoke_interval_ms; /* revokeIntervalMs: least time between two revocation passes, each
					reads the whole conntrack table; a pass due sooner waits (100) */
	/* DNS-aware egress (agent/daemon/dns.c) */
	uint16_t dns_proxy_port;     /* dnsProxyPort: the DNS proxy's port on the node (15053; 0: off) */
	char *dns_proxy_addresses;   /* dnsProxyAddresses: "auto" (the node's first global address per
					family) or a comma list of the node's addresses to listen on */
	char *dns_upstreams;         /* dnsUpstreams: comma list ("": the kube-dns pods) */
	char *dns_service_addresses; /* dnsServiceAddresses: the cluster DNS Service's addresses, redirected too */
	uint32_t dns_grace_s;        /* dnsGraceSeconds: added to every answer's TTL (5) */
	uint32_t dns_max_ttl_s;      /* dnsMaxTtlSeconds: longest TTL taken (86400) */
	uint32_t dns_max_per_name;   /* dnsMaxAddressesPerName: host set size (1024) */
	char *dns_forbidden;         /* dnsForbiddenRanges: comma list of CIDRs never learned */
	/* the files:DIR source's bounds (0: the defaults of kube/manifest.h) */
	uint32_t files_max_file_bytes;  /* filesMaxFileBytes (8 MiB) */
	uint32_t files_max_total_bytes; /* filesMaxTotalBytes (64 MiB) */
	uint32_t files_max_files;       /* filesMaxFiles (10000) */
	uint32_t files_max_doc_nodes;   /* filesMaxDocumentNodes (500000) */
	uint32_t files_settle_ms;       /* filesSettleMs (5000) */
	/* --source kube: drops as Events on the pod whose policy dropped them */
	bool drop_events;                /* dropEvents (true) */
	uint32_t drop_events_per_minute; /* dropEventsPerMinute: writes per pod and policy (6) */
};

#define AGENT_CONFIG_MAX_BYTES (1u << 20)

void agent_config_defaults(struct agent_config *c);
/* Reads path over the defaults (at most AGENT_CONFIG_MAX_BYTES, else
 * refused); -1 with *err naming the file, the key and the reason. */
int agent_config_load(struct agent_config *c, const char *path, char **err);
/* The same from a buffer (name for messages); the fuzz target's entry. */
int agent_config_parse(struct agent_config *c, const char *name, const char *buf, size_t len, char **err);
/* A setting given as a flag (e.g. --debounce-ms 5): 0, -1 with *err, or
 * -ENOENT when flag is not a setting's. */
int agent_config_flag(struct agent_config *c, const char *flag, const char *val, char **err);
void agent_config_flags_help(FILE *out);
void agent_config_free(struct agent_config *c);

#endif
