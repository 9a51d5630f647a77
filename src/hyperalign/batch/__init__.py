"""Batch personalization for many users: profiles inferred for every user of a file, texts generated for every
request of a file — resumable, with bounded concurrency, in one process (asyncio) or over a Ray cluster."""
