"""Alembic migrations of the completion cache (llm/cache.py), applied when a cache opens. Name revisions `NNNN_what`;
copy a file in versions/ to add one. Caches made before these kept their own record (`_migrations`, names m001-m003):
`cache.py` stamps such a cache at the matching revision before upgrading it."""
