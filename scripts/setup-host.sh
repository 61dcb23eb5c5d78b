#!/usr/bin/env bash
# Installs what sandpool needs on a Debian 12 host (idempotent, quiet when already done):
# the gVisor and runc runtimes, mmdebstrap for building images, and a few tools.
# Extra package names given as arguments are installed too (the tests add docker-registry, busybox-static and websocketd).
#
# runsc comes from bookworm-backports (20240729): it writes checkpoints uncompressed, so a
# warm start restores in ~0.3 s instead of ~0.7-0.9 s with bookworm's 20221219, and
# restored sandboxes share the checkpoint's pages (see BENCHMARKS.md). An older runsc is
# upgraded; set SANDPOOL_KEEP_RUNSC=1 to keep whatever runsc is installed.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
RUNSC_MIN=20240729
runsc_version() {
  dpkg-query -W -f='${Version}' runsc 2>/dev/null | sed -n 's/^0\.0~\([0-9]\{8\}\).*/\1/p'
}
have_runsc=$(runsc_version)
if [ "${SANDPOOL_KEEP_RUNSC:-0}" != 1 ] && { [ -z "$have_runsc" ] || [ "$have_runsc" -lt "$RUNSC_MIN" ]; }; then
  echo "setup-host: installing runsc $RUNSC_MIN from bookworm-backports (found: ${have_runsc:-none})"
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports runsc >/dev/null
fi
need=()
for pkg in runsc runc mmdebstrap iproute2 nftables ca-certificates curl "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-host: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# gVisor's sentry needs many host threads; a low pids limit kills it.
if [ "$(cat /proc/sys/kernel/pid_max)" -lt 65536 ] && [ "$(id -u)" -eq 0 ]; then
  sysctl -q -w kernel.pid_max=4194304 || true
fi
