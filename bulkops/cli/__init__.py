"""The `bulkops` command line (typer + rich)."""
