#!/bin/sh
# A real Kubernetes control plane for tests and benchmarks: kube-apiserver
# and etcd built from their Go modules (versions in go.mod), on 127.0.0.1.
#
#   run.sh build                  build (cached) and print the binary's path
#   run.sh up DIR [FLAG...]       start etcd, kube-apiserver and a few controllers
#                                 of kube-controller-manager with their state
#                                 in DIR; FLAGs go to kube-apiserver (kept for
#                                 restart). Writes DIR/admin.kubeconfig
#                                 (client cert, cluster admin), DIR/url,
#                                 DIR/ca.crt, DIR/pki/admin.{crt,key},
#                                 DIR/pki/sa.{key,pub} (token signing key),
#                                 DIR/kubectl (kubectl as admin); logs in
#                                 DIR/*.log; prints the URL once /readyz is ok
#   run.sh down DIR               stop them all, remove what up made in DIR
#   run.sh restart DIR            stop kube-apiserver (every watch closes) and
#                                 start it again on the same etcd and port
#   run.sh compact DIR            compact etcd at its current revision (as a
#                                 kube-apiserver does: announced on
#                                 compact_rev_key first); prints the revision.
#                                 A continue token from before it gets 410 once
#                                 the API server has seen it (within 15 s)
#   run.sh load DIR FILE [N]      create the objects of a JSON List (corral-bench
#                                 --write) as cluster admin, N requests at a
#                                 time (32), namespaces first; pods get the
#                                 status their kubelet would write (status
#                                 subresource); prints the seconds it took
#   run.sh kubectl DIR ARGS...    kubectl (same release) as cluster admin
#
# Environment:
#   CORRAL_CP_CACHE        where built binaries are kept
#                          (default ~/.cache/corral-controlplane); Go's own
#                          caches stay at their defaults (go env GOCACHE GOMODCACHE)
#   CORRAL_CP_WATCH_CACHE  "off": kube-apiserver serves watches from etcd
#                          (--watch-cache=false), so that a compaction alone
#                          makes an older resourceVersion 410 at once; with
#                          the watch cache (default, as in production) a
#                          watch gets 410 when it is older than what the cache
#                          holds: after `compact` then `restart`, everything
#                          older than the compaction
#   CORRAL_CP_CONTROLLERS  the kube-controller-manager controllers up starts
#                          (default: serviceaccount, namespace, garbage
#                          collector, root CA publisher; see
#                          controllermanager.go); "none": no controller manager
#   CORRAL_CP_OWNER        a process id: the control plane stops itself when
#                          that process is gone (a test killed before its
#                          clean-up leaves nothing running)
#   CORRAL_CP_KEEP         1: down stops the processes but keeps DIR's files
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CORRAL_CP_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/corral-controlplane}
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin

die() { echo "run.sh: $*" >&2; exit 1; }

# build: one binary per content of this folder and Go version; the Go build
# cache makes a rebuild after an edit fast, and an unchanged tree is not
# even relinked. A lock keeps parallel tests from building twice.
build() {
    command -v go >/dev/null 2>&1 || die "no Go toolchain (go) on PATH"
    mkdir -p "$CACHE"
    key=$( (cd "$HERE" && cat go.mod go.sum ./*.go && go version) | sha256sum | cut -c1-16)
    bin="$CACHE/corral-controlplane-$key"
    if [ ! -x "$bin" ]; then
        k8s=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$HERE/go.mod")
        minor=$(echo "$k8s" | cut -d. -f2)
        v=""
        for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
            v="$v -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
        done
        flock "$CACHE/build.lock" sh -c '
            [ -x "$1" ] && exit 0
            echo "run.sh: building the control plane (kube-apiserver $2, etcd, kubectl); a first build takes minutes" >&2
            start=$(date +%s)
            cd "$3" && go build -buildvcs=false -o "$1.tmp" -ldflags "-s -w $4" . && mv "$1.tmp" "$1"
            # binaries of other versions of this folder (170 MB each), once a week old
            find "$(dirname "$1")" -maxdepth 1 -name "corral-controlplane-*" ! -name "$(basename "$1")" -mtime +7 -delete
            echo "run.sh: built in $(( $(date +%s) - start ))s: $1" >&2
        ' sh "$bin" "$k8s" "$HERE" "$v" >&2 || die "build failed"
    fi
    echo "$bin"
}

# ours PIDFILE BIN: the pid in PIDFILE if that process still runs BIN
ours() {
    [ -f "$1" ] || return 1
    pid=$(cat "$1")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$2" || return 1
    echo "$pid"
}

# launched PIDFILE BIN: waits (5 s at most) until the process just started
# in the background runs BIN: between fork and exec its command line is
# still this shell's, and ours() would take it for gone (a server started
# again beside the first, on a loaded machine: "port in use"); at once if
# it ended
launched() {
    pid=$(cat "$1") i=0
    while [ -d "/proc/$pid" ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$2"; do
        grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 0
        i=$((i + 1)); [ $i -lt 100 ] || return 0
        sleep 0.05
    done
}

# stop PIDFILE BIN: SIGTERM, up to 30 s to end, then SIGKILL
stop() {
    if pid=$(ours "$1" "$2"); then
        kill -TERM "$pid" 2>/dev/null || true
        i=0
        while [ -d "/proc/$pid" ] && [ $i -lt 300 ]; do
            # a zombie (our own child) has ended
            grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && break
            sleep 0.1; i=$((i + 1))
        done
        [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

start_apiserver() {
    dir=$1 bin=$2
    set --
    if [ -f "$dir/apiserver.args" ]; then
        while IFS= read -r a; do set -- "$@" "$a"; done <"$dir/apiserver.args"
    fi
    [ "${CORRAL_CP_WATCH_CACHE:-on}" = off ] && set -- --watch-cache=false "$@"
    setsid "$bin" apiserver "$dir" "$@" </dev/null >>"$dir/apiserver.log" 2>&1 &
    echo $! >"$dir/apiserver.pid"
    launched "$dir/apiserver.pid" "$bin"
}

# start_ready DIR BIN: starts kube-apiserver and waits for /readyz; a
# server that exits at once (its port briefly unavailable while the one
# before it goes, on a loaded machine) is started again, 3 times at most
start_ready() {
    n=1
    while :; do
        start_apiserver "$1" "$2"
        wait_ready "$1" "$2" && return 0
        [ $n -lt 3 ] || die "kube-apiserver exited (log: $1/apiserver.log)"
        echo "run.sh: kube-apiserver exited at start; again (attempt $((n + 1)))" >&2
        echo "--- start again $(date -u +%FT%TZ)" >>"$1/apiserver.log"
        sleep 1
        n=$((n + 1))
    done
}

# wait_ready DIR BIN: 0 once /readyz is ok; 1 if the server exited (its
# last lines on stderr); dies after 180 s
wait_ready() {
    dir=$1 bin=$2
    i=0
    while :; do
        if ! ours "$dir/apiserver.pid" "$bin" >/dev/null; then
            sleep 0.2 # let it finish writing why
            tail -n 30 "$dir/apiserver.log" >&2
            return 1
        fi
        if [ -f "$dir/url" ] && [ "$(curl -s --max-time 5 --cacert "$dir/pki/ca.crt" "$(cat "$dir/url")/readyz" 2>/dev/null)" = ok ]; then
            return 0
        fi
        i=$((i + 1))
        [ $i -lt 1800 ] || die "kube-apiserver not ready in 180 s (log: $dir/apiserver.log)"
        sleep 0.1
    done
}

[ $# -ge 1 ] || { sed -n '2,/^set -eu/p' "$0" | sed '$d' >&2; exit 2; }
cmd=$1; shift
case $cmd in
build)
    build
    exit 0 ;;
up|down|restart|compact|load|kubectl)
    [ $# -ge 1 ] || die "$cmd: DIR missing"
    mkdir -p "$1"
    dir=$(cd "$1" && pwd); shift ;;
*)
    die "unknown command $cmd" ;;
esac

case $cmd in
up)
    bin=$(build)
    ! ours "$dir/etcd.pid" "$bin" >/dev/null || die "already up in $dir"
    echo "$bin" >"$dir/bin"
    : >"$dir/apiserver.args"
    for a in "$@"; do printf '%s\n' "$a" >>"$dir/apiserver.args"; done
    printf '#!/bin/sh\nexec "%s" kubectl --kubeconfig="%s/admin.kubeconfig" "$@"\n' "$bin" "$dir" >"$dir/kubectl"
    chmod +x "$dir/kubectl"
    rm -f "$dir/etcd.url" "$dir/url"
    # Ports are chosen free (bind, close) and then taken by etcd: another
    # control plane starting at the same moment can take one in between.
    # etcd then exits at once; choose new ports and try again (3 times).
    attempt=1
    while :; do
        setsid "$bin" etcd "$dir" </dev/null >>"$dir/etcd.out" 2>&1 &
        echo $! >"$dir/etcd.pid"
        launched "$dir/etcd.pid" "$bin"
        i=0
        while [ ! -s "$dir/etcd.url" ] && ours "$dir/etcd.pid" "$bin" >/dev/null; do
            i=$((i + 1)); [ $i -lt 600 ] || die "etcd not ready in 60 s"
            sleep 0.1
        done
        [ -s "$dir/etcd.url" ] && break
        if [ $attempt -ge 3 ]; then
            cat "$dir/etcd.out" >&2; tail -n 20 "$dir/etcd.log" >&2 2>/dev/null || true
            die "etcd exited"
        fi
        echo "run.sh: etcd exited (ports taken?); new ports, attempt $((attempt + 1))" >&2
        rm -f "$dir/etcd.ports"
        [ -d "$dir/etcd" ] && [ ! -s "$dir/etcd.url" ] && rm -rf "$dir/etcd"
        attempt=$((attempt + 1))
    done
    start_ready "$dir" "$bin"
    cp "$dir/pki/ca.crt" "$dir/ca.crt"
    ctl=${CORRAL_CP_CONTROLLERS:-default}
    if [ "$ctl" != none ]; then
        [ "$ctl" = default ] && set -- || set -- "$ctl"
        setsid "$bin" controller-manager "$dir" "$@" </dev/null >>"$dir/controller-manager.log" 2>&1 &
        echo $! >"$dir/controller-manager.pid"
        launched "$dir/controller-manager.pid" "$bin"
        # the namespaces made at start get their "default" ServiceAccount
        i=0
        until "$bin" kubectl --kubeconfig="$dir/admin.kubeconfig" -n default get serviceaccount default >/dev/null 2>&1; do
            ours "$dir/controller-manager.pid" "$bin" >/dev/null ||
                { tail -n 30 "$dir/controller-manager.log" >&2; die "kube-controller-manager exited"; }
            i=$((i + 1)); [ $i -lt 300 ] || die "no default ServiceAccount after 60 s (log: $dir/controller-manager.log)"
            sleep 0.2
        done
    fi
    cat "$dir/url" ;;
down)
    bin=$(cat "$dir/bin" 2>/dev/null || echo corral-controlplane)
    stop "$dir/controller-manager.pid" "$bin"
    stop "$dir/apiserver.pid" "$bin"
    stop "$dir/etcd.pid" "$bin"
    if [ "${CORRAL_CP_KEEP:-0}" != 1 ]; then
        rm -rf "$dir/etcd" "$dir/pki"
        rm -f "$dir/etcd.url" "$dir/etcd.ports" "$dir/etcd.log" "$dir/etcd.out" "$dir/apiserver.port" \
              "$dir/apiserver.log" "$dir/apiserver.args" "$dir/controller-manager.log" "$dir/url" "$dir/ca.crt" "$dir/admin.kubeconfig" \
              "$dir/kubectl" "$dir/bin"
        rmdir "$dir" 2>/dev/null || true
    fi ;;
restart)
    bin=$(cat "$dir/bin") || die "not up in $dir"
    ours "$dir/etcd.pid" "$bin" >/dev/null || die "etcd is not running in $dir"
    stop "$dir/apiserver.pid" "$bin"
    echo "--- restart $(date -u +%FT%TZ)" >>"$dir/apiserver.log"
    start_ready "$dir" "$bin"
    cat "$dir/url" ;;
compact)
    bin=$(cat "$dir/bin") || die "not up in $dir"
    "$bin" compact "$dir" ;;
load)
    bin=$(cat "$dir/bin") || die "not up in $dir"
    [ $# -ge 1 ] || die "load: FILE missing"
    exec "$bin" load "$dir" "$@" ;;
kubectl)
    bin=$(cat "$dir/bin") || die "not up in $dir"
    exec "$bin" kubectl --kubeconfig="$dir/admin.kubeconfig" "$@" ;;
esac
