#!/bin/sh
# Runs the dashboard's browser tests (node's test runner, playwright-core
# driving Debian's chromium) against a keel binary.
# Usage: run.sh KEEL_BIN MOCK_LLM_BIN OUT_DIR [TEST_FILE...]
# prepare.sh checks the tools and installs playwright-core; it exits 77
# (skipped) with one line saying why when chromium, node or npm is missing.
# Screenshots and logs go to OUT_DIR/<test>/.
set -u
keel_bin=$1
mock_bin=$2
out=$3
shift 3
case $0 in
  */*) here=$(cd "${0%/*}" && pwd) ;;
  *) here=$(pwd) ;;
esac

absolute() {
  case $1 in
    /*) echo "$1" ;;
    *) echo "$(pwd)/$1" ;;
  esac
}
keel_bin=$(absolute "$keel_bin")
mock_bin=$(absolute "$mock_bin")
out=$(absolute "$out")
if [ -n "${KEEL_WEB_DIR:-}" ]; then
  KEEL_WEB_DIR=$(absolute "$KEEL_WEB_DIR")
  export KEEL_WEB_DIR
fi

sh "$here/prepare.sh" "browser tests" "$out" || exit $?

# Screenshots of an earlier run would mislead: each run starts empty.
find "$out" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} + 2>/dev/null

if [ $# -eq 0 ]; then
  set -- "$here"/*.test.mjs
fi
# Test files named relative to the caller's directory, before the cd.
for f in "$@"; do
  set -- "$@" "$(absolute "$f")"
  shift
done
cd "$here" || exit 1
KEEL_BIN=$keel_bin KEEL_MOCK_LLM=$mock_bin BROWSER_OUT=$out \
  node --test --test-concurrency=1 "$@"
status=$?
echo "browser tests: screenshots and logs in $out"
exit $status
