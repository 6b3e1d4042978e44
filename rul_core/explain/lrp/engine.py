"""Multimodal LRP engine: walks a Keras 3 functional graph backwards from the output.

The walk uses the model's own graph (``Functional._nodes_by_depth``; every node knows its
operation, its input KerasTensors and its outputs), never layer names: a forward pass records
the value of every tensor (dropout layers act as the identity), then nodes are visited in
increasing depth, i.e. every consumer of a tensor before its producer. Relevance arriving at a
tensor from several consumers is summed (the ``paper`` set averages it at a Concatenate
output, eq. 34). A BatchNormalization whose input comes straight from a Conv/Dense with a
linear activation and no other consumer is folded into that layer. Nested functional models are
explained recursively.

The result carries the relevance of every model input (same shape as the input) and, per
layer, the relevance sum that entered it (at its output) and the sum it passed on to its
inputs, so gains and losses are visible.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from rul_core.errors import RulError
from rul_core.explain.lrp.rules import (
    BackwardContext,
    ConvRule,
    DenseRule,
    NestedModelRule,
    RuleSet,
    UnsupportedLayerError,
    get_rule_set,
    rule_for,
)
from rul_core.progress import CancelToken, ProgressFn, check, emit


@dataclass(frozen=True)
class LayerRelevance:
    """Relevance bookkeeping of one layer, summed per sample (arrays of shape (batch,))."""

    name: str
    class_name: str
    relevance_in: np.ndarray  # arriving at the layer's output(s)
    relevance_out: np.ndarray  # passed on to the layer's input(s)

    @property
    def change(self) -> np.ndarray:
        """relevance_out − relevance_in (negative: relevance lost in this layer)."""
        return self.relevance_out - self.relevance_in


@dataclass
class LrpExplanation:
    """LRP relevance of a batch: per input name an array shaped like the input."""

    relevance: dict[str, np.ndarray]
    prediction: np.ndarray  # (batch,) the explained output unit
    layers: list[LayerRelevance]
    rules: str
    output_index: int
    seconds: float
    extras: dict[str, Any] = field(default_factory=dict)

    def input_sums(self) -> np.ndarray:
        """Per-sample total relevance over all inputs (batch,)."""
        return np.sum(
            [r.reshape(r.shape[0], -1).sum(axis=1) for r in self.relevance.values()], axis=0
        )

    def conservation(self) -> np.ndarray:
        """Per-sample input relevance divided by the prediction (1 = fully conserved)."""
        pred = self.prediction
        return self.input_sums() / np.where(pred == 0, 1.0, pred)

    def layer_table(self) -> pd.DataFrame:
        """One row per visited layer: name, class, mean relevance in/out and the change."""
        rows = [
            {
                "layer": lr.name,
                "class": lr.class_name,
                "relevance_in": float(np.mean(lr.relevance_in)),
                "relevance_out": float(np.mean(lr.relevance_out)),
                "change": float(np.mean(lr.change)),
            }
            for lr in self.layers
        ]
        return pd.DataFrame(rows, columns=["layer", "class", "relevance_in", "relevance_out",
                                           "change"])

    def layer_sums(self) -> list[tuple[str, str, float, float]]:
        """(layer name, class, relevance sum in, relevance sum out), batch-averaged."""
        return [
            (lr.name, lr.class_name, float(np.mean(lr.relevance_in)),
             float(np.mean(lr.relevance_out)))
            for lr in self.layers
        ]


def _functional(model: Any) -> Any:
    """The functional graph behind a model (Sequential models keep one in ``_functional``)."""
    if isinstance(model, keras.Sequential):
        fn = getattr(model, "_functional", None)
        if fn is None:
            raise RulError(f"model '{model.name}': a Sequential model must be built first")
        return fn
    if not hasattr(model, "_nodes_by_depth"):
        raise RulError(
            f"model '{getattr(model, 'name', '?')}' ({type(model).__name__}): LRP needs a "
            "functional (graph) model"
        )
    return model


def _per_sample_sum(t: Any) -> np.ndarray:
    a = np.asarray(t, dtype=np.float64)
    return a.reshape(a.shape[0], -1).sum(axis=1)


def _node_rule(node: Any) -> Any:
    return rule_for(node.operation)


def forward_values(graph: Any, inputs: Sequence[tf.Tensor]) -> dict[int, tf.Tensor]:
    """Run the graph recording every tensor's value (keyed by id of its KerasTensor)."""
    values: dict[int, tf.Tensor] = {}
    for kt, v in zip(graph.inputs, inputs, strict=True):
        values[id(kt)] = tf.convert_to_tensor(v, dtype=kt.dtype or "float32")
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if node.operation is None or node.is_input:
                continue
            rule = _node_rule(node)
            args, kwargs = node.arguments.fill_in(values)
            out = rule.forward(node.operation, args, kwargs)
            for kt, v in zip(node.outputs, keras.tree.flatten(out), strict=True):
                values[id(kt)] = tf.convert_to_tensor(v)
    return values


def _foldable_producer(graph: Any, bn_node: Any, consumers: dict[int, int]) -> Any | None:
    """The Conv/Dense node that a BatchNormalization node can be folded into, or None."""
    if len(bn_node.input_tensors) != 1:
        return None
    kt = bn_node.input_tensors[0]
    producer = kt._keras_history.operation
    if producer is None:
        return None
    rule = rule_for(producer)
    if not isinstance(rule, DenseRule):
        return None
    act = getattr(getattr(producer, "activation", None), "__name__", "linear")
    if act != "linear" or consumers.get(id(kt), 0) != 1:
        return None
    ndim = len(kt.shape)
    if bn_node.operation.axis not in (-1, ndim - 1):
        return None
    node = producer._inbound_nodes[kt._keras_history.node_index]
    return node


def propagate(
    graph: Any,
    values: dict[int, tf.Tensor],
    output_relevance: Mapping[int, tf.Tensor],
    rules: RuleSet,
    layers_log: list[LayerRelevance],
    cancel: CancelToken | None = None,
) -> dict[int, tf.Tensor]:
    """Propagate relevance from output tensors (id -> R) to the graph's input tensors."""
    relevance: dict[int, list[tf.Tensor]] = {k: [v] for k, v in output_relevance.items()}
    consumers: dict[int, int] = {}
    for nodes in graph._nodes_by_depth.values():
        for node in nodes:
            if node.operation is None or node.is_input:
                continue
            for kt in {id(t): t for t in node.input_tensors}.values():
                consumers[id(kt)] = consumers.get(id(kt), 0) + 1
    folded: set[int] = set()
    ctx = BackwardContext(values=values, rules=rules)

    def gather(kt: Any) -> tf.Tensor | None:
        parts = relevance.get(id(kt))
        if not parts:
            return None
        total = tf.add_n([tf.cast(p, tf.float32) for p in parts])
        producer = kt._keras_history.operation
        if (rules.concat_fanout == "mean" and len(parts) > 1
                and isinstance(producer, keras.layers.Concatenate)):
            total = total / len(parts)  # eq. 34
        return total

    for depth in sorted(graph._nodes_by_depth):
        for node in graph._nodes_by_depth[depth]:
            check(cancel)
            layer = node.operation
            if layer is None or node.is_input or id(node) in folded:
                continue
            rule = _node_rule(node)
            outs = [gather(kt) for kt in node.outputs]
            if all(r is None for r in outs):
                continue  # no relevance reaches this node
            outs = [tf.zeros_like(values[id(kt)]) if r is None else r
                    for r, kt in zip(outs, node.outputs, strict=True)]
            r_in_sum = sum(_per_sample_sum(r) for r in outs)
            name, cls = layer.name, type(layer).__name__
            if isinstance(rule, NestedModelRule):
                sub = _functional(layer)
                sub_inputs = node.arguments.fill_in(values)[0]
                sub_values = forward_values(sub, keras.tree.flatten(sub_inputs))
                sub_out = {id(kt): r for kt, r in zip(sub.outputs, outs, strict=True)}
                sub_rel = propagate(sub, sub_values, sub_out, rules, layers_log, cancel)
                r_inputs = [sub_rel.get(id(kt), tf.zeros_like(sub_values[id(kt)]))
                            for kt in sub.inputs]
                targets = list(node.input_tensors)
            elif (rules.fold_batchnorm and isinstance(layer, keras.layers.BatchNormalization)
                  and (prod := _foldable_producer(graph, node, consumers)) is not None):
                folded.add(id(prod))
                prod_layer = prod.operation
                x = values[id(prod.input_tensors[0])]
                r_x = rule_for(prod_layer).backward_folded(prod_layer, layer, x, outs[0], rules)
                r_inputs = [r_x]
                targets = [prod.input_tensors[0]]
                name = f"{prod_layer.name}+{layer.name}"
                cls = f"{type(prod_layer).__name__}+BatchNormalization(folded)"
            else:
                if len(outs) != 1:
                    raise UnsupportedLayerError(
                        f"layer '{name}' ({cls}): layers with several outputs are not supported"
                    )
                r_inputs = rule.backward(layer, node, ctx, outs[0])
                targets = list(node.input_tensors)
            for kt, r in zip(targets, r_inputs, strict=True):
                relevance.setdefault(id(kt), []).append(r)
            r_out_sum = (sum(_per_sample_sum(r) for r in r_inputs) if r_inputs
                         else np.zeros_like(r_in_sum))
            if not isinstance(rule, NestedModelRule):
                layers_log.append(LayerRelevance(name, cls, r_in_sum, r_out_sum))
    result = {}
    for kt in graph.inputs:
        r = gather(kt)
        result[id(kt)] = tf.zeros_like(values[id(kt)]) if r is None else r
    return result


def _inputs_list(model: Any, inputs: Any) -> list[np.ndarray]:
    graph = _functional(model)
    names = [kt.name for kt in graph.inputs]
    if isinstance(inputs, Mapping):
        missing = [n for n in names if n not in inputs]
        if missing:
            raise RulError(f"inputs: expected keys {names}, missing {missing}")
        arrays = [inputs[n] for n in names]
    elif isinstance(inputs, (list, tuple)):
        arrays = list(inputs)
    else:
        arrays = [inputs]
    if len(arrays) != len(names):
        raise RulError(f"inputs: expected {len(names)} arrays ({names}), found {len(arrays)}")
    out = []
    for n, kt, a in zip(names, graph.inputs, arrays, strict=True):
        a = np.asarray(a, dtype=np.float32)
        want = tuple(kt.shape[1:])
        if a.shape[1:] != want:
            raise RulError(f"inputs['{n}']: expected shape (batch, {want}), found {a.shape}")
        out.append(a)
    return out


def explain_lrp(
    model: Any,
    inputs: Any,
    rules: str | RuleSet = "paper",
    output_index: int = 0,
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> LrpExplanation:
    """LRP relevance of ``model``'s output unit ``output_index`` for a batch of ``inputs``.

    ``inputs``: one array, a list in model-input order, or a dict by input name. The starting
    relevance is the output value itself. Returns relevance per input name, the explained
    prediction and the per-layer relevance sums (summed over all batches' samples).
    """
    t0 = time.perf_counter()
    rule_set = get_rule_set(rules)
    graph = _functional(model)
    arrays = _inputs_list(model, inputs)
    n = arrays[0].shape[0]
    names = [kt.name for kt in graph.inputs]
    if len(graph.outputs) != 1:
        raise UnsupportedLayerError(
            f"model '{model.name}': LRP explains one output tensor, found {len(graph.outputs)}"
        )
    rel_parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    preds: list[np.ndarray] = []
    logs: list[list[LayerRelevance]] = []
    starts = list(range(0, n, max(1, batch_size)))
    for bi, s in enumerate(starts):
        check(cancel)
        batch = [a[s: s + batch_size] for a in arrays]
        values = forward_values(graph, batch)
        out_kt = graph.outputs[0]
        y = values[id(out_kt)]
        y2 = tf.reshape(y, [tf.shape(y)[0], -1])
        if not 0 <= output_index < y2.shape[1]:
            raise RulError(
                f"output_index: expected 0..{y2.shape[1] - 1}, found {output_index}"
            )
        mask = tf.one_hot(output_index, y2.shape[1], dtype=y2.dtype)
        r0 = tf.reshape(y2 * mask, tf.shape(y))
        log: list[LayerRelevance] = []
        rel = propagate(graph, values, {id(out_kt): r0}, rule_set, log, cancel)
        for name, kt in zip(names, graph.inputs, strict=True):
            rel_parts[name].append(np.asarray(rel[id(kt)], dtype=np.float64))
        preds.append(np.asarray(y2[:, output_index], dtype=np.float64))
        logs.append(log)
        emit(progress, "lrp", bi + 1, len(starts))
    layers = [
        LayerRelevance(
            first.name, first.class_name,
            np.concatenate([lg[i].relevance_in for lg in logs]),
            np.concatenate([lg[i].relevance_out for lg in logs]),
        )
        for i, first in enumerate(logs[0])
    ]
    return LrpExplanation(
        relevance={k: np.concatenate(v) for k, v in rel_parts.items()},
        prediction=np.concatenate(preds),
        layers=layers,
        rules=rule_set.name,
        output_index=output_index,
        seconds=time.perf_counter() - t0,
    )


__all__ = [
    "ConvRule",
    "LayerRelevance",
    "LrpExplanation",
    "explain_lrp",
    "forward_values",
    "propagate",
]
