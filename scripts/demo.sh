#!/bin/sh
# The main job, as far as it exists today: build agentctl and show, on the
# example shop in deploy/examples/shop, who may talk to whom and why a call
# is dropped. (The agent enforcing this in network namespaces comes with
# the data-plane and agent issues; this script will then run it.)
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target agentctl >/dev/null
EX=deploy/examples/shop
run() { echo; echo "\$ $*"; "$@"; }
run ./build/agentctl check $EX
run ./build/agentctl matrix --from $EX --port 8080
run ./build/agentctl explain --from $EX team-shop/checkout team-pay/payments --port 8080
run ./build/agentctl explain --from $EX team-pay/payments team-ledger/ledger --port 5432
