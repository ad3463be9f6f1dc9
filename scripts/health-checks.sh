#!/usr/bin/env bash
# The deployment guide's "Health Checks", runnable against a live server. Each check prints what it
# saw and what it expected; the last line sums up. Exits 0 when every check passed, 1 otherwise.
# docs/health-checks.md explains each check and shows the output.
#
#   BASE_URL=http://localhost:3000 REDIS_URL=redis://:pass@host:6379 INSTANCES=3 scripts/health-checks.sh
#
# BASE_URL      the server (default http://localhost:3000)
# REDIS_URL     when set, also checks Redis: PING, one connection per instance in CLIENT LIST, and
#               that the server counts in Redis (/ready says store redis). Its password reaches
#               redis-cli through REDISCLI_AUTH, never on a command line that ps would show.
# REDIS_TLS_CA  for a rediss:// REDIS_URL: the CA file redis-cli verifies the server with (as the
#               server's REDIS_TLS_CA); without it, the system's CAs
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

check() { # name, seen, expected; returns 1 when the check failed
  checks=$((checks + 1))
  if [ "$2" = "$3" ]; then
    echo "ok   $1: $2"
  else
    echo "FAIL $1: got ${2:-(nothing)}, expected $3"
    failures=$((failures + 1))
    return 1
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
# /ready is 200 also while the limiters are off Redis under the fallback or allow policy (the
# instance still serves); its body then says "ready":false, which this check reports and fails on.
ready=$(curl -s --max-time 5 -w '\n%{http_code}' "$BASE_URL/ready")
body=$(printf '%s' "$ready" | head -n 1)
store=$(printf '%s' "$body" | sed -nE 's/.*"store":"([a-z]+)".*/\1/p')
degraded=
if [[ $body == *'"ready":false'* ]]; then
  degraded=", degraded (state $(printf '%s' "$body" | sed -nE 's/.*"state":"([a-z]+)".*/\1/p'))"
fi
check "GET /ready" "$(printf '%s' "$ready" | tail -n 1), store ${store:-?}$degraded" "200, store $([ -n "${REDIS_URL:-}" ] && echo redis || echo memory)"

# %XX escapes decoded, as in a URL's user and password (the server decodes them the same way).
percent_decode() {
  local text=${1//\\/\\\\}
  printf '%b' "${text//%/\\x}"
}

if [ -n "${REDIS_URL:-}" ]; then
  # redis-cli gets the URL without its user and password, which ps would show to every user of the
  # machine: the password goes in REDISCLI_AUTH, the user in --user. Parsed in bash, so no other
  # process sees them either. (redis-cli 7.0 reads the guide's redis://:password@host as user ""
  # and gets WRONGPASS; a password alone in REDISCLI_AUTH is AUTH <password>, as the server sends.)
  cli_url=$REDIS_URL
  cli_user=
  cli_password=
  if [[ $REDIS_URL =~ ^(rediss?://)(.*)@([^@]*)$ ]]; then
    cli_url=${BASH_REMATCH[1]}${BASH_REMATCH[3]}
    userinfo=${BASH_REMATCH[2]}
    cli_user=$(percent_decode "${userinfo%%:*}")
    if [[ $userinfo == *:* ]]; then cli_password=$(percent_decode "${userinfo#*:}"); fi
  fi
  cli_args=()
  if [ -n "$cli_user" ]; then cli_args+=(--user "$cli_user"); fi
  case "$REDIS_URL" in
    rediss://*)
      cli_args+=(--tls)
      if [ -n "${REDIS_TLS_CA:-}" ]; then cli_args+=(--cacert "$REDIS_TLS_CA"); fi
      ;;
  esac
  cli_errors=$(mktemp)
  trap 'rm -f "$cli_errors"' EXIT

  # redis-cli against REDIS_URL, with what it writes to stderr kept in $cli_errors.
  redis_cli() {
    (
      if [ -n "$cli_password" ]; then export REDISCLI_AUTH=$cli_password; fi
      exec redis-cli ${cli_args[@]+"${cli_args[@]}"} -u "$cli_url" "$@"
    ) 2>"$cli_errors"
  }
  # After a failed check: the last line redis-cli wrote to stderr (why it could not answer), if any.
  cli_said() {
    local said
    said=$(tail -n 1 "$cli_errors")
    if [ -n "$said" ]; then echo "redis-cli said: $said"; fi
  }

  check "redis-cli ping" "$(redis_cli ping)" "PONG" || cli_said
  # CLIENT LIST also shows redis-cli's own connection (and any other client), so count ours by name.
  clients=$(redis_cli CLIENT LIST)
  ours=$(printf '%s\n' "$clients" | grep -c ' name=universo-rate-limit ')
  check "Redis connections named universo-rate-limit" "$ours" "$INSTANCES" || cli_said
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
