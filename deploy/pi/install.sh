#!/usr/bin/env bash
# Install the gate agent on a Raspberry Pi (Raspberry Pi OS / Debian, Node 20 already installed).
# Run from a checkout: sudo deploy/pi/install.sh
set -euo pipefail
PREFIX=/opt/ble-gates
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo)" >&2; exit 2; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { echo "Node 20 or newer is needed" >&2; exit 2; }
id gate >/dev/null 2>&1 || useradd --system --home-dir /var/lib/gate-agent --shell /usr/sbin/nologin gate
# the turnstile hook (gpioset) opens /dev/gpiochip*, which Raspberry Pi OS gives to the gpio group
if getent group gpio >/dev/null; then usermod -aG gpio gate; fi
mkdir -p "$PREFIX" /etc/gate-agent
# owned by root: the user who made the checkout must not be able to change what the service runs
rsync -a --delete --chown=root:root --exclude node_modules --exclude data --exclude .git ./ "$PREFIX/"
(cd "$PREFIX" && npm ci && npm run build && npm prune --omit=dev)
[ -f /etc/gate-agent/agent.json ] || install -m 0640 -g gate deploy/pi/agent.json /etc/gate-agent/agent.json
[ -f /etc/gate-agent/secrets.env ] || install -m 0600 /dev/null /etc/gate-agent/secrets.env
install -m 0644 deploy/systemd/gate-agent.service /etc/systemd/system/gate-agent.service
# gatectl on the PATH, reading the configuration and the data directory the agent runs with
install -m 0755 deploy/pi/gatectl /usr/local/bin/gatectl
systemctl daemon-reload
systemctl enable gate-agent
echo "edit /etc/gate-agent/agent.json (gateId, decoders) and put GATE_KEY=... in /etc/gate-agent/secrets.env,"
echo "then: sudo systemctl start gate-agent && sudo gatectl doctor"
