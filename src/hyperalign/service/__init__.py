"""The personalization service: an OpenAI-compatible chat endpoint that applies each end user's profile, the
profiles API (examples, background inference, versions, edits, export, delete), tenants with API keys, and a review
page. Needs the `serve` extra (FastAPI, uvicorn, limits, psycopg)."""
