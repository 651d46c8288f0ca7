"""The human side: accounts, sign-in, queues, the desk, the agent socket."""
