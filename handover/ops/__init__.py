"""Operations: processes, Redis, HTTP plumbing, logging, metrics, limits.

Modules here that the bot environment imports (`log_records`) use the standard library only."""
