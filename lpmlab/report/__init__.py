"""Migration reports: tables, JSON, PNG and terminal plots."""
