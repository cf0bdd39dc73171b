"""pytest hooks and options (placeholder while the core is written)."""
