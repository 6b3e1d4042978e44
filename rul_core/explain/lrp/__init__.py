"""Multimodal LRP: a graph-walking engine and per-layer rules (paper and conservative sets)."""

from rul_core.explain.lrp.engine import LayerRelevance, LrpExplanation, explain_lrp
from rul_core.explain.lrp.rules import (
    CONSERVATIVE,
    LRP0,
    PAPER,
    RuleSet,
    UnsupportedLayerError,
    get_rule_set,
    register_rule,
)

__all__ = [
    "CONSERVATIVE",
    "LRP0",
    "PAPER",
    "LayerRelevance",
    "LrpExplanation",
    "RuleSet",
    "UnsupportedLayerError",
    "explain_lrp",
    "get_rule_set",
    "register_rule",
]
