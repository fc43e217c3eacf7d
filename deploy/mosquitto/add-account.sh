#!/usr/bin/env bash
# Add (or change) a broker account: a gate (user name = its gate id) or the cloud (gate-cloud, with
# CLOUD=1). Mosquitto reads the file as its own user (uid 1883 in the eclipse-mosquitto image):
# chown 1883 PASSWD_FILE after, for the compose file's read-only mount.
#   deploy/mosquitto/add-account.sh PASSWD_FILE USER          # asks for the password
#   PASSWORD=... deploy/mosquitto/add-account.sh PASSWD_FILE USER
# The file holds salted hashes only (mosquitto_passwd). Reload the broker after (SIGHUP).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 PASSWD_FILE USER" >&2; exit 2; }
file=$1 user=$2
[[ $user =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ ]] || { echo "$user: letters, digits, '-' and '_' only (a gate id)" >&2; exit 2; }
[ "$user" != gate-cloud ] || [ "${CLOUD:-}" = 1 ] || { echo "gate-cloud is the cloud's account (it reads every gate): CLOUD=1 $0 $* to set it" >&2; exit 2; }
[ -f "$file" ] || install -m 0600 /dev/null "$file"
if [ -n "${PASSWORD:-}" ]; then
  # never on a command line (any local user can read those in /proc): the password goes into a
  # private plain file with printf (a shell builtin), which mosquitto_passwd -U hashes in place
  plain=$(mktemp) merged=$(mktemp)
  trap 'rm -f "$plain" "$merged"' EXIT
  printf '%s:%s\n' "$user" "$PASSWORD" > "$plain"
  mosquitto_passwd -U "$plain"
  { grep -v "^${user}:" "$file" || true; cat "$plain"; } > "$merged"
  cat "$merged" > "$file" # the file keeps its owner and mode
else
  mosquitto_passwd "$file" "$user"
fi
