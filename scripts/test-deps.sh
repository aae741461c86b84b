#!/usr/bin/env bash
# Install the Debian packages the tests need (the list is scripts/test-deps.txt), so that the
# README's test command passes on a fresh Debian 12 machine. Run by `npm test` (pretest) and by
# .ci/run. As root, missing packages are installed with apt-get; otherwise the script names them
# and the command that installs them, and fails only when CI=true (locally the tests that need a
# missing tool skip, saying so). Set CHOKEPOINT_SKIP_TEST_DEPS=1 to skip the check altogether;
# CHOKEPOINT_TEST_DEPS_LIST names another list file (for the script's own test).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${CHOKEPOINT_SKIP_TEST_DEPS:-}" = 1 ] && exit 0
if ! command -v dpkg >/dev/null 2>&1; then
  echo "test-deps: not a Debian system (no dpkg); install the equivalents of scripts/test-deps.txt yourself" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi
list="${CHOKEPOINT_TEST_DEPS_LIST:-scripts/test-deps.txt}"
pkgs=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$list")
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "test-deps: missing Debian packages:$missing" >&2
  echo "test-deps: install them with: sudo apt-get install -y$missing   (the tests that need them skip until then)" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi
echo "test-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=600 install -y -qq $missing >/dev/null
