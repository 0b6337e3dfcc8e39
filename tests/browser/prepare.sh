#!/bin/sh
# Gets the browser tests' tools ready: checks for Debian's chromium, node and
# npm, and installs playwright-core into tests/browser/node_modules with
# `npm ci` (again only when package-lock.json changed).
# Usage: prepare.sh LABEL LOG_DIR
# Exits 0 when ready; 77 with one line "LABEL SKIPPED: why" when a tool is
# missing or the install fails (offline); the npm log goes to LOG_DIR.
set -u
label=$1
log_dir=$2
case $0 in
  */*) here=$(cd "${0%/*}" && pwd) ;;
  *) here=$(pwd) ;;
esac
chromium=${CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$chromium" ]; then
  echo "$label SKIPPED: $chromium not found; install Debian's chromium (apt-get install chromium) to run them"
  exit 77
fi
for tool in node npm; do
  if ! command -v $tool >/dev/null 2>&1; then
    echo "$label SKIPPED: $tool not found; install Debian's nodejs and npm (apt-get install nodejs npm) to run them"
    exit 77
  fi
done

mkdir -p "$log_dir" || exit 1
stamp="$here/node_modules/.keel-package-lock.json"
if ! cmp -s "$here/package-lock.json" "$stamp" || [ ! -d "$here/node_modules/playwright-core" ]; then
  if ! (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error \
        --fetch-retries=1 --fetch-timeout=60000) >"$log_dir/npm-ci.log" 2>&1; then
    tail -n 5 "$log_dir/npm-ci.log"
    echo "$label SKIPPED: npm ci could not install playwright-core (offline?); see $log_dir/npm-ci.log"
    exit 77
  fi
  cp "$here/package-lock.json" "$stamp" || exit 1
fi
exit 0
