"""Applications (Anträge) from the demo portal's forms: rules, uploads, records, HTTP API."""
