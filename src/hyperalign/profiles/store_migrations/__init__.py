"""Alembic migrations of the profile store (see `hyperalign.store`); applied automatically when a store opens.

To add one: `alembic -c /dev/null -x url=sqlite:///dev.sqlite3 revision --autogenerate -m NAME` run with
`script_location` pointing here, or copy `versions/0001_profiles.py`; name revisions `NNNN_what`."""
