#!/bin/sh
# corral-agent refuses bad flags and settings before doing anything, naming
# the flag or the setting and the reason (exit 2), and reads a settings
# file whole.   test-agent-config.sh CORRAL-AGENT
agent=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
refuses() { # refuses WANT ARGS...: exit 2 and WANT in the message
	want=$1; shift
	out=$("$agent" "$@" 2>&1); rc=$?
	if [ $rc -eq 2 ] && echo "$out" | grep -qF -- "$want"; then echo "ok: $want"
	else echo "FAIL: $* -> rc=$rc: $out (wanted: $want)"; fail=1; fi
}
src="--source files:$tmp --node-name n1"
refuses "--debounce-ms: must be an integer from 0 to 10000" $src --debounce-ms abc
refuses "--debounce-ms: must be an integer from 0 to 10000" $src --debounce-ms -5
refuses "--log-level: must be debug, info, warn or error" $src --log-level loud
refuses "unknown flag --frobnicate" $src --frobnicate 1
printf 'metricsAddress: "["\n' > "$tmp/c1.yaml"
refuses "metricsAddress: \"[\" is not HOST:PORT" $src --config "$tmp/c1.yaml"
printf 'metricsAddress: "127.0.0.1:99999"\n' > "$tmp/c2.yaml"
refuses "is not HOST:PORT" $src --config "$tmp/c2.yaml"
# $(NAME) in metricsAddress is the environment variable NAME (the DaemonSet's
# HOST_IP, from status.hostIP); an IPv6 address gets its brackets
printf 'metricsAddress: "$(CORRAL_TEST_UNSET):9464"\n' > "$tmp/c6.yaml"
refuses "metricsAddress: \$(CORRAL_TEST_UNSET): the environment variable CORRAL_TEST_UNSET is not set" $src --config "$tmp/c6.yaml"
HOST_IP=fd00::1 refuses "--metrics-address: \"[fd00::1]:99999\" is not HOST:PORT" $src --metrics-address '$(HOST_IP):99999'
HOST_IP=10.0.0.1 refuses "--metrics-address: \"10.0.0.1:0\" is not HOST:PORT" $src --metrics-address '$(HOST_IP):0'
# a setting past 64 KiB is still read (the file is never cut short)
{ head -c 70000 /dev/zero | tr '\0' '#'; printf '\nlogRate: 0\n'; } > "$tmp/c3.yaml"
refuses "logRate: must be an integer from 1 to 10000" $src --config "$tmp/c3.yaml"
head -c 1100000 /dev/zero | tr '\0' '#' > "$tmp/c4.yaml"
refuses "c4.yaml:" $src --config "$tmp/c4.yaml"
printf 'logRatee: 5\n' > "$tmp/c5.yaml"
refuses "logRatee: unknown setting (known: appLabels, appLabel" $src --config "$tmp/c5.yaml"
refuses "--app-labels: \"app\" is listed twice" $src --app-labels app,app
refuses "--app-labels: \"-x\" is not a valid label key" $src --app-labels app,-x
refuses "--pod-cidrs: \"10.0.0.1/8\" is not a prefix" $src --pod-cidrs 10.0.0.1/8
refuses "--apiserver-addresses: \"x\" is not an IP address" $src --apiserver-addresses 10.0.0.1,x
"$agent" --help | grep -q -- "--debounce-ms" && echo "ok: --help lists the settings' flags" || { echo "FAIL: help"; fail=1; }
[ $fail -eq 0 ] && echo "agent configuration: all passed"
exit $fail
