"""Alembic migrations of the profile store's own tables (see `hyperalign.profiles.store`), applied when a store opens;
the service's tables have their chain in `hyperalign.service.migrations`.

To add one: `alembic -c /dev/null -x url=sqlite:///dev.sqlite3 revision --autogenerate -m NAME` run with
`script_location` pointing here, or copy a file in `versions/`; name revisions `NNNN_what`, numbered on from the
highest number in any of the chains (they were one chain until 0.1.0)."""
