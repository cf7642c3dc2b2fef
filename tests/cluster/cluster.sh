#!/bin/sh
# A real Kubernetes node on this machine, in a network namespace of its
# own: the control plane of tests/controlplane (kube-apiserver, etcd,
# kube-controller-manager), kube-scheduler, a kubelet, kube-proxy in
# nftables mode (all from the same k8s.io/kubernetes release, go.mod),
# containerd (Debian's, its own socket and state under DIR, CRI enabled),
# the CNI bridge, host-local and loopback plugins (Debian's
# containernetworking-plugins), and the pause and agnhost images built here
# and imported under the names the e2e suite expects.
#
#   cluster.sh up DIR        bring it up (returns once every node is Ready);
#                            writes DIR/kubeconfig (cluster admin) and
#                            DIR/kubectl (kubectl in node-1's namespace)
#   cluster.sh down DIR      stop everything, remove what up made (the pods'
#                            containers and namespaces, mounts, cgroups, the
#                            nodes' network namespaces, DIR); also after a failed up
#   cluster.sh kubectl DIR ARGS...   kubectl as cluster admin
#   cluster.sh exec DIR [-n N] CMD...  CMD in node-N's network namespace
#                            (default node-1)
#   cluster.sh deploy DIR    corral as a user deploys it: deploy/Dockerfile
#                            built (local bases, tests/deploy/base-images.sh),
#                            imported into every node's containerd under the
#                            DaemonSet's image name, then kubectl apply of
#                            deploy/crd, deploy/rbac.yaml and
#                            deploy/daemonset.yaml, unchanged; returns once
#                            the agent's pod of every node is Ready
#   cluster.sh with DIR CMD [ARGS...]
#                            up, deploy, then CMD DIR ARGS..., and down
#                            however it ends (CORRAL_CLUSTER_KEEP=1 keeps it)
#   cluster.sh e2e DIR [FOCUS [SKIP]]
#                            the upstream e2e binary against it (see e2e.sh)
#
# Nodes: CORRAL_CLUSTER_NODES=2 (default) or 1. Node N (1 or 2) is the
# network namespace ${CORRAL_NETNS_TAG}corral-nodeN with its own kubelet
# (cgroup root corral-${CORRAL_NETNS_TAG}nodeN, root folder, pod logs),
# containerd (socket, root, state), kube-proxy and CNI bridge; node-1 also
# runs the control plane and kube-scheduler. Node-1's files are DIR/*,
# node-2's DIR/node-2/*.
# Addresses (only inside the nodes' namespaces; nothing is routed out of
# them, they have no default route): node-N 10.99.0.N/24 on eth0, a veth
# whose other end is node-2's eth0 (the wire between the two nodes) or,
# with one node, wire0 in node-1's namespace (the kernel has no dummy
# links); pods 10.244.N.0/24 on the node's bridge cni0 (gateway .1), each
# node routing the other's pod range via the other's address (also the
# Nodes' spec.podCIDRs); Services 10.96.0.0/16. The API server listens on
# node-1's address: node-2's kubelet and kube-proxy reach it through the
# wire (server name "kubernetes": its certificate names 127.0.0.1 and the
# Service's address, not the node's).
# Environment: CORRAL_NETNS_TAG prefixes the namespaces' names (parallel
# runs); CORRAL_CLUSTER_CACHE, CORRAL_CP_CACHE: see build.sh and run.sh.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUN_SH=$REPO/tests/controlplane/run.sh
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
CLUSTER_CIDR=10.244.0.0/16
TUNABLES="vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes"

die() { echo "cluster.sh: $*" >&2; exit 1; }
log() { echo "cluster.sh: $*" >&2; }

[ $# -ge 2 ] || { sed -n '2,/^set -eu/p' "$0" | sed '$d' >&2; exit 2; }
cmd=$1; dir=$2; shift 2
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# nodes: how many (the number up was asked for, kept in DIR/nodes)
nodes() {
    if [ -s "$dir/nodes" ]; then cat "$dir/nodes"; else echo "${CORRAL_CLUSTER_NODES:-2}"; fi
}
# node N: sets the variables of node-N: NODE (its name), NS (network
# namespace), CG (the kubelet's cgroup root), ND (its folder), NODE_IP,
# POD_CIDR, POD_GW, PFX (its certificates' and kubeconfigs' prefix in DIR)
node() {
    NODE=node-$1
    NS=${CORRAL_NETNS_TAG:-}corral-node$1
    CG=corral-${CORRAL_NETNS_TAG:-}node$1
    if [ "$1" = 1 ]; then ND=$dir PFX=""; else ND=$dir/node-$1 PFX=node-$1-; fi
    NODE_IP=10.99.0.$1
    POD_CIDR=10.244.$1.0/24
    POD_GW=10.244.$1.1
}
node 1
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }

# ours PIDFILE: the pid in PIDFILE if that process still runs with DIR in
# its command line
ours() {
    [ -f "$1" ] || return 1
    pid=$(cat "$1")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir" || return 1
    echo "$pid"
}

# stop PIDFILE: SIGTERM, up to 20 s, then SIGKILL
stop() {
    if pid=$(ours "$1"); then
        kill -TERM "$pid" 2>/dev/null || true
        i=0
        while [ -d "/proc/$pid" ] && [ $i -lt 200 ]; do
            grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && break
            sleep 0.1; i=$((i + 1))
        done
        [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

# start NAME CMD...: CMD in the current node's namespace (node N), in the
# background, its own session, output to ND/NAME.log, pid in ND/NAME.pid
start() {
    name=$1; shift
    setsid nsenter --net="/run/netns/$NS" "$@" </dev/null >>"$ND/$name.log" 2>&1 &
    echo $! >"$ND/$name.pid"
}

# wait_for WHAT SECONDS CMD...: until CMD succeeds
wait_for() {
    what=$1 secs=$2; shift 2
    i=0
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt $((secs * 5)) ] || die "$what: not within ${secs}s (logs in $dir)"
        sleep 0.2
    done
}

kubectl() { "$dir/kubectl" "$@"; }

# cert NAME CN [O [SERVER]]: a client certificate signed by the control
# plane's CA, and a kubeconfig with it (DIR/NAME.kubeconfig) for the API
# server at SERVER (default: its URL in node-1's namespace; another node
# names node-1's address, and the server's name in its certificate)
cert() {
    name=$1 cn=$2 org=${3:-} server=${4:-}
    pki=$dir/cp/pki
    subj="/CN=$cn"
    [ -n "$org" ] && subj="/O=$org$subj"
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/pki/$name.key" 2>/dev/null
    openssl req -new -key "$dir/pki/$name.key" -subj "$subj" -out "$dir/pki/$name.csr" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n' >"$dir/pki/client.ext"
    openssl x509 -req -in "$dir/pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
        -days 30 -extfile "$dir/pki/client.ext" -out "$dir/pki/$name.crt" 2>/dev/null
    cat >"$dir/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: corral-node
  cluster: {server: "${server:-$(cat "$dir/cp/url")}", certificate-authority: "$pki/ca.crt"${server:+, tls-server-name: kubernetes}}
users:
- name: $name
  user: {client-certificate: "$dir/pki/$name.crt", client-key: "$dir/pki/$name.key"}
contexts:
- name: corral-node
  context: {cluster: corral-node, user: $name}
current-context: corral-node
EOF
}

# images OUT: the pause and agnhost images (names and tags from the e2e
# suite's manifest, test/utils/image/manifest.go) as one docker-save
# tarball, OUT/images.tar, made once per build folder
images() {
    out=$1
    [ -s "$out/images.tar" ] && return 0
    k8sdir=$(cd "$HERE" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
    m=$k8sdir/test/utils/image/manifest.go
    agn=$(sed -n 's/.*configs\[Agnhost\] = Config{list.PromoterE2eRegistry, "agnhost", "\([^"]*\)"}.*/\1/p' "$m")
    pause=$(sed -n 's/.*configs\[Pause\] = Config{list.GcRegistry, "pause", "\([^"]*\)"}.*/\1/p' "$m")
    [ -n "$agn" ] && [ -n "$pause" ] || die "image tags not found in $m"
    tmp=$(mktemp -d /tmp/corral-images-XXXXXX)
    mkdir "$tmp/pause" "$tmp/agnhost"
    cc -std=gnu11 -Os -static -o "$tmp/pause/pause" "$HERE/pause/pause.c"
    printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$tmp/pause/Dockerfile"
    cp "$out/agnhost" "$tmp/agnhost/agnhost"
    # agnhost as the upstream image runs it: /agnhost, entrypoint agnhost,
    # default command pause; on the local distroless stand-in (glibc, CA
    # certificates, /etc/passwd; no shell), which is all the NetworkPolicy
    # suite needs (porter serves, connect probes)
    set -- $(sh "$REPO/tests/deploy/base-images.sh")
    printf 'FROM %s\nCOPY agnhost /agnhost\nENTRYPOINT ["/agnhost"]\nCMD ["pause"]\n' "$2" >"$tmp/agnhost/Dockerfile"
    docker build -q -t "registry.k8s.io/pause:$pause" "$tmp/pause" >/dev/null
    docker build -q -t "registry.k8s.io/e2e-test-images/agnhost:$agn" "$tmp/agnhost" >/dev/null
    docker save -o "$out/images.tar.tmp" "registry.k8s.io/pause:$pause" "registry.k8s.io/e2e-test-images/agnhost:$agn"
    echo "registry.k8s.io/pause:$pause" >"$out/pause-image"
    mv "$out/images.tar.tmp" "$out/images.tar"
    rm -rf "$tmp"
}

# ctr_ ARGS: ctr on the current node's containerd
ctr_() { ctr --address "$ND/containerd/containerd.sock" --namespace k8s.io "$@"; }

up() {
    n=$(nodes)
    echo "$n" >"$dir/nodes"
    start_t=$(date +%s)
    out=$("$HERE/build.sh" node agnhost)
    cpbin=$("$RUN_SH" build)
    images "$out"
    log "binaries ready in $(( $(date +%s) - start_t ))s"
    echo "$out" >"$dir/bin"
    mkdir -p "$dir/pki"

    # the nodes' network namespaces: lo, eth0 with the node's address (the
    # two ends of one veth: the wire; with one node, its other end wire0
    # stays in node-1's namespace), forwarding, bridged IPv4 through the IP
    # hooks (kube-proxy's DNAT and corral's forward chain see traffic
    # between two pods of one node), the other node's pod range through
    # the wire
    for i in $(seq 1 "$n"); do
        node "$i"
        ip netns add "$NS"
        in_ns ip link set lo up
    done
    node 1
    if [ "$n" = 2 ]; then
        in_ns ip link add eth0 type veth peer name eth0 netns "${CORRAL_NETNS_TAG:-}corral-node2"
    else
        in_ns ip link add eth0 type veth peer name wire0
        in_ns ip link set wire0 up
    fi
    for i in $(seq 1 "$n"); do
        node "$i"
        in_ns ip addr add "$NODE_IP/24" dev eth0
        in_ns ip link set eth0 up
        # Service addresses need a route for the first lookup of a
        # connection from the node itself (a hostNetwork pod such as
        # corral's) before kube-proxy's DNAT rewrites it; through eth0,
        # towards the other node at most
        in_ns ip route add 10.96.0.0/16 dev eth0 src "$NODE_IP"
        for j in $(seq 1 "$n"); do
            [ "$j" = "$i" ] || in_ns ip route add "10.244.$j.0/24" via "10.99.0.$j" dev eth0
        done
        in_ns sysctl -qw net.ipv4.ip_forward=1
        in_ns sysctl -qw net.bridge.bridge-nf-call-iptables=1
        in_ns sysctl -qw net.bridge.bridge-nf-call-ip6tables=1
    done
    node 1

    # the control plane in node-1's namespace: the API server on every
    # address of that node (its own namespace only), advertised at the
    # node's address (the "kubernetes" Service's endpoint, what pods reach
    # through kube-proxy), and with a client certificate towards the kubelets
    CORRAL_CP_CONTROLLERS=serviceaccount-controller,namespace-controller,garbage-collector-controller,root-ca-certificate-publisher-controller,endpoints-controller,endpointslice-controller,endpointslice-mirroring-controller,replicaset-controller,deployment-controller,daemonset-controller,statefulset-controller,pod-garbage-collector-controller,node-lifecycle-controller \
        in_ns "$RUN_SH" up "$dir/cp" --bind-address=0.0.0.0 --advertise-address="$NODE_IP" \
        --endpoint-reconciler-type=lease --kubelet-preferred-address-types=InternalIP \
        --kubelet-client-certificate="$dir/cp/pki/admin.crt" --kubelet-client-key="$dir/cp/pki/admin.key" >/dev/null
    cp "$dir/cp/admin.kubeconfig" "$dir/kubeconfig"
    printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s "%s" kubectl --kubeconfig="%s" "$@"\n' "$NS" "$cpbin" "$dir/kubeconfig" >"$dir/kubectl"
    chmod +x "$dir/kubectl"
    cert scheduler system:kube-scheduler
    port=$(sed -n 's|^https://127.0.0.1:\([0-9]*\)$|\1|p' "$dir/cp/url")
    [ -n "$port" ] || die "API server URL not understood: $(cat "$dir/cp/url")"

    # the kubelet sets a few kernel tunables machine-wide as on any node
    # (vm.overcommit_memory=1, kernel.panic=10, kernel.panic_on_oops=1...):
    # kept here before the first kubelet starts, put back by down
    for k in $TUNABLES; do echo "$k $(cat "/proc/sys/$k")"; done >"$dir/tunables.saved"
    for i in $(seq 1 "$n"); do
        node "$i"
        server=""
        [ "$i" = 1 ] || server="https://10.99.0.1:$port"
        node_up "$server"
    done
    node 1
    start scheduler "$out/corral-node" scheduler --kubeconfig="$dir/scheduler.kubeconfig" \
        --authentication-kubeconfig="$dir/scheduler.kubeconfig" --authorization-kubeconfig="$dir/scheduler.kubeconfig" \
        --leader-elect=false --secure-port=0
    for i in $(seq 1 "$n"); do
        node "$i"
        wait_for "node $NODE Ready" 180 sh -c "\"$dir/kubectl\" get node $NODE -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
        # the node's pod range, as the node IPAM controller of a cluster
        # with --allocate-node-cidrs would set it (the agents read it)
        kubectl patch node "$NODE" --type merge -p "{\"spec\":{\"podCIDR\":\"$POD_CIDR\",\"podCIDRs\":[\"$POD_CIDR\"]}}" >/dev/null
    done
    log "$n node(s) Ready in $(( $(date +%s) - start_t ))s (kubectl: $dir/kubectl)"
}

# node_up [SERVER]: containerd, the kubelet and kube-proxy of the current
# node (see node), talking to the API server at SERVER (default node-1's
# local URL)
node_up() {
    server=${1:-}
    mkdir -p "$ND/cni/net.d" "$ND/containerd" "$ND/kubelet" "$ND/pods"
    cert "${PFX}kubelet" "system:node:$NODE" system:nodes "$server"
    cert "${PFX}kube-proxy" system:kube-proxy "" "$server"

    # containerd: its own root, state, socket; CRI with the CNI plugins of
    # Debian and this node's CNI configuration; cgroupfs as the kubelet
    sock=$ND/containerd/containerd.sock
    pause_image=$(cat "$out/pause-image")
    cat >"$ND/containerd/config.toml" <<EOF
version = 2
root = "$ND/containerd/root"
state = "$ND/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$ND/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # the pods' network namespaces under DIR, not in the machine's /var/run/netns
  netns_mounts_under_state_dir = true
  # no lower OOM score than containerd's own: this machine withholds
  # CAP_SYS_RESOURCE (the sandbox's -998 would make runc fail)
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$ND/cni/net.d"
    max_conf_num = 1
EOF
    cat >"$ND/cni/net.d/10-corral-node.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "corral-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$ND/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GW"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
    start containerd containerd --config "$ND/containerd/config.toml"
    wait_for "containerd of $NODE" 60 ctr_ version
    ctr_ images import "$out/images.tar" >/dev/null

    # the kubelet: cgroupfs under a cgroup root of its own, client
    # certificates from the API server (the API server's admin cert is
    # allowed, nothing else), no swap check, no eviction on this shared
    # disk, the pods' logs in its own folder (a kubelet removes the log
    # folders of pods it does not know: two nodes must not share one)
    for c in /sys/fs/cgroup/*/; do
        [ -f "$c/cgroup.procs" ] && [ ! -f "$c/cgroup.subtree_control" ] && mkdir -p "$c$CG"
    done
    cat >"$ND/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$dir/cp/pki/ca.crt"}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$sock
cgroupDriver: cgroupfs
cgroupRoot: /$CG
failCgroupV1: false
failSwapOn: false
clusterDomain: cluster.local
resolvConf: ""
registerNode: true
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 110
podCIDR: $POD_CIDR
podLogsDir: $ND/pods
EOF
    start kubelet "$out/corral-node" kubelet --config="$ND/kubelet/config.yaml" \
        --kubeconfig="$dir/${PFX}kubelet.kubeconfig" --root-dir="$ND/kubelet" --cert-dir="$ND/pki/kubelet" \
        --hostname-override="$NODE" --node-ip="$NODE_IP" --v=1
    start kube-proxy "$out/corral-node" kube-proxy --kubeconfig="$dir/${PFX}kube-proxy.kubeconfig" \
        --hostname-override="$NODE" --proxy-mode=nftables --cluster-cidr="$CLUSTER_CIDR" \
        --metrics-bind-address=127.0.0.1:10249 --healthz-bind-address=127.0.0.1:10256 \
        --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0
}

# node_down: stops the current node's kube-proxy, kubelet, containerd and
# its shims; removes its network namespace and cgroups
node_down() {
    stop "$ND/kube-proxy.pid"
    stop "$ND/kubelet.pid"
    # what is left in containerd: tasks killed, containers removed (their
    # network namespaces are mounts under DIR, removed below)
    if ours "$ND/containerd.pid" >/dev/null; then
        for c in $(ctr_ containers ls -q 2>/dev/null); do
            ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
        done
        sleep 1
        for c in $(ctr_ containers ls -q 2>/dev/null); do
            ctr_ tasks delete -f "$c" >/dev/null 2>&1 || true
            ctr_ containers delete "$c" >/dev/null 2>&1 || true
        done
    fi
    stop "$ND/containerd.pid"
    # shims of this containerd that outlived it (by pid, from their
    # command line naming its socket)
    for p in /proc/[0-9]*; do
        tr "\\0" " " 2>/dev/null <"$p/cmdline" | grep -qF -- "$ND/containerd/" && kill -KILL "${p#/proc/}" 2>/dev/null || true
    done
}

down() {
    # the pods first, through the kubelets (the runtime then removes their
    # network namespaces), if one still runs
    if ours "$dir/kubelet.pid" >/dev/null && [ -x "$dir/kubectl" ]; then
        timeout 60 "$dir/kubectl" delete pods --all --all-namespaces --grace-period=0 --force --wait=true >/dev/null 2>&1 || true
    fi
    stop "$dir/scheduler.pid"
    # every node up made (DIR/nodes; CORRAL_CLUSTER_NODES when it is gone)
    n=$(nodes)
    for i in $(seq "$n" -1 1); do
        node "$i"
        node_down
    done
    [ -d "$dir/cp" ] && "$RUN_SH" down "$dir/cp" || true
    # mounts under DIR (rootfs, volumes), deepest first
    awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    if [ -f "$dir/tunables.saved" ]; then
        while read -r k v; do echo "$v" >"/proc/sys/$k" 2>/dev/null || true; done <"$dir/tunables.saved"
    fi
    for i in $(seq "$n" -1 1); do
        node "$i"
        [ -e "/run/netns/$NS" ] && ip netns delete "$NS" 2>/dev/null || true
        for c in /sys/fs/cgroup/*/"$CG"; do
            [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
        done
    done
    rm -rf "$dir"
}

# deploy: corral built into its image and deployed by deploy/'s manifests
deploy() {
    [ -x "$dir/kubectl" ] || die "not up in $dir"
    t=$(date +%s)
    # shellcheck disable=SC2046
    set -- $(sh "$REPO/tests/deploy/base-images.sh")
    tag=corral-agent:node${CORRAL_NETNS_TAG:+-$CORRAL_NETNS_TAG}
    docker build -q --network host --build-arg "BUILD_BASE=$1" --build-arg "RUN_BASE=$2" \
        -f "$REPO/deploy/Dockerfile" -t "$tag" "$REPO" >/dev/null || die "docker build of deploy/Dockerfile failed"
    image=$(awk '$1 == "image:" { print $2; exit }' "$REPO/deploy/daemonset.yaml")
    docker save -o "$dir/agent-image.tar" "$tag"
    for i in $(seq 1 "$(nodes)"); do
        node "$i"
        ctr_ images import "$dir/agent-image.tar" >/dev/null
        # the name the DaemonSet asks for (its pull policy: IfNotPresent)
        ctr_ images tag --force "docker.io/library/$tag" "$image" >/dev/null
    done
    rm -f "$dir/agent-image.tar"
    log "image $image built and imported in $(( $(date +%s) - t ))s"
    kubectl apply -f "$REPO/deploy/crd" -f "$REPO/deploy/rbac.yaml" -f "$REPO/deploy/daemonset.yaml" >/dev/null
    kubectl -n corral-system rollout status daemonset/corral-agent --timeout=180s >/dev/null ||
        { kubectl -n corral-system describe pods >&2; die "corral-agent not ready"; }
    log "corral deployed in $(( $(date +%s) - t ))s"
}

case $cmd in
up)
    # another cluster's namespaces are never touched (down would remove them)
    n=$(nodes)
    case $n in 1|2) ;; *) die "CORRAL_CLUSTER_NODES=$n: 1 or 2" ;; esac
    for i in $(seq 1 "$n"); do
        node "$i"
        [ ! -e "/run/netns/$NS" ] || die "network namespace $NS exists: cluster.sh down the cluster that made it first"
    done
    # a failed up leaves nothing behind (up-steps: a process of its own, so
    # that set -e stops it at the first error)
    if ! "$0" up-steps "$dir"; then
        log "up failed; logs:"
        for f in "$dir"/*.log "$dir"/node-*/*.log "$dir"/cp/*.log; do
            [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
        done
        [ "${CORRAL_CLUSTER_KEEP:-0}" = 1 ] || down
        exit 1
    fi ;;
up-steps) up ;;
deploy) deploy ;;
down) down ;;
kubectl) exec "$dir/kubectl" "$@" ;;
e2e) exec "$HERE/e2e.sh" "$dir" "$@" ;;
with)
    # up, deploy, CMD DIR ARGS..., and down however it ends
    [ $# -ge 1 ] || die "with DIR CMD [ARGS...]"
    with_down() {
        [ "${CORRAL_CLUSTER_KEEP:-0}" = 1 ] && { log "cluster kept in $dir"; return; }
        t=$(date +%s)
        "$0" down "$dir"
        echo "cluster.sh: down in $(( $(date +%s) - t ))s"
    }
    trap with_down EXIT
    trap 'exit 143' TERM INT HUP
    t=$(date +%s)
    "$0" up "$dir"
    echo "cluster.sh: cluster up in $(( $(date +%s) - t ))s"
    "$0" deploy "$dir" # (says how long it took)
    c=$1
    shift
    "$c" "$dir" "$@" ;;
exec)
    if [ "${1:-}" = -n ]; then node "$2"; shift 2; fi
    exec nsenter --net="/run/netns/$NS" "$@" ;;
*) die "unknown command $cmd" ;;
esac
