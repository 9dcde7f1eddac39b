"""Reports: Markdown/CSV tables and the environment record."""
