"""Storage: SQLAlchemy 2 tables and one module per table family."""
