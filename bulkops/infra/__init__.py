"""Plumbing shared by the processes: the Temporal client, metrics, the event loop, URL policy."""
