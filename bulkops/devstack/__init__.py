"""The embedded stack that `bulkops dev`, the tests and `bulkops bench --embedded` run on."""
