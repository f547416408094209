"""Results: the DuckDB database, the papers' tables and the plots."""
