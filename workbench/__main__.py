"""``python -m workbench`` runs the same entry point as ``snn-workbench``."""

from __future__ import annotations

from workbench.cli import main

raise SystemExit(main())
