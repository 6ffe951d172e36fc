# Entry point: with arguments, run them (a migration, a worker); without, serve HTTP on $PORT.
/bin/busybox --install -s /bin 2>/dev/null
if [ "$#" -gt 0 ]; then exec "$@"; fi
case "$APP_KIND" in
  slow) sleep "${SLOW_SECONDS:-6}" ;;
  db) exec sleep 2147483647 ;;
esac
printf 'service=%s version=%s color=%s host=%s\n' "$APP_SERVICE" "$APP_VERSION" "$APP_COLOR" "$(hostname)" > /www/index.html
exec httpd -f -p "${PORT:-8000}" -h /www
