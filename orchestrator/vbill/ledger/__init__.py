"""The ledger: the service's durable state (SQLite or PostgreSQL) and its transparency log.

`store.Store` is the facade callers use; behind it each repository is a small class over one
`db.Database` (tenants, accounts, bundles, ingestion, windows, corrections, log, settlements,
keys), `tables` the schema (SQLAlchemy Core, both dialects), `schema` what brings a database
to it (the Alembic revisions in `migrations`, and `legacy`, the scripts of the releases before
Alembic), `outbox` the webhook outbox, `translog` the RFC 9162 hashing and proofs, `tokens` the
tenant API tokens.
"""
