"""PostgreSQL: typed tables, engines and pools, migrations, selection and keyset paging."""
