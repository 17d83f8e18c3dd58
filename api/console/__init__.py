"""The operator console under `/console` (see `api.console.mount`)."""
