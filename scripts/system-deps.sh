#!/usr/bin/env bash
# Installs (as root) or names (otherwise) the Debian packages copyguard needs.
# Usage: scripts/system-deps.sh run|test
set -euo pipefail
mode=${1:-run}
# pango and fonts for the dossier PDF (a CJK font for PRC notices), openssl for RFC 3161 tokens
packages=(ffmpeg libchromaprint1 libchromaprint-tools libpango-1.0-0 libpangoft2-1.0-0
          libharfbuzz-subset0
          fonts-dejavu-core fonts-wqy-microhei openssl)
if [ "$mode" = test ]; then
  packages+=(espeak-ng sox chromium)  # chromium: the console's browser tests (Playwright)
fi
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  packages+=(python3-venv)
fi
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "copyguard needs these Debian packages: ${missing[*]}" >&2
  echo "install them with:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
