/* agentctl status: what the running agent holds and did last. */
#include "ctl.h"

int cmd_status(struct ctl_opts *o)
{
	return ctl_simple(json_pack("{s:s}", "cmd", "status"), o->fmt);
}
