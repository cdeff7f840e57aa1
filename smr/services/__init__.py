"""Business logic: ingest, runs, dispatch.

Services never commit: the caller owns the transaction.
"""
