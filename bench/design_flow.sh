#!/bin/bash
# The design's deploy flow as one bash script over one `ssh` session (bench/run.py runs it for comparison):
# the same remote steps as `publicworks deploy` — lock, pull, migrate, start, health, the same wait for
# Caddy's word (a request through Caddy pinned to the new color by its lb cookie: not routed, then
# routed), stop the old color, state, history, and the reads public-works adds around them (what runs,
# the state, the history's tail, free disk, Caddy's config and metrics, the images to prune) — without
# public-works.
# Usage (on the VPS): design_flow.sh VERSION NEW_COLOR OLD_COLOR NEW_PORT PINNING_COOKIE_VALUE
set -euo pipefail
VERSION=$1 NEW=$2 OLD=$3 PORT=$4 PIN=$5
exec 200>/home/deploy/.publicworks/design-flow.lock
flock -n 200
cd /home/deploy/civic-observer
export IMAGE_TAG=$VERSION
compose() { docker compose --project-directory "$PWD" -p civic-observer -f docker-compose.production-base.yml -f "docker-compose.$1.yml" "${@:2}" </dev/null; }  # stdin holds this script
routed() { # Caddy sends a request pinned to the new color there (2xx, no Set-Cookie), or says where else
  local h; h=$(busybox wget -S -q -O /dev/null --header "Host: civic.observer" --header "Cookie: lb=$PIN" \
    http://127.0.0.1:80/health/ 2>&1) || { echo "?"; return; }
  case $h in *Set-Cookie:*) echo n ;; *" 200 "*) echo y ;; *) echo "?" ;; esac
}
# inspect: what runs, the state, the history's tail, free disk, Caddy's running config and metrics
docker ps -a --no-trunc --format '{{json .}}' >/dev/null
cat /home/deploy/.publicworks/design-flow.json >/dev/null 2>&1 || true
tac /home/deploy/design-flow.log 2>/dev/null | grep -m 5000 -F -e " | civic-observer | " >/dev/null || true
df -Pk "$(docker info --format '{{.DockerRootDir}}')" >/dev/null
busybox wget -q -O /dev/null http://localhost:2019/config/
busybox wget -q -O /dev/null http://localhost:2019/metrics
compose "$NEW" pull --quiet "web-$NEW" "worker-$NEW"
compose "$NEW" run --rm -T "web-$NEW" sh /app/migrate.sh >/dev/null
seen0=""; [ "$(routed)" = n ] && seen0=y
compose "$NEW" up -d --pull missing "web-$NEW" "worker-$NEW" 2>/dev/null
until timeout 2 busybox wget -q -O /dev/null "http://127.0.0.1:$PORT/health/" 2>/dev/null; do sleep 0.5; done
healthy=$(date +%s.%N)
# The same rule as public-works: not routed then routed, or routed without a break for interval + timeout + 0.5 s.
since=""
while :; do
  g=$(routed)
  if [ "$g" = n ]; then seen0=y; since=""
  elif [ "$g" = y ]; then
    [ -n "$since" ] || since=$(date +%s.%N)
    [ -n "$seen0" ] && break
    awk -v a="$since" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a >= 4.5) }' && break
  fi
  sleep 0.2
done
awk -v a="$healthy" -v b="$(date +%s.%N)" 'BEGIN { printf "caddy_wait=%.2f\n", b - a }'
compose "$OLD" stop -t 10 "web-$OLD" "worker-$OLD" 2>/dev/null
printf '{"active": "%s", "version": "%s"}\n' "$NEW" "$VERSION" > /home/deploy/.publicworks/design-flow.json
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) | civic-observer | $VERSION | success | $NEW" >> /home/deploy/design-flow.log
# prune's reads: the images the service's compose files name, the images, what containers use
compose blue config --images >/dev/null; compose green config --images >/dev/null
docker images --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' >/dev/null
docker ps -a --no-trunc --format '{{.Image}}' >/dev/null
