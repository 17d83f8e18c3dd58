"""`python -m bulkops.cli`: what `bulkops dev` runs its children with."""

from bulkops.cli.app import app

app()
