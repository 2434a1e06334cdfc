"""wb_nir (work in progress)."""
