#!/bin/sh
# Runs the dashboard's browser tests (node's test runner, playwright-core
# driving Debian's chromium) against a keel binary.
# Usage: run.sh KEEL_BIN MOCK_LLM_BIN OUT_DIR [TEST_FILE...]
# Installs playwright-core into tests/browser/node_modules with `npm ci`
# once (again only when package-lock.json changes). Exits 77 (skipped) with
# one line saying why when chromium, node or npm is missing or the install
# fails (offline); screenshots and logs go to OUT_DIR/<test>/.
set -u
keel_bin=$1
mock_bin=$2
out=$3
shift 3
case $0 in
  */*) here=$(cd "${0%/*}" && pwd) ;;
  *) here=$(pwd) ;;
esac
chromium=${CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$chromium" ]; then
  echo "browser tests SKIPPED: $chromium not found; install Debian's chromium (apt-get install chromium) to run them"
  exit 77
fi
for tool in node npm; do
  if ! command -v $tool >/dev/null 2>&1; then
    echo "browser tests SKIPPED: $tool not found; install Debian's nodejs and npm (apt-get install nodejs npm) to run them"
    exit 77
  fi
done

mkdir -p "$out" || exit 1
stamp="$here/node_modules/.keel-package-lock.json"
if ! cmp -s "$here/package-lock.json" "$stamp" || [ ! -d "$here/node_modules/playwright-core" ]; then
  if ! (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error \
        --fetch-retries=1 --fetch-timeout=60000) >"$out/npm-ci.log" 2>&1; then
    tail -n 5 "$out/npm-ci.log"
    echo "browser tests SKIPPED: npm ci could not install playwright-core (offline?); see $out/npm-ci.log"
    exit 77
  fi
  cp "$here/package-lock.json" "$stamp" || exit 1
fi

# Screenshots of an earlier run would mislead: each run starts empty.
find "$out" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} + 2>/dev/null

if [ $# -eq 0 ]; then
  set -- "$here"/*.test.mjs
fi
cd "$here" || exit 1
KEEL_BIN=$keel_bin KEEL_MOCK_LLM=$mock_bin BROWSER_OUT=$out CHROMIUM=$chromium \
  node --test --test-concurrency=1 "$@"
status=$?
echo "browser tests: screenshots and logs in $out"
exit $status
