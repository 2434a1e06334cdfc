"""wb_sim (work in progress)."""
