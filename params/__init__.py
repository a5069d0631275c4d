"""The migration parameter table: one enum, one row per migration parameter or capability."""
