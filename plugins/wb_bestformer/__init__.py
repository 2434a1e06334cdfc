"""wb_bestformer (work in progress)."""
