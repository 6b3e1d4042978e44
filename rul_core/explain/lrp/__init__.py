"""Multimodal LRP: a graph-walking engine and per-layer rules (paper, conservative and epsilon
sets)."""

from rul_core.explain.lrp.engine import LayerRelevance, LrpExplanation, explain_lrp
from rul_core.explain.lrp.rules import (
    CONSERVATIVE,
    EPSILON,
    LRP0,
    OFFERED_RULES,
    PAPER,
    RuleSet,
    UnsupportedLayerError,
    get_rule_set,
    register_rule,
)

__all__ = [
    "CONSERVATIVE",
    "EPSILON",
    "LRP0",
    "OFFERED_RULES",
    "PAPER",
    "LayerRelevance",
    "LrpExplanation",
    "RuleSet",
    "UnsupportedLayerError",
    "explain_lrp",
    "get_rule_set",
    "register_rule",
]
