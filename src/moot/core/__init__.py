"""The pure core: domain rules as plain functions over plain data. No I/O, no framework."""
