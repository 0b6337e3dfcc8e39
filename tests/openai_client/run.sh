#!/bin/sh
# Runs check.mjs (the official `openai` npm package) against keel-mock-llm.
# Usage: run.sh MOCK_LLM_BIN WORK_DIR
# Installs the package into WORK_DIR once (reused while package.json is
# unchanged). Exits 77 (skipped) when node or npm is missing or the install
# fails, e.g. offline.
set -u
mock_bin=$1
work_dir=$2
case $0 in
  */*) here=$(cd "${0%/*}" && pwd) ;;
  *) here=$(pwd) ;;
esac

if ! command -v node >/dev/null 2>&1; then
  echo "skipped: node is not installed"
  exit 77
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "skipped: npm is not installed"
  exit 77
fi

mkdir -p "$work_dir" || exit 1
if ! cmp -s "$here/package.json" "$work_dir/package.json" || [ ! -d "$work_dir/node_modules/openai" ]; then
  cp "$here/package.json" "$work_dir/package.json" || exit 1
  if ! (cd "$work_dir" && npm install --no-audit --no-fund --loglevel=error \
        --fetch-retries=1 --fetch-timeout=60000 >npm-install.log 2>&1); then
    tail -n 5 "$work_dir/npm-install.log"
    rm -f "$work_dir/package.json"
    echo "skipped: npm could not install openai (offline?)"
    exit 77
  fi
fi
cp "$here/check.mjs" "$work_dir/check.mjs" || exit 1

out="$work_dir/server.out"
# Emptied here, not by the redirection below: that runs in the background
# child, and until it does the loop would read the previous run's port.
: >"$out" || exit 1
"$mock_bin" --log "$work_dir/requests.jsonl" >"$out" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' EXIT

base_url=""
tries=0
while [ -z "$base_url" ] && [ $tries -lt 100 ]; do
  base_url=$(sed -n 's|^listening on \(http://.*\)$|\1/v1|p' "$out")
  [ -n "$base_url" ] || sleep 0.1
  tries=$((tries + 1))
done
if [ -z "$base_url" ]; then
  echo "keel-mock-llm did not start:"
  cat "$out"
  exit 1
fi

MOCK_BASE_URL=$base_url node "$work_dir/check.mjs"
