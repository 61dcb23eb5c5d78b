#!/usr/bin/env bash
# Installs what sandpool needs on a Debian 12 host (idempotent, quiet when already done):
# the gVisor and runc runtimes, mmdebstrap for building images, and a few tools.
# Extra package names given as arguments are installed too (the tests add docker-registry, busybox-static and websocketd).
set -euo pipefail
need=()
for pkg in runsc runc mmdebstrap iproute2 nftables ca-certificates curl "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-host: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# gVisor's sentry needs many host threads; a low pids limit kills it.
if [ "$(cat /proc/sys/kernel/pid_max)" -lt 65536 ] && [ "$(id -u)" -eq 0 ]; then
  sysctl -q -w kernel.pid_max=4194304 || true
fi
