"""The EMS's database: models, queries and migrations. No HTTP here."""
