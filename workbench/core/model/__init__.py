"""The project's data model: specs, the network graph, the project record, errors.

Pure data: nothing here imports torch, so the CLI's parser and the plugin host stay light.
"""
