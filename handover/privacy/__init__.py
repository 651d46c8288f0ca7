"""Data protection (DSGVO): retention, export, erasure, audit log, masking.

Modules here that the bot environment imports (`masking`) use the standard library only."""
