"""`bulkops bench`: the end-to-end benchmark and the platform ceiling."""
