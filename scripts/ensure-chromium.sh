#!/usr/bin/env bash
# Run before `npm test`: the dashboard test drives Debian's Chromium headless (playwright-core
# downloads no browser). Installs it when missing and this user may (root with apt-get).
set -euo pipefail
browser=${CHROMIUM_PATH:-/usr/bin/chromium}
[ -x "$browser" ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the dashboard test (once)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "the dashboard test needs Chromium: sudo apt-get install chromium (or set CHROMIUM_PATH)" >&2
exit 1
