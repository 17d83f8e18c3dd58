"""bulkops: durable bulk operations over orders, on Temporal and Postgres."""
