#!/bin/sh
# Install the Debian packages listed in scripts/deps.txt that are missing.
# Does nothing (and needs no network) when everything is already there.
#
#   sh scripts/install-deps.sh [GROUP...]
#
# Lines "GROUP: package" belong to an optional group and are installed only
# when the group is named (`make fuzz` names "fuzz"); plain lines always.
set -eu
here=$(dirname "$0")
missing=""
for pkg in $(grep -v '^#' "$here/deps.txt" | grep -v '^$' | while read -r a b; do
                 case $a in
                 *:) for g in "$@"; do [ "$a" = "$g:" ] && echo "$b"; done ;;
                 *) echo "$a" ;;
                 esac
             done); do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $pkg"
    fi
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
