"""The operation service: the only API-side code that talks to Temporal; accepts, reads, controls."""
