#!/bin/bash
# The design's deploy flow as one bash script over one `ssh` session (bench/run.py runs it for comparison):
# the same remote steps as `publicworks deploy` — lock, pull, migrate, start, health, the same wait for
# Caddy's word (its metric reads 0, then 1), stop the old color, state, history — without public-works.
# Usage (on the VPS): design_flow.sh VERSION NEW_COLOR OLD_COLOR NEW_PORT
set -euo pipefail
VERSION=$1 NEW=$2 OLD=$3 PORT=$4
exec 200>/home/deploy/.publicworks/design-flow.lock
flock -n 200
cd /home/deploy/civic-observer
export IMAGE_TAG=$VERSION
compose() { docker compose --project-directory "$PWD" -p civic-observer -f docker-compose.production-base.yml -f "docker-compose.$1.yml" "${@:2}" </dev/null; }  # stdin holds this script
gauge() { busybox wget -q -O - http://localhost:2019/metrics | grep "upstreams_healthy{upstream=\"127.0.0.1:$PORT\"}" | cut -d' ' -f2; }
compose "$NEW" pull --quiet "web-$NEW" "worker-$NEW"
compose "$NEW" run --rm -T "web-$NEW" sh /app/migrate.sh >/dev/null
seen0=""; [ "$(gauge)" = 0 ] && seen0=y
compose "$NEW" up -d --pull missing "web-$NEW" "worker-$NEW" 2>/dev/null
until timeout 2 busybox wget -q -O /dev/null "http://127.0.0.1:$PORT/health/" 2>/dev/null; do sleep 0.5; done
healthy=$(date +%s.%N)
# The same rule as public-works: a 0 then a 1, or an unbroken 1 for interval + timeout + refresh (14.5 s).
since=""
while :; do
  g=$(gauge)
  if [ "$g" = 0 ]; then seen0=y; since=""
  elif [ "$g" = 1 ]; then
    [ -n "$since" ] || since=$(date +%s.%N)
    [ -n "$seen0" ] && break
    awk -v a="$since" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a >= 14.5) }' && break
  fi
  sleep 0.2
done
awk -v a="$healthy" -v b="$(date +%s.%N)" 'BEGIN { printf "caddy_wait=%.2f\n", b - a }'
compose "$OLD" stop -t 10 "web-$OLD" "worker-$OLD" 2>/dev/null
printf '{"active": "%s", "version": "%s"}\n' "$NEW" "$VERSION" > /home/deploy/.publicworks/design-flow.json
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) | civic-observer | $VERSION | success | $NEW" >> /home/deploy/design-flow.log
