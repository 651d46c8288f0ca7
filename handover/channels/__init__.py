"""Channel adapters: how citizens reach the gateway (the web socket first)."""
