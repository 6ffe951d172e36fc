# Stand-in for `manage.py migrate`: records itself in the db's volume; the badmigrate version fails.
if [ "$APP_KIND" = badmigrate ]; then echo "migration failed: relation does not exist" >&2; exit 1; fi
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) migrated to $APP_VERSION" >> /data/migrations.log
echo "applied migrations for $APP_VERSION"
