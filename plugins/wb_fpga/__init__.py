"""wb_fpga (work in progress)."""
