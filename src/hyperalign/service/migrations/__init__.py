"""Alembic migrations of the service's tables (service/tables.py), applied after the profile store's own when the
service opens its database (`open_service_store`); recorded in their own version table. Add one as the store's are
added (see `hyperalign.profiles.store_migrations`)."""
