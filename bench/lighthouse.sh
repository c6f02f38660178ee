#!/usr/bin/env bash
# Lighthouse 12's accessibility score of every page of the demo and of the sign-in page (Debian's
# Chromium, mobile and desktop), and the audits that failed. Needs ./x build (and the end-to-end
# tests' npm packages, for the OpenID Provider the sign-in page needs); installs lighthouse from npm
# into target/tools/lighthouse once.
#
#   bench/lighthouse.sh [BIN]      (BIN: the server, target/debug/carbon-dash by default)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug/carbon-dash}
LH=target/tools/lighthouse
if [ ! -x "$LH/node_modules/.bin/lighthouse" ]; then
  mkdir -p "$LH" && (cd "$LH" && npm i -E --no-audit --no-fund lighthouse@12.2.3 >/dev/null)
fi
PORT=39917
SIGNIN_PORT=39918
"$BIN" serve --addr "127.0.0.1:$PORT" --site-root site >/dev/null 2>&1 &
SERVER=$!
OUT=$(mktemp -d)
node bench/idp.mjs "http://localhost:$SIGNIN_PORT/signin/callback" >"$OUT/issuer" 2>/dev/null &
IDP=$!
trap 'kill $SERVER $IDP $SIGNIN 2>/dev/null; rm -rf "$OUT"' EXIT
for _ in $(seq 1 50); do [ -s "$OUT/issuer" ] && break; sleep 0.2; done
echo secret >"$OUT/secret"
"$BIN" serve --addr "127.0.0.1:$SIGNIN_PORT" --site-root site --auth oidc --oidc-issuer "$(head -1 "$OUT/issuer")" \
  --oidc-client-id carbon-dash --oidc-client-secret-file "$OUT/secret" --public-url "http://localhost:$SIGNIN_PORT" \
  --db "$OUT/people.db" >/dev/null 2>&1 &
SIGNIN=$!
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$SIGNIN_PORT/healthz" >/dev/null && break; sleep 0.2; done
RUN=$(curl -fs "http://127.0.0.1:$PORT/api/v1/runs?limit=1" | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(r["run_id"], r["experiment_id"])')
read -r RUN_ID EXPERIMENT <<<"$RUN"
printf '%-42s %8s %8s  %s\n' page mobile desktop failed
for path in / /runs "/runs/$RUN_ID" /teams /map /regions /plan /files /data /upload "/pareto?project=bert-sst2-sweep" \
  "/experiments/$EXPERIMENT" "signin:/signin?next=%2Fruns"; do
  base="http://127.0.0.1:$PORT"
  case "$path" in signin:*) path=${path#signin:}; base="http://localhost:$SIGNIN_PORT" ;; esac
  scores=()
  failed=""
  for form in mobile desktop; do
    extra=()
    [ "$form" = desktop ] && extra=(--preset=desktop)
    CHROME_PATH=${CHROME:-/usr/bin/chromium} "$LH/node_modules/.bin/lighthouse" "$base$path" \
      --only-categories=accessibility --output=json --output-path="$OUT/r.json" --quiet "${extra[@]}" \
      --chrome-flags="--headless --no-sandbox --disable-gpu" >/dev/null 2>&1 || true
    scores+=("$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["categories"]["accessibility"]["score"]*100))' "$OUT/r.json")")
    failed+=$(python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print(" ".join(k for k,a in d["audits"].items() if a.get("scoreDisplayMode")=="binary" and a.get("score")==0))' "$OUT/r.json")" "
  done
  printf '%-42s %8s %8s  %s\n' "${path:0:42}" "${scores[0]}" "${scores[1]}" "$(echo "$failed" | tr ' ' '\n' | sort -u | tr '\n' ' ')"
done
