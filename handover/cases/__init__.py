"""Damage-report cases: their numbers, records and HTTP API."""
