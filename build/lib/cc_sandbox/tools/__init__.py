"""Development tools (not used at run time)."""
