/* agentctl dns: what DNS-aware egress learned (names, addresses, how long
 * each has left) and which groups of pods go through the DNS proxy. */
#include "ctl.h"

int cmd_dns(struct ctl_opts *o)
{
	return ctl_simple(json_pack("{s:s}", "cmd", "dns"), o->fmt);
}
