"""Files: atomic writes, project files, weights, the shipped example projects."""
