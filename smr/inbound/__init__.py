"""What vendors push to SMR (callbacks, webhooks): verified and translated into events.

Protocol code only: no HTTP framework and no database. The routes in ``smr.api`` call it and
ingest the events it returns, so the vendor formats stay out of the services.
"""
