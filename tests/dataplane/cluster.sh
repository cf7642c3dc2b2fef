#!/bin/sh
# A small cluster made of network namespaces, for tests and the demo.
#
#   cluster.sh up PREFIX      two nodes PREFIX-n1, PREFIX-n2 joined by a veth
#                             wire; pods PREFIX-x-a ... PREFIX-z-c (namespaces
#                             x, y, z; pods a, b, c) routed with /32s
#   cluster.sh up PREFIX PID  the same, but node-1 is the network namespace
#                             of process PID (a container's: the agent's
#                             image runs there), named PREFIX-n1
#   cluster.sh down PREFIX    removes every namespace named PREFIX-*
#
# CORRAL_CLUSTER_SHAPE=bridged: the same pods and addresses behind a Linux
# bridge br0 on each node (a bridged CNI): a pod reaches the pods of its
# node directly over the bridge (on-link routes, ARP and neighbour
# discovery between pods) and the rest through br0 (169.254.1.1,
# fe80::1), which the node routes; the node's host routes to its pods
# point at br0, and the bridge hands frames to netfilter (br_netfilter).
#
# Pod N/P (N, P counted from 1) has 10.1.N.P and fd00::N:P; it lives on
# node-1 when (3(N-1) + (P-1)) is even, else on node-2 (as tests/cases
# place them). Every address exists only inside these namespaces: nothing
# is routed to the machine's own interfaces.
set -eu

cmd=${1:?usage: cluster.sh up|down PREFIX}
P=${2:?usage: cluster.sh up|down PREFIX}
NODE1_PID=${3:-}

down() {
	for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
		ip netns del "$ns" 2>/dev/null || true
	done
}

nsx() { ip netns exec "$1" sh -c "$2"; }

quiet_sysctls='sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	sysctl -qw net.ipv6.conf.all.dad_transmits=0 net.ipv6.conf.default.dad_transmits=0'

# bridged_pod NETNS NODE NAME N P I: pod I's interface on node NODE's br0
bridged_pod() {
	ip -n "$1" -b - <<EOF
addr add 10.1.$4.$5/32 dev eth0
addr add fd00::$4:$5/128 dev eth0 nodad
link set eth0 up
route add 169.254.1.1 dev eth0
route add default via 169.254.1.1 dev eth0
route add default via fe80::1 dev eth0
EOF
	j=0
	for ons in x y z; do
		for opod in a b c; do
			if [ "$j" != "$6" ] && [ $((j % 2 + 1)) = "$2" ]; then
				ip -n "$1" route add "10.1.$((j / 3 + 1)).$((j % 3 + 1))/32" dev eth0
				ip -n "$1" -6 route add "fd00::$((j / 3 + 1)):$((j % 3 + 1))/128" dev eth0
			fi
			j=$((j + 1))
		done
	done
	ip -n "$P-n$2" -b - <<EOF
link set v$3 master br0
link set v$3 up
route add 10.1.$4.$5/32 dev br0
route add fd00::$4:$5/128 dev br0
EOF
}

up() {
	down
	for n in 1 2; do
		if [ "$n" = 1 ] && [ -n "$NODE1_PID" ]; then
			ip netns attach "$P-n1" "$NODE1_PID"
		else
			ip netns add "$P-n$n"
		fi
		nsx "$P-n$n" "$quiet_sysctls
			sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0  # off in a container
			sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
			ip link set lo up"
	done
	ip -n "$P-n1" link add wire type veth peer name wire netns "$P-n2"
	ip -n "$P-n1" addr add 10.255.0.1/30 dev wire
	ip -n "$P-n2" addr add 10.255.0.2/30 dev wire
	ip -n "$P-n1" -6 addr add fd00:ff::1/64 dev wire nodad
	ip -n "$P-n2" -6 addr add fd00:ff::2/64 dev wire nodad
	ip -n "$P-n1" link set wire up
	ip -n "$P-n2" link set wire up
	ip -n "$P-n1" route add 10.1.0.0/16 via 10.255.0.2
	ip -n "$P-n2" route add 10.1.0.0/16 via 10.255.0.1
	ip -n "$P-n1" -6 route add fd00::/64 via fd00:ff::2
	ip -n "$P-n2" -6 route add fd00::/64 via fd00:ff::1
	if [ "${CORRAL_CLUSTER_SHAPE:-routed}" = bridged ]; then
		for n in 1 2; do
			ip -n "$P-n$n" link add br0 type bridge mcast_snooping 0
			ip -n "$P-n$n" addr add 169.254.1.1/32 dev br0
			ip -n "$P-n$n" addr add fe80::1/64 dev br0 nodad
			ip -n "$P-n$n" link set br0 up
			nsx "$P-n$n" "sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1"
		done
	fi
	i=0
	for ns in x y z; do
		N=$((i / 3 + 1))
		for pod in a b c; do
			p=$((i % 3 + 1))
			node=$(( i % 2 + 1 ))
			pn="$P-$ns-$pod"
			ip netns add "$pn"
			nsx "$pn" "$quiet_sysctls; ip link set lo up"
			ip -n "$P-n$node" link add "v$ns-$pod" type veth peer name eth0 netns "$pn"
			if [ "${CORRAL_CLUSTER_SHAPE:-routed}" = bridged ]; then
				bridged_pod "$pn" "$node" "$ns-$pod" "$N" "$p" "$i"
				i=$((i + 1))
				continue
			fi
			ip -n "$pn" -b - <<EOF
addr add 10.1.$N.$p/32 dev eth0
addr add fd00::$N:$p/128 dev eth0 nodad
link set eth0 up
route add 169.254.1.1 dev eth0
route add default via 169.254.1.1 dev eth0
route add default via fe80::1 dev eth0
EOF
			ip -n "$P-n$node" -b - <<EOF
addr add 169.254.1.1/32 dev v$ns-$pod
addr add fe80::1/64 dev v$ns-$pod nodad
link set v$ns-$pod up
route add 10.1.$N.$p/32 dev v$ns-$pod
route add fd00::$N:$p/128 dev v$ns-$pod
EOF
			i=$((i + 1))
		done
	done
	# Resolve neighbours now: the first IPv6 packet forwarded to an
	# unresolved neighbour can be lost, which a probe would read as a drop.
	ip netns exec "$P-n1" ping -6 -c2 -i 0.2 -W1 fd00:ff::2 >/dev/null || true
	ip netns exec "$P-n2" ping -6 -c2 -i 0.2 -W1 fd00:ff::1 >/dev/null || true
	i=0
	for ns in x y z; do
		for pod in a b c; do
			ip netns exec "$P-n$(( i % 2 + 1 ))" ping -6 -c1 -W1 "fd00::$((i / 3 + 1)):$((i % 3 + 1))" >/dev/null || true
			ip netns exec "$P-n$(( i % 2 + 1 ))" ping -c1 -W1 "10.1.$((i / 3 + 1)).$((i % 3 + 1))" >/dev/null || true
			ip netns exec "$P-$ns-$pod" ping -6 -c1 -W1 fe80::1%eth0 >/dev/null || true
			i=$((i + 1))
		done
	done
}

case "$cmd" in
up) up ;;
down) down ;;
*) echo "usage: cluster.sh up PREFIX [NODE1-PID] | down PREFIX" >&2; exit 2 ;;
esac
