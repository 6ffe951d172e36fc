#!/bin/sh
# Answers /health/ (a directory without index.html): 500 for the broken version or once /tmp/sick exists.
if [ "$APP_KIND" = broken ] || [ -e /tmp/sick ]; then
  printf 'HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nunhealthy version=%s\n' "$APP_VERSION"
else
  printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok version=%s\n' "$APP_VERSION"
fi
