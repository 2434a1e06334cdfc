"""wb_q_snn (work in progress)."""
