#!/bin/sh
# The demo: what `make demo` runs after building.
set -eu
build=${1:-build}
echo "== local ports: ping-pong, then a kill seen by a monitor"
"$build/examples/ping_pong" 3
