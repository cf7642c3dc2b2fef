#!/bin/sh
# cmake --install puts what a user needs where a system looks for it: both
# binaries, kubectl-corral and kubectl_complete-corral as links to agentctl
# (kubectl finds plugins on PATH), the man pages and the bash completion.
#   test-install.sh BUILD-DIR
set -u
build=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
cmake --install "$build" --prefix "$tmp/usr" >/dev/null || { echo "FAIL: cmake --install"; exit 1; }
for f in bin/corral-agent bin/agentctl share/man/man1/agentctl.1 share/man/man8/corral-agent.8 \
	share/bash-completion/completions/agentctl share/bash-completion/completions/kubectl-corral; do
	[ -e "$tmp/usr/$f" ] && echo "ok: $f" || { echo "FAIL: $f not installed"; fail=1; }
done
for l in kubectl-corral kubectl_complete-corral; do
	[ "$(readlink "$tmp/usr/bin/$l")" = agentctl ] && echo "ok: bin/$l -> agentctl" || { echo "FAIL: bin/$l"; fail=1; }
done
"$tmp/usr/bin/kubectl-corral" --version | grep -q "^kubectl-corral " && echo "ok: kubectl-corral runs as the plugin" \
	|| { echo "FAIL: kubectl-corral --version"; fail=1; }
if command -v man >/dev/null 2>&1; then
	MANPATH="$tmp/usr/share/man" man -P cat agentctl 2>/dev/null | grep -q "kubectl corral" && echo "ok: man agentctl" \
		|| { echo "FAIL: man agentctl"; fail=1; }
fi
exit $fail
