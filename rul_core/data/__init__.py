"""Reading bearing runs: XJTU-SY, PRONOSTIA/FEMTO, generic layouts and archives of them."""

from rul_core.data.loader import LAYOUTS, detect_layout, is_problem, load_dataset
from rul_core.data.run import Condition, Dataset, LoadReport, Run, SkippedFile

__all__ = [
    "LAYOUTS",
    "Condition",
    "Dataset",
    "LoadReport",
    "Run",
    "SkippedFile",
    "detect_layout",
    "is_problem",
    "load_dataset",
]
