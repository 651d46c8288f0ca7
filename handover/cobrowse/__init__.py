"""Co-browsing: with the citizen's consent, the assigned agent sees and points at her page."""
