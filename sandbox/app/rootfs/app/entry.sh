# Entry point: with arguments, run them (a migration, a worker); without, serve HTTP on $PORT.
/bin/busybox --install -s /bin 2>/dev/null
if [ "$#" -gt 0 ]; then exec "$@"; fi
case "$APP_KIND" in
  slow) sleep "${SLOW_SECONDS:-6}" ;;
  stubborn) trap '' TERM ;; # ignored across exec: a stop waits out the whole grace period
  db) exec sleep 2147483647 ;;
esac
printf 'service=%s version=%s color=%s host=%s\n' "$APP_SERVICE" "$APP_VERSION" "$APP_COLOR" "$(hostname)" > /www/index.html
[ "$APP_KIND" = stubborn ] && exec httpd -f -p "${PORT:-8000}" -h /www
# A graceful stop, as gunicorn's: on SIGTERM stop accepting, let the requests in progress (httpd's
# per-connection children) finish, then exit. `docker compose stop -t` bounds how long that may take.
httpd -f -p "${PORT:-8000}" -h /www &
server=$!
trap 'kill $server; while pidof httpd >/dev/null; do sleep 0.1; done; exit 0' TERM
wait $server
