"""``wb_ray``: train on a Ray cluster (docs/user-guide.md, "Running on a Ray cluster").

One runner, ``wb_ray.ray``: the project folder goes to the cluster as a Ray job's working
directory (Ray's Jobs API, through the dashboard's address), the job trains it there and the
workbench follows its output; ``snn-workbench submit PROJECT --ray http://HOST:8265`` and the
app's Run ▸ Run on… use it.

Ray itself is an optional extra (``pip install 'snn-workbench[cluster]'``): this module never
imports it, and the runner says how to install it when it is missing.
"""

from __future__ import annotations

from workbench.pluginhost import ParamSpec, RunnerSpec, hookimpl

#: the address ``ray start --head`` serves its dashboard (and the Jobs API) on by default
DEFAULT_ADDRESS = "http://127.0.0.1:8265"


@hookimpl
def wb_runners() -> list[RunnerSpec]:
    return [
        RunnerSpec(
            id="wb_ray.ray",
            display_name="Ray cluster",
            factory="wb_ray.runner:RayRunner",
            doc="Trains the saved project as a Ray job on the cluster whose dashboard is at "
                "the address; the cluster's Python needs snn-workbench and the plugins the "
                "project uses. Stop stops the job.",
            params=(
                ParamSpec("address", DEFAULT_ADDRESS, "str",
                          doc="The cluster's dashboard address, http://HOST:8265 (`ray start "
                              "--head` prints it)"),
            ),
        ),
    ]
