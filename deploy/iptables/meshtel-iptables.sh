#!/usr/bin/env bash
# Redirects a pod's TCP traffic through meshtel-proxy, as Istio's init container does.
#
#   meshtel-iptables.sh [setup|clean]        (default: setup; needs CAP_NET_ADMIN, i.e. root)
#
# Run it in the pod's network namespace before the app starts (an init container, or
# `ip netns exec <ns> deploy/iptables/meshtel-iptables.sh`). It installs, in the nat table:
#
#   PREROUTING -p tcp → MESHTEL_INBOUND: inbound connections to any port but the excluded ones
#                       are redirected to the proxy's inbound listener (INBOUND_PORT).
#   OUTPUT     -p tcp → MESHTEL_OUTPUT:  connections the app opens are redirected to the proxy's
#                       outbound listener (OUTBOUND_PORT), except those of the proxy itself
#                       (PROXY_UID / PROXY_GID), those to 127.0.0.1, and excluded ports/ranges.
#
# The proxy then runs with inbound.transparent and outbound.transparent set to true, as the user
# PROXY_UID, and recovers each connection's original destination with SO_ORIGINAL_DST.
# `clean` removes everything `setup` installed; `setup` first cleans, so it can be re-run.
#
# Settings (environment variables, with Istio's defaults):
#   PROXY_UID=1337                 the user the proxy runs as (its traffic is never redirected)
#   PROXY_GID=1337                 the proxy's group, matched too
#   INBOUND_PORT=15006             inbound.listen's port
#   OUTBOUND_PORT=15001            outbound.listen's port
#   INBOUND_PORTS_INCLUDE=*        "*" or a comma list of ports to capture inbound
#   INBOUND_PORTS_EXCLUDE=15000,15006,15001,15090,15020,15021
#                                  inbound ports left alone (admin, the listeners themselves)
#   OUTBOUND_IP_RANGES_EXCLUDE=    comma list of CIDRs the app reaches directly
#   OUTBOUND_PORTS_EXCLUDE=        comma list of destination ports the app reaches directly
#   IPTABLES=iptables              the iptables command (ip6tables for IPv6)
set -euo pipefail

mode="${1:-setup}"
PROXY_UID="${PROXY_UID:-1337}"
PROXY_GID="${PROXY_GID:-1337}"
INBOUND_PORT="${INBOUND_PORT:-15006}"
OUTBOUND_PORT="${OUTBOUND_PORT:-15001}"
INBOUND_PORTS_INCLUDE="${INBOUND_PORTS_INCLUDE:-*}"
INBOUND_PORTS_EXCLUDE="${INBOUND_PORTS_EXCLUDE:-15000,15006,15001,15090,15020,15021}"
OUTBOUND_IP_RANGES_EXCLUDE="${OUTBOUND_IP_RANGES_EXCLUDE:-}"
OUTBOUND_PORTS_EXCLUDE="${OUTBOUND_PORTS_EXCLUDE:-}"
IPTABLES="${IPTABLES:-iptables}"

nat() { "$IPTABLES" -w -t nat "$@"; }

clean() {
  nat -D PREROUTING -p tcp -j MESHTEL_INBOUND 2>/dev/null || true
  nat -D OUTPUT -p tcp -j MESHTEL_OUTPUT 2>/dev/null || true
  for chain in MESHTEL_INBOUND MESHTEL_IN_REDIRECT MESHTEL_OUTPUT MESHTEL_REDIRECT; do
    nat -F "$chain" 2>/dev/null || true
    nat -X "$chain" 2>/dev/null || true
  done
}

split() { tr ',' '\n' <<<"$1" | sed '/^$/d'; }

setup() {
  clean
  for chain in MESHTEL_INBOUND MESHTEL_IN_REDIRECT MESHTEL_OUTPUT MESHTEL_REDIRECT; do
    nat -N "$chain"
  done
  nat -A MESHTEL_IN_REDIRECT -p tcp -j REDIRECT --to-ports "$INBOUND_PORT"
  nat -A MESHTEL_REDIRECT -p tcp -j REDIRECT --to-ports "$OUTBOUND_PORT"

  # Inbound: everything but the excluded ports, or only the listed ones.
  nat -A PREROUTING -p tcp -j MESHTEL_INBOUND
  if [ "$INBOUND_PORTS_INCLUDE" = "*" ]; then
    nat -A MESHTEL_INBOUND -p tcp --dport 22 -j RETURN
    while read -r port; do
      nat -A MESHTEL_INBOUND -p tcp --dport "$port" -j RETURN
    done < <(split "$INBOUND_PORTS_EXCLUDE")
    nat -A MESHTEL_INBOUND -p tcp -j MESHTEL_IN_REDIRECT
  else
    while read -r port; do
      nat -A MESHTEL_INBOUND -p tcp --dport "$port" -j MESHTEL_IN_REDIRECT
    done < <(split "$INBOUND_PORTS_INCLUDE")
  fi

  # Outbound.
  nat -A OUTPUT -p tcp -j MESHTEL_OUTPUT
  # The app calling its own pod address through loopback: treat it as inbound.
  nat -A MESHTEL_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner "$PROXY_UID" \
    -j MESHTEL_IN_REDIRECT
  # The proxy's own connections go where they were going.
  nat -A MESHTEL_OUTPUT -m owner --uid-owner "$PROXY_UID" -j RETURN
  nat -A MESHTEL_OUTPUT -m owner --gid-owner "$PROXY_GID" -j RETURN
  nat -A MESHTEL_OUTPUT -d 127.0.0.1/32 -j RETURN
  while read -r range; do
    nat -A MESHTEL_OUTPUT -d "$range" -j RETURN
  done < <(split "$OUTBOUND_IP_RANGES_EXCLUDE")
  while read -r port; do
    nat -A MESHTEL_OUTPUT -p tcp --dport "$port" -j RETURN
  done < <(split "$OUTBOUND_PORTS_EXCLUDE")
  nat -A MESHTEL_OUTPUT -j MESHTEL_REDIRECT
}

case "$mode" in
  setup) setup ;;
  clean) clean ;;
  *)
    echo "usage: $0 [setup|clean]" >&2
    exit 2
    ;;
esac
