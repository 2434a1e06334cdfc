"""The Qt-free core: specs, graph model, compile to torch, runs, probes, energy, project I/O.

Nothing here imports Qt or a plugin; plugins reach the core through the spec objects they
return from their hooks.
"""
