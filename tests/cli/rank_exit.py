"""Started on each rank by ``test_train_ddp.py`` through ``distributed.launch``: writes the
torch threads it was given to ``$RANK_EXIT_DIR/rank<N>``, then exits with status 3 on rank 1
and 0 on rank 0."""

import os
import sys
from pathlib import Path

rank = os.environ["RANK"]
Path(os.environ["RANK_EXIT_DIR"], f"rank{rank}").write_text(os.environ["OMP_NUM_THREADS"])
sys.exit(3 if rank == "1" else 0)
