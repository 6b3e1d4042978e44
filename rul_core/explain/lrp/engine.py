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

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
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


def _per_sample_sum(t: Any) -> tf.Tensor:
    """Σ over all but the batch axis, in float64 (a tensor: eager or in a compiled pass)."""
    a = tf.cast(t, tf.float64)
    return tf.reduce_sum(tf.reshape(a, [tf.shape(a)[0], -1]), axis=1)


def _node_rule(node: Any) -> Any:
    return rule_for(node.operation)


def forward_values(graph: Any, inputs: Sequence[tf.Tensor], cancel: CancelToken | None = None
                   ) -> dict[int, tf.Tensor]:
    """Run the graph recording every tensor's value (keyed by id of its KerasTensor)."""
    values: dict[int, tf.Tensor] = {}
    for kt, v in zip(graph.inputs, inputs, strict=True):
        values[id(kt)] = tf.convert_to_tensor(v, dtype=kt.dtype or "float32")
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            check(cancel)
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
    checks: list[tuple[str, tf.Tensor]] | None = None,
) -> dict[int, tf.Tensor]:
    """Propagate relevance from output tensors (id -> R) to the graph's input tensors.

    ``layers_log`` receives one :class:`LayerRelevance` per layer (its sums as float64
    tensors). ``checks``: where rules record their consistency checks in graph mode
    (:meth:`BackwardContext.require`; eagerly they raise at once)."""
    relevance: dict[int, list[tf.Tensor]] = {k: [v] for k, v in output_relevance.items()}
    consumers: dict[int, int] = {}
    for nodes in graph._nodes_by_depth.values():
        for node in nodes:
            if node.operation is None or node.is_input:
                continue
            for kt in {id(t): t for t in node.input_tensors}.values():
                consumers[id(kt)] = consumers.get(id(kt), 0) + 1
    folded: set[int] = set()
    ctx = BackwardContext(values=values, rules=rules, checks=[] if checks is None else checks,
                          cancel=cancel)

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
                sub_values = forward_values(sub, keras.tree.flatten(sub_inputs), cancel)
                sub_out = {id(kt): r for kt, r in zip(sub.outputs, outs, strict=True)}
                sub_rel = propagate(sub, sub_values, sub_out, rules, layers_log, cancel,
                                    ctx.checks)
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
                         else tf.zeros_like(r_in_sum))
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


def _batch_relevance(
    graph: Any, batch: Sequence[Any], rule_set: RuleSet, output_index: int,
    cancel: CancelToken | None, checks: list[tuple[str, tf.Tensor]],
) -> tuple[list[tf.Tensor], tf.Tensor, list[LayerRelevance]]:
    """One batch: relevance per graph input, the explained output unit, the layer log."""
    values = forward_values(graph, batch, cancel)
    out_kt = graph.outputs[0]
    y = values[id(out_kt)]
    units = int(np.prod(y.shape[1:]))
    y2 = tf.reshape(y, [tf.shape(y)[0], units])
    if not 0 <= output_index < units:
        raise RulError(f"output_index: expected 0..{units - 1}, found {output_index}")
    mask = tf.one_hot(output_index, units, dtype=y2.dtype)
    r0 = tf.reshape(y2 * mask, tf.shape(y))
    log: list[LayerRelevance] = []
    rel = propagate(graph, values, {id(out_kt): r0}, rule_set, log, cancel, checks)
    return [rel[id(kt)] for kt in graph.inputs], y2[:, output_index], log


@contextlib.contextmanager
def _ops_as_written() -> Iterator[None]:
    """Functions called in this thread inside the block run their graph without Grappler's
    rewrites. Its arithmetic optimiser reorders sums and products, and LRP's divisions by
    small denominators blow that rounding up (to 5e-4 of the largest relevance on the demo
    RC-LSTM, conservative rules); without it the compiled pass gives the eager pass's numbers
    bit for bit, as fast (tested). A graph is optimised at its first call with the options
    of that call, so every call of the LRP graph runs inside this block. Only the calling
    thread's options change (TensorFlow keeps them per thread)."""
    try:
        from tensorflow.core.protobuf import config_pb2
        from tensorflow.python.eager import context
    except ImportError:  # pragma: no cover - a TensorFlow without these modules
        yield
        return
    ctx = context.context()
    before = ctx.function_call_options
    config = config_pb2.ConfigProto()
    if before.config_proto_serialized:
        config.ParseFromString(before.config_proto_serialized)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    ctx.function_call_options = context.FunctionCallOptions(
        executor_type=before.executor_type, config_proto=config)
    try:
        yield
    finally:
        ctx.function_call_options = before


class _CompiledRelevance:
    """:func:`_batch_relevance` for one model, rule set, output unit and batch shape as one
    TensorFlow graph. Eagerly, LRP dispatches some 9 000 small ops from Python per window
    (0.45 s on the demo Multimodal-RUL, 0.23 s on CARL on 2 cores); as a graph the same ops
    take 0.02 s and 0.006 s, after a trace and first run of 1.5-5 s (which the Explain
    page's warm-up pays in the background: :mod:`rul_core.explain.warm`). Run as written
    (:func:`_ops_as_written`), so the numbers are the eager pass's."""

    def __init__(self, graph: Any, rule_set: RuleSet, output_index: int,
                 shapes: tuple[tuple[int, ...], ...], cancel: CancelToken | None = None
                 ) -> None:
        self.layers: list[tuple[str, str]] = []  # (name, class) per logged layer, by the trace
        self.messages: list[str] = []  # the consistency checks' messages, by the trace
        self.cancel = cancel  # checked per layer while tracing (the trace is Python)

        def body(*batch: tf.Tensor) -> Any:
            checks: list[tuple[str, tf.Tensor]] = []
            rel, pred, log = _batch_relevance(graph, list(batch), rule_set, output_index,
                                              self.cancel, checks)
            self.layers = [(lr.name, lr.class_name) for lr in log]
            self.messages = [m for m, _ in checks]
            return (rel, pred, [lr.relevance_in for lr in log],
                    [lr.relevance_out for lr in log], [ok for _, ok in checks])

        specs = [tf.TensorSpec(shape, tf.float32) for shape in shapes]
        self.fn = tf.function(body, input_signature=specs, autograph=False)

    def __call__(self, batch: Sequence[np.ndarray]
                 ) -> tuple[list[tf.Tensor], tf.Tensor, list[LayerRelevance]]:
        with _ops_as_written():
            rel, pred, r_in, r_out, passed = self.fn(*batch)
        self.cancel = None  # traced: not needed any more
        for message, ok in zip(self.messages, passed, strict=True):
            if not bool(ok):
                raise UnsupportedLayerError(message)
        log = [LayerRelevance(name, cls, a, b)
               for (name, cls), a, b in zip(self.layers, r_in, r_out, strict=True)]
        return list(rel), pred, log


_COMPILED_ATTR = "_rul_lrp_functions"
_COMPILED_LOCK = threading.Lock()


def _compiled_relevance(model: Any, graph: Any, rule_set: RuleSet, output_index: int,
                        batch: Sequence[np.ndarray], build: bool,
                        cancel: CancelToken | None = None
                        ) -> tuple[_CompiledRelevance | None, bool]:
    """(the model's compiled pass for this rule set, unit and batch shape, whether it is
    new). An existing one is returned only once its first run is done; ``build``: make one
    when there is none (the caller runs it first, then :func:`_keep_compiled`), its trace
    checking ``cancel`` per layer."""
    key = (rule_set, int(output_index), tuple(tuple(a.shape) for a in batch))
    fns = getattr(model, _COMPILED_ATTR, None) or {}
    if key in fns or not build:
        return fns.get(key), False
    return _CompiledRelevance(graph, rule_set, output_index, key[2], cancel), True


def _keep_compiled(model: Any, compiled: _CompiledRelevance, rule_set: RuleSet,
                   output_index: int, batch: Sequence[np.ndarray]) -> None:
    key = (rule_set, int(output_index), tuple(tuple(a.shape) for a in batch))
    with _COMPILED_LOCK:
        fns = getattr(model, _COMPILED_ATTR, None)
        if fns is None:
            fns = {}
            object.__setattr__(model, _COMPILED_ATTR, fns)  # outside Keras's tracking
        fns.setdefault(key, compiled)


def explain_lrp(
    model: Any,
    inputs: Any,
    rules: str | RuleSet = "paper",
    output_index: int = 0,
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    compiled: bool | None = None,
) -> LrpExplanation:
    """LRP relevance of ``model``'s output unit ``output_index`` for a batch of ``inputs``.

    ``inputs``: one array, a list in model-input order, or a dict by input name. The starting
    relevance is the output value itself. Returns relevance per input name, the explained
    prediction and the per-layer relevance sums (summed over all batches' samples).

    ``compiled``: run each batch as one TensorFlow graph (the same numbers to float32
    rounding, tested), compiled once per model, rule set, unit and batch shape and kept on
    the model; a first run costs a trace of 1-4 s, every later one a fraction of the eager
    pass. None (default): use such a graph when one is ready (the Explain page's warm-up
    makes the one for a window), else run eagerly; False: always eagerly.
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
        fn, new = (_compiled_relevance(model, graph, rule_set, output_index, batch,
                                       bool(compiled), cancel)
                   if compiled is not False else (None, False))
        if fn is not None:
            rel, pred, log = fn(batch)
            if new:
                _keep_compiled(model, fn, rule_set, output_index, batch)
        else:
            rel, pred, log = _batch_relevance(graph, [tf.convert_to_tensor(a) for a in batch],
                                              rule_set, output_index, cancel, [])
        for name, r in zip(names, rel, strict=True):
            rel_parts[name].append(np.asarray(r, dtype=np.float64))
        preds.append(np.asarray(pred, dtype=np.float64))
        logs.append(log)
        emit(progress, "lrp", bi + 1, len(starts))
    layers = [
        LayerRelevance(
            first.name, first.class_name,
            np.concatenate([np.asarray(lg[i].relevance_in, dtype=np.float64) for lg in logs]),
            np.concatenate([np.asarray(lg[i].relevance_out, dtype=np.float64) for lg in logs]),
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
