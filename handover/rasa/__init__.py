"""The Rasa server as the gateway sees it: the client, its credential, the trackers."""
