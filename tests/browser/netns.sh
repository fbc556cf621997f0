#!/usr/bin/env bash
# Network namespace for the browser tests (see docs: DESIGN.md §5).
#
# Headless Chromium gathers no WebRTC ICE candidates unless some interface has a
# default route. We give it one without touching the machine's real network:
# a namespace of our own holding a veth pair whose BOTH ends live inside it,
# and a default route through the other end. Nothing can leave the namespace.
#
#   netns.sh up     create (idempotent)
#   netns.sh down   delete (idempotent)
#   netns.sh status print the namespace's addresses and routes
#
# Needs root (CI runs as root). Override the name with SEEDTAB_NETNS.
set -euo pipefail

NS="${SEEDTAB_NETNS:-seedtab-test}"
A=st0 B=st1
A_IP=10.213.0.1 B_IP=10.213.0.2

in_ns() { ip netns exec "$NS" "$@"; }

up() {
  if ! ip netns list | awk '{print $1}' | grep -qx "$NS"; then
    ip netns add "$NS"
  fi
  if ! in_ns ip link show "$A" >/dev/null 2>&1; then
    # Create the pair directly inside the namespace: neither end ever exists
    # in the root namespace.
    in_ns ip link add "$A" type veth peer name "$B"
  fi
  in_ns ip link set lo up
  in_ns ip link set "$A" up
  in_ns ip link set "$B" up
  in_ns ip addr replace "$A_IP/24" dev "$A"
  in_ns ip addr replace "$B_IP/24" dev "$B"
  in_ns ip route replace default via "$B_IP" dev "$A"
}

down() {
  if ip netns list | awk '{print $1}' | grep -qx "$NS"; then
    ip netns delete "$NS"
  fi
}

status() {
  in_ns ip -brief addr
  in_ns ip route
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
