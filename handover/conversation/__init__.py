"""Conversations: the log of record, tokens, states, routing, delivery to sockets."""
