#!/usr/bin/env bash
# The deployment guide's "Health Checks", runnable against a live server. Each check prints what it
# saw and what it expected; the script exits 1 if any check fails.
#
#   BASE_URL=http://localhost:3000 REDIS_URL=redis://:pass@host:6379 INSTANCES=3 scripts/health-checks.sh
#
# BASE_URL   the server (default http://localhost:3000)
# REDIS_URL  when set, also checks Redis: PING, and one connection per instance in CLIENT LIST
# INSTANCES  how many app instances share that Redis (default 1)
# SLEEP      pause between requests, in seconds (default 0.1, as in the guide)
# The rate-limit checks expect a fresh budget: run them against a server nobody else is using.
set -uo pipefail

BASE_URL=${BASE_URL:-http://localhost:3000}
INSTANCES=${INSTANCES:-1}
SLEEP=${SLEEP:-0.1}
failures=0

check() { # name, seen, expected
  if [ "$2" = "$3" ]; then
    echo "ok   $1: $2"
  else
    echo "FAIL $1: got $2, expected $3"
    failures=$((failures + 1))
  fi
}

# The status codes of a loop, as "200x100 429x10" (runs of equal codes, in order).
runs() { uniq -c | awk '{ printf "%s%sx%s", sep, $2, $1; sep = " " } END { print "" }'; }

if [ -n "${REDIS_URL:-}" ]; then
  # redis-cli 7.0 sends AUTH "" <password> for redis://:password@host and gets WRONGPASS; the
  # guide's URLs have that form, so name the default user for redis-cli. (The server reads either.)
  cli_url=$(printf '%s' "$REDIS_URL" | sed -E 's#^(rediss?://):#\1default:#')
  # redis-cli warns on stderr when the URL holds a password; the answer is on stdout.
  check "redis-cli ping" "$(redis-cli -u "$cli_url" ping 2>/dev/null)" "PONG"
  # CLIENT LIST also shows redis-cli's own connection (and any other client), so count ours by name.
  ours=$(redis-cli -u "$cli_url" CLIENT LIST 2>/dev/null | grep -c ' name=universo-rate-limit ')
  check "Redis connections named universo-rate-limit" "$ours" "$INSTANCES"
fi

# Test read limit (default: 100 requests/15min)
reads=$(for i in {1..110}; do
  curl -s -o /dev/null -w '%{http_code}\n' "$BASE_URL/api/v1/metaverses"
  sleep "$SLEEP"
done | runs)
check "110 GETs" "$reads" "200x100 429x10"

# Test write limit (default: 60 requests/15min)
writes=$(for i in {1..65}; do
  curl -s -o /dev/null -w '%{http_code}\n' -X POST "$BASE_URL/api/v1/metaverses" \
    -H "Content-Type: application/json" \
    -d '{"name":"test"}'
  sleep "$SLEEP"
done | runs)
check "65 POSTs" "$writes" "201x60 429x5"

check "GET /health" "$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/health")" "200"
check "GET /ready" "$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/ready")" "200"

exit $((failures > 0))
