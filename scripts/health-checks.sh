#!/usr/bin/env bash
# The deployment guide's "Health Checks", runnable against a live server. Each check prints what it
# saw and what it expected; the last line sums up. Exits 0 when every check passed, 1 otherwise.
# docs/health-checks.md explains each check and shows the output.
#
#   BASE_URL=http://localhost:3000 REDIS_URL=redis://:pass@host:6379 INSTANCES=3 scripts/health-checks.sh
#
# BASE_URL      the server (default http://localhost:3000)
# REDIS_URL     when set, also checks Redis: PING, one connection per instance in CLIENT LIST, and
#               that the server counts in Redis (/ready says store redis)
# INSTANCES     how many app instances share that Redis (default 1)
# LIMIT_CHECKS  1 (default) runs the guide's 110 GETs and 65 POSTs; 0 skips them. They spend the
#               caller's budget for a whole window (15 minutes by default) and create 60 metaverses.
# TOKEN         an API token (not an admin's: admins are never limited) sent as a bearer token with
#               those requests, so they spend that user's budget instead of this machine's IP's
#               (needed when the server runs with AUTH_REQUIRED=true)
# READ_MAX      the server's RATE_LIMIT_READ_MAX (default 100); the loop sends 10 more
# WRITE_MAX     the server's RATE_LIMIT_WRITE_MAX (default 60); the loop sends 5 more
# SLEEP         pause between requests, in seconds (default 0.1, as in the guide)
set -uo pipefail

BASE_URL=${BASE_URL:-http://localhost:3000}
INSTANCES=${INSTANCES:-1}
LIMIT_CHECKS=${LIMIT_CHECKS:-1}
READ_MAX=${READ_MAX:-100}
WRITE_MAX=${WRITE_MAX:-60}
SLEEP=${SLEEP:-0.1}
checks=0
failures=0

check() { # name, seen, expected
  checks=$((checks + 1))
  if [ "$2" = "$3" ]; then
    echo "ok   $1: $2"
  else
    echo "FAIL $1: got ${2:-(nothing)}, expected $3"
    failures=$((failures + 1))
  fi
}

summary() {
  if [ "$failures" -eq 0 ]; then
    echo "all $checks checks passed"
  else
    echo "$failures of $checks checks failed"
  fi
  exit $((failures > 0))
}

# The status codes of a loop, as "200x100 429x10" (runs of equal codes, in order).
runs() { uniq -c | awk '{ printf "%s%sx%s", sep, $2, $1; sep = " " } END { print "" }'; }

auth=()
if [ -n "${TOKEN:-}" ]; then auth=(-H "Authorization: Bearer $TOKEN"); fi

# Liveness first: when the server does not answer, nothing else can be checked.
health=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE_URL/health")
check "GET /health" "$health" "200"
if [ "$health" != "200" ]; then
  echo "stopping: no server answers GET $BASE_URL/health"
  summary
fi

# Readiness, and where the server counts: "redis" when it shares a Redis, "memory" otherwise.
ready=$(curl -s --max-time 5 -w '\n%{http_code}' "$BASE_URL/ready")
store=$(printf '%s' "$ready" | head -n 1 | sed -nE 's/.*"store":"([a-z]+)".*/\1/p')
check "GET /ready" "$(printf '%s' "$ready" | tail -n 1), store ${store:-?}" "200, store $([ -n "${REDIS_URL:-}" ] && echo redis || echo memory)"

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

if [ "$LIMIT_CHECKS" != "0" ]; then
  # Test read limit (default: 100 requests/15min)
  reads=$(for i in $(seq $((READ_MAX + 10))); do
    curl -s -o /dev/null -w '%{http_code}\n' ${auth[@]+"${auth[@]}"} "$BASE_URL/api/v1/metaverses"
    sleep "$SLEEP"
  done | runs)
  check "$((READ_MAX + 10)) GETs" "$reads" "200x$READ_MAX 429x10"

  # Test write limit (default: 60 requests/15min)
  writes=$(for i in $(seq $((WRITE_MAX + 5))); do
    curl -s -o /dev/null -w '%{http_code}\n' ${auth[@]+"${auth[@]}"} -X POST "$BASE_URL/api/v1/metaverses" \
      -H "Content-Type: application/json" \
      -d '{"name":"test"}'
    sleep "$SLEEP"
  done | runs)
  check "$((WRITE_MAX + 5)) POSTs" "$writes" "201x$WRITE_MAX 429x5"

  case "$reads $writes" in
    *401x*) echo "hint: the server answered 401: set TOKEN to an API token of a user who is not an admin" ;;
  esac
fi

summary
