"""From graph to torch: compile, the compiled network, quantised weights, probes, energy."""
