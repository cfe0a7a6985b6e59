#!/usr/bin/env bash
# Installs Debian packages (as root), for the scripts that need them.
#
#   tests/apt-install.sh PACKAGE...
#
# Without recommended packages. A qemu-utils from backports is newer than
# the release's QEMU system emulators allow (it breaks the release's
# qemu-system-common), so when a qemu-system-* package is asked for and
# such a qemu-utils is installed, qemu-utils is taken from the release too.
set -euo pipefail
[ $# -gt 0 ] || exit 0
pin=()
if [[ " $* " == *" qemu-system-"* ]] &&
    dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q '~bpo'; then
    pin=(--allow-downgrades "qemu-utils/$(. /etc/os-release && echo "$VERSION_CODENAME")")
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" "${pin[@]}" >/dev/null
