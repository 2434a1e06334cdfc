"""wb_qp_snn (work in progress)."""
