"""Reading bearing runs: XJTU-SY, PRONOSTIA/FEMTO, generic layouts and archives of them."""

from rul_core.data.run import Condition, Dataset, LoadReport, Run, SkippedFile

__all__ = ["Condition", "Dataset", "LoadReport", "Run", "SkippedFile"]
# `load_dataset` (rul_core.data.loader) is re-exported here once the loader exists.
