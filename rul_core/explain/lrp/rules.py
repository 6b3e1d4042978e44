"""LRP rules: one rule object per Keras layer type, parameterised by a :class:`RuleSet`.

Every rule maps the relevance at a layer's output to its input tensors. Rules work on whole
batches with TensorFlow ops (no per-pixel Python loops); recurrent layers loop over time steps
only. Two rule sets are offered:

* ``paper`` — the multimodal paper's rules (section 3.3): conv LRP-gamma as printed in
  eqs. 21–22 (numerator weights (1+γ)w⁺ + w⁻, denominator (1+γ)z⁺ − z⁻, which do not match
  and so do not conserve), dense LRP-epsilon with the bias in z (eqs. 23–26), max-pool
  winner-take-all with ties split (eq. 27), attention by the head-averaged normalised attention
  weights (eq. 28), LayerNorm eq. 29 (R·γ/σ), Add split equally (eq. 32), LSTM by |W| (eq. 33;
  |W| summed over the four gate blocks), the Concatenate output averages the relevance of its
  consumers (eq. 34), ReLU/Activation pass relevance through.
* ``conservative`` — rules that conserve relevance: z in every linear rule excludes the bias,
  conv LRP-gamma with matching numerator and denominator, dense LRP-epsilon with a tiny
  stabiliser, Add by the z-rule, attention AttnLRP-style (softmax weights frozen, relevance
  through the value path), LayerNorm as a linear map with the standard deviation frozen, LSTM
  signal-take-all (Arras et al. 2017: gates are constants, relevance follows the cell input),
  BatchNormalization folded into the preceding conv/dense.
* ``epsilon`` — the conservative set's rules (z-rule Add, frozen softmax and standard deviation,
  signal-take-all LSTM, folded BatchNormalization) with every bias in its denominator, as
  LRP-ε is usually defined (Bach et al. 2015; Montavon et al. 2019): a bias absorbs its share
  of the relevance instead of having it pushed onto the inputs, conv and dense rules are
  LRP-ε (γ = 0; dense ε = 0.01 as in the paper, 1e-6 elsewhere), LayerNorm's β and the
  attention projections' biases sit in their denominators too. On a piecewise-linear network
  with ε → 0 this is gradient × input. It does not conserve (the layer table shows what the
  biases absorb), but it is the one of the three whose feature rankings track the trained
  quick Multimodal-RUL on FEMTO windows (README, Explanations): with bias-free denominators,
  units whose activation comes mostly from a bias (BatchNormalization shifts; the mostly blank
  ImR raster leaves about 80 % of the first convolution's outputs with z = 0) divide their
  relevance by a near-zero z and hand large opposite-signed amounts to the few inputs there.

Relevance that reaches a bias or a gate is lost; the engine reports each layer's sums.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import tensorflow as tf

from rul_core.errors import RulError

Tensor = tf.Tensor


class UnsupportedLayerError(RulError):
    """The LRP engine has no rule for a layer (its name and class are in the message)."""


@dataclass(frozen=True)
class RuleSet:
    """Parameters of one family of LRP rules.

    ``epsilon`` stabilises every denominator (z + ε·sign(z)); ``dense_epsilon`` is the ε of the
    dense LRP-epsilon rule; ``gamma`` the γ of the conv LRP-gamma rule; ``bias_in_z`` whether
    biases take part in denominators (they then absorb relevance).
    """

    name: str
    gamma: float
    dense_epsilon: float
    epsilon: float
    bias_in_z: bool
    conv: str  # "paper_gamma" | "gamma"
    add: str  # "equal" | "z"
    attention: str  # "weights" | "value_path"
    layernorm: str  # "eq29" | "linear"
    lstm: str  # "weights" | "signal_take_all"
    concat_fanout: str  # "mean" | "sum"
    fold_batchnorm: bool = True


PAPER = RuleSet(
    name="paper",
    gamma=0.25,
    dense_epsilon=1e-2,
    epsilon=1e-9,
    bias_in_z=True,
    conv="paper_gamma",
    add="equal",
    attention="weights",
    layernorm="eq29",
    lstm="weights",
    concat_fanout="mean",
)

CONSERVATIVE = RuleSet(
    name="conservative",
    gamma=0.25,
    dense_epsilon=1e-9,
    epsilon=1e-9,
    bias_in_z=False,
    conv="gamma",
    add="z",
    attention="value_path",
    layernorm="linear",
    lstm="signal_take_all",
    concat_fanout="sum",
)

#: LRP-0 everywhere (γ = 0, no ε): equals gradient × input on bias-free ReLU networks.
LRP0 = replace(CONSERVATIVE, name="lrp0", gamma=0.0, dense_epsilon=0.0)

#: LRP-ε with biases in every denominator (they absorb relevance), the conservative set's
#: treatment of Add, attention, LayerNorm and LSTM otherwise.
EPSILON = replace(CONSERVATIVE, name="epsilon", gamma=0.0, dense_epsilon=1e-2, epsilon=1e-6,
                  bias_in_z=True)

RULE_SETS: dict[str, RuleSet] = {"paper": PAPER, "conservative": CONSERVATIVE,
                                 "epsilon": EPSILON, "lrp0": LRP0}

#: The rule sets offered on the Explain page and by the CLI.
OFFERED_RULES: tuple[str, ...] = ("paper", "conservative", "epsilon")


def get_rule_set(rules: str | RuleSet) -> RuleSet:
    """Resolve a rule-set name (``paper``, ``conservative``, ``epsilon``, ``lrp0``) or pass
    one through."""
    if isinstance(rules, RuleSet):
        return rules
    try:
        return RULE_SETS[str(rules)]
    except KeyError:
        raise RulError(
            f"rules: expected one of {sorted(RULE_SETS)}, found {rules!r}"
        ) from None


# ---------------------------------------------------------------------------------------------
# numerical helpers


def stabilise(z: Tensor, eps: float) -> Tensor:
    """z + ε·sign(z) (sign(0) = +1), never exactly zero when ε > 0."""
    z = tf.convert_to_tensor(z)
    sign = tf.where(z >= 0, tf.ones_like(z), -tf.ones_like(z))
    out = z + eps * sign
    # Where z and eps are both 0 the ratio R/z is defined as 0 below.
    return out


def safe_divide(num: Tensor, den: Tensor) -> Tensor:
    """num / den with 0 where den == 0."""
    den = tf.convert_to_tensor(den)
    ok = tf.not_equal(den, 0)
    return tf.where(ok, num / tf.where(ok, den, tf.ones_like(den)), tf.zeros_like(den))


def vjp(fn: Callable[[Tensor], Tensor], x: Tensor, cotangent: Tensor) -> Tensor:
    """Vector-Jacobian product of ``fn`` at ``x`` (the adjoint of a linear map)."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = fn(x)
    grad = tape.gradient(z, x, output_gradients=tf.cast(cotangent, z.dtype))
    return tf.zeros_like(x) if grad is None else grad


def linear_rule(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    relevance: Tensor,
    eps: float,
    denominator: Tensor | None = None,
) -> Tensor:
    """Generic LRP for a linear map z = fn(x): R_i = x_i Σ_j ∂z_j/∂x_i · R_j / z_j.

    ``denominator`` overrides z (e.g. to add a bias or use the paper's gamma denominator).
    """
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = fn(x)
    den = z if denominator is None else denominator
    s = safe_divide(tf.cast(relevance, z.dtype), stabilise(den, eps))
    c = tape.gradient(z, x, output_gradients=s)
    return x * c


def _as_list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


# ---------------------------------------------------------------------------------------------
# rule objects


class Rule:
    """Base rule: ``forward`` computes the layer's output at explanation time, ``backward``
    returns one relevance tensor per input KerasTensor of the node (same order)."""

    #: True when the layer is a terminal (model input).
    terminal = False

    def forward(self, layer: Any, args: tuple, kwargs: dict) -> Any:
        """Default forward: call the layer in inference mode."""
        if "training" in _call_params(layer):
            kwargs = {**kwargs, "training": False}
        return layer(*args, **kwargs)

    def backward(
        self, layer: Any, node: Any, ctx: BackwardContext, relevance: Tensor
    ) -> list[Tensor]:
        raise NotImplementedError


def _call_params(layer: Any) -> tuple[str, ...]:
    import inspect

    try:
        return tuple(inspect.signature(layer.call).parameters)
    except (TypeError, ValueError):
        return ()


@dataclass
class BackwardContext:
    """What a rule may look at: recorded tensor values and the rule set. ``checks`` collects
    the consistency checks of a graph-mode (compiled) pass as (message, passed) pairs: there
    a rule cannot read a tensor's value, so the caller raises after the run (eagerly the rule
    raises at once; :meth:`require`)."""

    values: dict[int, Tensor]
    rules: RuleSet
    checks: list[tuple[str, Tensor]] = field(default_factory=list)
    cancel: Any = None  # a rul_core.progress.CancelToken, checked per time step (step())

    def step(self) -> None:
        """A recurrent rule's time step: raise if the caller cancelled (the Explain page's
        warm-up pauses here while a click runs: rul_core.explain.warm)."""
        from rul_core.progress import check

        check(self.cancel)

    def value(self, keras_tensor: Any) -> Tensor:
        """The recorded value of a KerasTensor of the graph."""
        return self.values[id(keras_tensor)]

    def require(self, passed: Tensor, message: str) -> None:
        """Raise :class:`UnsupportedLayerError` with ``message`` unless ``passed`` (a boolean
        scalar tensor) holds; in graph mode, record the check for the caller instead."""
        if tf.executing_eagerly():
            if not bool(passed):
                raise UnsupportedLayerError(message)
        else:
            self.checks.append((message, passed))


class InputRule(Rule):
    """Model inputs: relevance stops here."""

    terminal = True

    def backward(self, layer, node, ctx, relevance):
        return []


class IdentityRule(Rule):
    """Dropout/MCDropout/noise layers: identity in the forward and backward pass."""

    def forward(self, layer, args, kwargs):
        return args[0]

    def backward(self, layer, node, ctx, relevance):
        return [relevance]


class PassThroughRule(Rule):
    """ReLU/Activation layers: relevance passes through unchanged."""

    def backward(self, layer, node, ctx, relevance):
        return [relevance]


class AdjointRule(Rule):
    """Shape-only layers (Reshape, Flatten, Permute, Cropping, ZeroPadding): map back."""

    def backward(self, layer, node, ctx, relevance):
        x = ctx.value(node.input_tensors[0])
        return [vjp(lambda v: layer(v), x, relevance)]


class LinearZRule(Rule):
    """Linear parameter-free layers (AveragePooling, GlobalAveragePooling, Resizing,
    UpSampling): the z-rule through the layer's own linear map."""

    def backward(self, layer, node, ctx, relevance):
        x = ctx.value(node.input_tensors[0])
        return [linear_rule(lambda v: layer(v), x, relevance, ctx.rules.epsilon)]


def _affine_parts(layer: Any) -> tuple[Tensor, Tensor | None]:
    kernel = tf.convert_to_tensor(layer.kernel)
    bias = tf.convert_to_tensor(layer.bias) if getattr(layer, "use_bias", False) else None
    return kernel, bias


def _conv_fn(layer: Any) -> Callable[[Tensor, Tensor], Tensor]:
    """x, kernel -> bias-free convolution exactly as the layer computes it."""
    padding = getattr(layer, "padding", "valid")
    if padding == "causal":
        dil = layer.dilation_rate[0]
        left = dil * (layer.kernel_size[0] - 1)

        def conv(x, k):
            x = tf.pad(x, [[0, 0], [left, 0], [0, 0]])
            return layer.convolution_op(x, k)

        return conv
    return lambda x, k: layer.convolution_op(x, k)


def _dense_fn(layer: Any) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda x, k: tf.tensordot(x, k, axes=[[-1], [0]])


def conv_gamma_relevance(
    op: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    relevance: Tensor,
    rules: RuleSet,
    kernel: Tensor,
    bias: Tensor | None,
) -> Tensor:
    """LRP-gamma through z = op(x, kernel) (+ bias), as the rule set prescribes."""
    x = tf.cast(x, kernel.dtype)
    add_bias = bias if (rules.bias_in_z and bias is not None) else None
    g = rules.gamma
    w_pos = tf.maximum(kernel, 0.0)
    w_neg = tf.minimum(kernel, 0.0)
    if rules.conv == "paper_gamma":
        # eqs. 21–22 as printed: numerator (1+γ)w⁺ + w⁻, denominator (1+γ)z⁺ − z⁻.
        w_adj = (1 + g) * w_pos + w_neg
        den = (1 + g) * op(x, w_pos) - op(x, w_neg)
        if add_bias is not None:
            den = den + add_bias
        return linear_rule(lambda v: op(v, w_adj), x, relevance, rules.epsilon, denominator=den)
    w_adj = kernel + g * w_pos
    z = op(x, w_adj)
    if add_bias is not None:
        z = z + add_bias + g * tf.maximum(add_bias, 0.0)
    return linear_rule(lambda v: op(v, w_adj), x, relevance, rules.epsilon, denominator=z)


def _linear_layer_relevance(
    layer: Any,
    x: Tensor,
    relevance: Tensor,
    rules: RuleSet,
    kernel: Tensor,
    bias: Tensor | None,
    is_conv: bool,
) -> Tensor:
    """Conv (LRP-gamma) or Dense (LRP-epsilon) relevance, kernel/bias possibly BN-folded."""
    if is_conv:
        return conv_gamma_relevance(_conv_fn(layer), x, relevance, rules, kernel, bias)
    op = _dense_fn(layer)
    x = tf.cast(x, kernel.dtype)
    z = op(x, kernel)
    if rules.bias_in_z and bias is not None:
        z = z + bias
    return linear_rule(lambda v: op(v, kernel), x, relevance,
                       rules.dense_epsilon + rules.epsilon, denominator=z)


class DenseRule(Rule):
    """Dense: LRP-epsilon on the pre-activation (the activation passes relevance through)."""

    is_conv = False

    def backward(self, layer, node, ctx, relevance):
        x = ctx.value(node.input_tensors[0])
        kernel, bias = _affine_parts(layer)
        return [
            _linear_layer_relevance(layer, x, relevance, ctx.rules, kernel, bias, self.is_conv)
        ]

    def backward_folded(
        self, layer: Any, bn: Any, x: Tensor, relevance: Tensor, rules: RuleSet
    ) -> Tensor:
        """Relevance through this layer followed by a BatchNormalization folded into it."""
        kernel, bias = _affine_parts(layer)
        scale, shift = batchnorm_affine(bn)
        kernel_f = kernel * scale  # broadcast over the output-channel (last) axis
        bias_f = (bias if bias is not None else 0.0) * scale + shift
        return _linear_layer_relevance(layer, x, relevance, rules, kernel_f, bias_f, self.is_conv)


class ConvRule(DenseRule):
    """Conv1D/Conv2D: LRP-gamma (paper eq. 21–22 or the conserving variant)."""

    is_conv = True


def batchnorm_affine(bn: Any) -> tuple[Tensor, Tensor]:
    """BatchNormalization at inference as y = scale·x + shift (per channel)."""
    var = tf.convert_to_tensor(bn.moving_variance)
    mean = tf.convert_to_tensor(bn.moving_mean)
    gamma = tf.convert_to_tensor(bn.gamma) if bn.scale else tf.ones_like(var)
    beta = tf.convert_to_tensor(bn.beta) if bn.center else tf.zeros_like(var)
    scale = gamma / tf.sqrt(var + bn.epsilon)
    return scale, beta - mean * scale


class BatchNormRule(Rule):
    """BatchNormalization not directly after a conv/dense: an elementwise affine layer
    (epsilon rule; bias-free z makes it the identity in the conservative set)."""

    def backward(self, layer, node, ctx, relevance):
        x = ctx.value(node.input_tensors[0])
        if not ctx.rules.bias_in_z:
            return [relevance]
        scale, shift = batchnorm_affine(layer)
        shape = [1] * (len(x.shape) - 1) + [-1]
        if layer.axis not in (-1, len(x.shape) - 1):
            raise UnsupportedLayerError(
                f"layer '{layer.name}' ({type(layer).__name__}): only the last axis is supported"
            )
        scale = tf.reshape(scale, shape)
        shift = tf.reshape(shift, shape)
        z = scale * x
        return [x * scale * safe_divide(relevance, stabilise(z + shift, ctx.rules.epsilon))]


class MaxPoolRule(Rule):
    """MaxPooling1D/2D: winner-take-all, ties split equally (eq. 27)."""

    def backward(self, layer, node, ctx, relevance):
        x = tf.convert_to_tensor(ctx.value(node.input_tensors[0]))
        one_d = len(x.shape) == 3
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise UnsupportedLayerError(
                f"layer '{layer.name}' ({type(layer).__name__}): channels_first pooling"
            )
        pool = tuple(layer.pool_size) + ((1,) if one_d else ())
        strides = tuple(layer.strides) + ((1,) if one_d else ())
        x4 = x[:, :, None, :] if one_d else x
        r4 = tf.convert_to_tensor(relevance)
        r4 = r4[:, :, None, :] if one_d else r4
        h, w = int(x4.shape[1]), int(x4.shape[2])
        if layer.padding == "same":
            oh, ow = -(-h // strides[0]), -(-w // strides[1])
            ph = max((oh - 1) * strides[0] + pool[0] - h, 0)
            pw = max((ow - 1) * strides[1] + pool[1] - w, 0)
        else:
            ph = pw = 0
        pads = [[0, 0], [ph // 2, ph - ph // 2], [pw // 2, pw - pw // 2], [0, 0]]
        xp = tf.pad(x4, pads, constant_values=float("-inf"))
        c = int(x4.shape[3])

        def patches(v: Tensor) -> Tensor:
            p = tf.image.extract_patches(
                v, [1, pool[0], pool[1], 1], [1, strides[0], strides[1], 1], [1, 1, 1, 1],
                "VALID",
            )
            return tf.reshape(p, [-1, p.shape[1], p.shape[2], pool[0] * pool[1], c])

        px = patches(xp)
        y = tf.reduce_max(px, axis=3, keepdims=True)
        winners = tf.cast(tf.equal(px, y), r4.dtype)
        share = winners / tf.reduce_sum(winners, axis=3, keepdims=True)
        r_patch = share * r4[:, :, :, None, :]
        r_patch = tf.reshape(r_patch, [-1, r_patch.shape[1], r_patch.shape[2],
                                       pool[0] * pool[1] * c])
        zeros = tf.zeros_like(xp)
        rp = vjp(lambda v: tf.reshape(patches(v), tf.shape(r_patch)), zeros, r_patch)
        r_in = rp[:, pads[1][0]: pads[1][0] + h, pads[2][0]: pads[2][0] + w, :]
        return [r_in[:, :, 0, :] if one_d else r_in]


class GlobalMaxPoolRule(Rule):
    """GlobalMaxPooling1D/2D: winner-take-all over the pooled axes, ties split."""

    def backward(self, layer, node, ctx, relevance):
        x = tf.convert_to_tensor(ctx.value(node.input_tensors[0]))
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise UnsupportedLayerError(
                f"layer '{layer.name}' ({type(layer).__name__}): channels_first pooling"
            )
        axes = list(range(1, len(x.shape) - 1))
        y = tf.reduce_max(x, axis=axes, keepdims=True)
        winners = tf.cast(tf.equal(x, y), x.dtype)
        share = winners / tf.reduce_sum(winners, axis=axes, keepdims=True)
        r = tf.reshape(relevance, [-1] + [1] * len(axes) + [x.shape[-1]])
        return [share * tf.cast(r, x.dtype)]


class ConcatenateRule(Rule):
    """Concatenate: relevance split back by position along the concatenation axis."""

    def backward(self, layer, node, ctx, relevance):
        sizes = [int(ctx.value(t).shape[layer.axis]) for t in node.input_tensors]
        return list(tf.split(relevance, sizes, axis=layer.axis))


class AddRule(Rule):
    """Add: equal split (paper eq. 32) or the z-rule R_i = x_i / Σx · R (conservative)."""

    def backward(self, layer, node, ctx, relevance):
        xs = [tf.convert_to_tensor(ctx.value(t)) for t in node.input_tensors]
        if ctx.rules.add == "equal":
            return [relevance / len(xs) * tf.ones_like(x) for x in xs]
        total = tf.add_n([tf.broadcast_to(x, relevance.shape) for x in xs])
        s = safe_divide(relevance, stabilise(total, ctx.rules.epsilon))
        outs = []
        for x in xs:
            r = tf.broadcast_to(x, relevance.shape) * s
            outs.append(_unbroadcast(r, x.shape))
        return outs


def _unbroadcast(r: Tensor, shape: Sequence[int]) -> Tensor:
    """Sum a broadcast relevance back to ``shape``."""
    axes = [i for i, (a, b) in enumerate(zip(r.shape, shape, strict=True)) if a != b and b == 1]
    return tf.reduce_sum(r, axis=axes, keepdims=True) if axes else r


class LayerNormRule(Rule):
    """LayerNormalization: eq. 29 (R·γ/σ) or linear with the std frozen (AttnLRP)."""

    def backward(self, layer, node, ctx, relevance):
        x = tf.convert_to_tensor(ctx.value(node.input_tensors[0]))
        axes = [a % len(x.shape) for a in _as_list(layer.axis)]
        mean = tf.reduce_mean(x, axis=axes, keepdims=True)
        var = tf.reduce_mean(tf.square(x - mean), axis=axes, keepdims=True)
        if getattr(layer, "rms_scaling", False):
            std = tf.sqrt(tf.reduce_mean(tf.square(x), axis=axes, keepdims=True) + layer.epsilon)
            mean = tf.zeros_like(mean)
        else:
            std = tf.sqrt(var + layer.epsilon)
        gamma = tf.convert_to_tensor(layer.gamma) if layer.scale else tf.ones(x.shape[-1])
        if ctx.rules.layernorm == "eq29":
            return [gamma * relevance / std]
        rms = getattr(layer, "rms_scaling", False)

        def fn(v: Tensor) -> Tensor:
            centred = v if rms else v - tf.reduce_mean(v, axis=axes, keepdims=True)
            return gamma * centred / std

        # with biases in z the denominator is the layer's output (β included)
        den = tf.convert_to_tensor(ctx.value(node.outputs[0])) if ctx.rules.bias_in_z else None
        return [linear_rule(fn, x, relevance, ctx.rules.epsilon, denominator=den)]


class AttentionRule(Rule):
    """MultiHeadAttention (self- or cross-attention, query/value/key as called).

    ``weights`` (paper eq. 28): output relevance at position t goes to the value positions s in
    proportion to the head-averaged normalised attention weights A[t, s]; features pass
    through. ``value_path`` (AttnLRP): softmax weights frozen, the layer is then linear in the
    value input and the z-rule runs through value projection, weighting and output
    projection; query and key get no relevance.
    """

    def forward(self, layer, args, kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k != "return_attention_scores"}
        return layer(*args, training=False, **kwargs)

    def backward(self, layer, node, ctx, relevance):
        args, kwargs = node.arguments.fill_in(ctx.values)
        named = dict(zip(("query", "value", "key"), args, strict=False))
        named.update({k: v for k, v in kwargs.items() if k in ("query", "value", "key")})
        extra = {k: v for k, v in kwargs.items() if k not in ("query", "value", "key",
                                                               "return_attention_scores")}
        query, value = named["query"], named["value"]
        key = named.get("key")
        if key is None:
            key = value
        _, scores = layer(query, value, key, return_attention_scores=True, training=False,
                          **extra)
        if getattr(layer, "_use_gate", False):
            raise UnsupportedLayerError(
                f"layer '{layer.name}' ({type(layer).__name__}): gated attention"
            )
        # scores: (B, heads, T, S)
        if ctx.rules.attention == "weights":
            weights = tf.reduce_mean(scores, axis=1)  # (B, T, S), rows sum to 1
            rel_s = tf.reduce_sum(relevance, axis=-1)  # (B, T)
            if value.shape[-1] == relevance.shape[-1]:
                r_value = tf.einsum("bts,btf->bsf", weights, relevance)
            else:
                per_pos = tf.einsum("bts,bt->bs", weights, rel_s)
                r_value = per_pos[..., None] * tf.ones_like(value) / value.shape[-1]
            r_query = tf.zeros_like(query)
        else:
            vd, od = layer._value_dense, layer._output_dense
            frozen = tf.stop_gradient(scores)

            def fn(v: Tensor) -> Tensor:
                proj = tf.einsum(vd.equation, v, vd.kernel)
                mixed = tf.einsum(layer._combine_equation, frozen, proj)
                return tf.einsum(od.equation, mixed, od.kernel)

            # with biases in z the denominator is the layer's output (the value and output
            # projections' biases included; the softmax weights are the same frozen ones)
            den = (tf.convert_to_tensor(ctx.value(node.outputs[0])) if ctx.rules.bias_in_z
                   else None)
            r_value = linear_rule(fn, value, relevance, ctx.rules.epsilon, denominator=den)
            r_query = tf.zeros_like(query)
        by_role = {"query": r_query, "value": r_value, "key": tf.zeros_like(key)}
        # map back onto the node's KerasTensors (flatten order of args then kwargs)
        roles = _tensor_roles(node)
        return [by_role.get(role, tf.zeros_like(ctx.value(t)))
                for role, t in zip(roles, node.input_tensors, strict=True)]


def _tensor_roles(node: Any) -> list[str]:
    """The argument name ('query', 'value', 'key', ...) of each input KerasTensor."""
    from keras.src import tree
    from keras.src.backend import KerasTensor

    names = ("query", "value", "key")
    roles: list[str] = []
    for i, a in enumerate(node.arguments.args):
        for t in tree.flatten(a):
            if isinstance(t, KerasTensor):
                roles.append(names[i] if i < len(names) else f"arg{i}")
    for k, v in sorted(node.arguments.kwargs.items()):
        for t in tree.flatten(v):
            if isinstance(t, KerasTensor):
                roles.append(k)
    return roles


class _GatedRecurrence:
    """Shared signal-take-all / |W| machinery for LSTM and ConvLSTM (one time loop)."""

    def _check(self, layer: Any, node: Any) -> None:
        cell = layer.cell
        act = getattr(cell.activation, "__name__", "")
        rec = getattr(cell.recurrent_activation, "__name__", "")
        bad = []
        if act != "tanh":
            bad.append(f"activation {act}")
        if rec not in ("sigmoid", "hard_sigmoid"):
            bad.append(f"recurrent_activation {rec}")
        if getattr(layer, "stateful", False):
            bad.append("stateful")
        if getattr(layer, "return_state", False):
            bad.append("return_state")
        if len(node.input_tensors) != 1:
            bad.append("initial_state/mask inputs")
        if bad:
            raise UnsupportedLayerError(
                f"layer '{layer.name}' ({type(layer).__name__}): unsupported "
                + ", ".join(bad)
            )

    # subclasses provide in_op(layer, feat, w) and rec_op(layer, h, w); a nonlinear
    # input-to-state path overrides features()/features_backward().
    def features(self, layer: Any, x: Tensor) -> tuple[Tensor, Any]:
        """The input of the gate convolution/matmul (the input itself by default)."""
        return x, None

    def features_backward(
        self, layer: Any, x: Tensor, cache: Any, relevance: Tensor, rules: RuleSet
    ) -> Tensor:
        """Relevance of the input given that of the gate input (identity by default)."""
        return relevance

    def backward(self, layer, node, ctx, relevance):
        self._check(layer, node)
        x = tf.convert_to_tensor(ctx.value(node.input_tensors[0]))
        y = tf.convert_to_tensor(ctx.value(node.outputs[0]))
        seq = bool(layer.return_sequences)
        if layer.go_backwards:
            x = tf.reverse(x, axis=[1])
            if seq:
                relevance = tf.reverse(relevance, axis=[1])
                y = tf.reverse(y, axis=[1])
        if ctx.rules.lstm == "weights":
            r_x = self._weights_rule(layer, x, relevance, seq, ctx)
        else:
            r_x = self._signal_take_all(layer, x, y, relevance, seq, ctx)
        if layer.go_backwards:
            r_x = tf.reverse(r_x, axis=[1])
        return [r_x]

    def _weights_rule(self, layer, x, relevance, seq, ctx):
        """eq. 33: R_in[t, f] = Σ_h |w_fh| / Σ_f' |w_f'h| · R_out[t, h] (|W| over the gates)."""
        rules = ctx.rules
        kernel = tf.convert_to_tensor(layer.cell.kernel)
        w_abs = tf.add_n([tf.abs(k) for k in tf.split(kernel, 4, axis=-1)])
        T = x.shape[1]
        if not seq:
            pad = [[0, 0], [T - 1, 0]] + [[0, 0]] * (len(relevance.shape) - 1)
            relevance = tf.pad(relevance[:, None], pad)
        outs = []
        for t in range(T):
            ctx.step()
            feat, cache = self.features(layer, x[:, t])
            ones = tf.ones_like(feat)
            r_feat = linear_rule(lambda v: self.in_op(layer, v, w_abs), ones, relevance[:, t],
                                 rules.epsilon)
            outs.append(self.features_backward(layer, x[:, t], cache, r_feat, rules))
        return tf.stack(outs, axis=1)

    def _signal_take_all(self, layer, x, y, relevance, seq, ctx):
        """Arras et al. 2017: h_t = o·tanh(c_t) gives all to c_t; c_t = f·c_{t−1} + i·g_t
        splits by the z-rule; g_t = tanh(W x_t + U h_{t−1} + b) by the (bias-free) z-rule."""
        rules = ctx.rules
        cell = layer.cell
        W = tf.split(tf.convert_to_tensor(cell.kernel), 4, axis=-1)
        U = tf.split(tf.convert_to_tensor(cell.recurrent_kernel), 4, axis=-1)
        if getattr(cell, "use_bias", True):
            B = tf.split(tf.convert_to_tensor(cell.bias), 4, axis=-1)
        else:
            B = [0.0] * 4
        rec_act = tf.sigmoid if cell.recurrent_activation.__name__ == "sigmoid" else (
            lambda v: tf.clip_by_value(v / 6.0 + 0.5, 0.0, 1.0))
        T = x.shape[1]
        h = None
        c = None
        hs, cs, gates, feats = [], [], [], []
        for t in range(T):
            ctx.step()
            xt, cache = self.features(layer, x[:, t])
            feats.append((xt, cache))
            zx = [self.in_op(layer, xt, W[k]) for k in range(4)]
            if h is None:
                zh = [tf.zeros_like(v) for v in zx]
                h = tf.zeros_like(zx[0])
                c = tf.zeros_like(zx[0])
            else:
                zh = [self.rec_op(layer, h, U[k]) for k in range(4)]
            i = rec_act(zx[0] + zh[0] + B[0])
            f = rec_act(zx[1] + zh[1] + B[1])
            g = tf.tanh(zx[2] + zh[2] + B[2])
            o = rec_act(zx[3] + zh[3] + B[3])
            hs.append(h)
            cs.append(c)
            c = f * c + i * g
            h = o * tf.tanh(c)
            gates.append((i, f, g, zx[2] + zh[2] + (B[2] if rules.bias_in_z else 0.0), c))
        ref = y if not seq else y[:, -1]
        ctx.require(  # np.allclose(h, ref, atol=1e-4, rtol=1e-3)
            tf.reduce_all(tf.abs(h - ref) <= 1e-4 + 1e-3 * tf.abs(ref)),
            f"layer '{layer.name}' ({type(layer).__name__}): recomputed LSTM states do not "
            "match the layer output")
        eps = rules.epsilon
        r_h = tf.zeros_like(h)
        r_c = tf.zeros_like(h)
        r_x = [None] * T
        for t in reversed(range(T)):
            ctx.step()
            i, f, g, zg, c_t = gates[t]
            h_prev, c_prev = hs[t], cs[t]
            r_ext = relevance[:, t] if seq else (relevance if t == T - 1 else 0.0)
            r_c_t = r_c + r_h + r_ext
            den = stabilise(c_t, eps)
            r_cprev = safe_divide(f * c_prev, den) * r_c_t
            r_g = safe_divide(i * g, den) * r_c_t
            s = safe_divide(r_g, stabilise(zg, eps))
            xt, cache = feats[t]
            r_feat = xt * vjp(lambda v: self.in_op(layer, v, W[2]), xt, s)
            r_x[t] = self.features_backward(layer, x[:, t], cache, r_feat, rules)
            r_h = h_prev * vjp(lambda v: self.rec_op(layer, v, U[2]), h_prev, s)
            r_c = r_cprev
        return tf.stack(r_x, axis=1)


class LSTMRule(_GatedRecurrence, Rule):
    """LSTM: |W| (eq. 33) or signal-take-all (Arras et al. 2017)."""

    @staticmethod
    def in_op(layer, x, w):
        return tf.matmul(x, w)

    @staticmethod
    def rec_op(layer, h, w):
        return tf.matmul(h, w)


class ConvLSTMRule(_GatedRecurrence, Rule):
    """ConvLSTM1D/2D/3D: as LSTM with the cell's own input and recurrent convolutions."""

    @staticmethod
    def in_op(layer, x, w):
        return layer.cell.input_conv(x, w, None, padding=layer.cell.padding)

    @staticmethod
    def rec_op(layer, h, w):
        return layer.cell.recurrent_conv(h, w)


class ResConvLSTMRule(ConvLSTMRule):
    """rul_core's ResConvLSTM2D: ConvLSTM whose input-to-state path is a stack of residual
    units relu(conv(relu(conv(x))) + skip); relevance of the gate input goes back through the
    units with the conv (gamma), Add and ReLU rules of the rule set."""

    @staticmethod
    def in_op(layer, x, w):
        return layer.cell._conv(x, w)

    @staticmethod
    def rec_op(layer, h, w):
        return layer.cell._conv(h, w)

    def features(self, layer, x):
        cell = layer.cell
        cache = []
        for unit in cell.res_weights:
            a1 = tf.nn.relu(cell._conv(x, unit[0], unit[1]))
            y = cell._conv(a1, unit[2], unit[3])
            skip = cell._conv(x, unit[4]) if len(unit) == 5 else x
            cache.append((x, a1, y, skip))
            x = tf.nn.relu(y + skip)
        return x, cache

    def features_backward(self, layer, x, cache, relevance, rules):
        conv = layer.cell._conv
        r = relevance
        for unit, (x_in, a1, y, skip) in zip(
            reversed(layer.cell.res_weights), reversed(cache), strict=True
        ):
            if rules.add == "equal":
                r_y, r_skip = r / 2, r / 2
            else:
                s = safe_divide(r, stabilise(y + skip, rules.epsilon))
                r_y, r_skip = y * s, skip * s
            k1, b1, k2, b2 = (tf.convert_to_tensor(w) for w in unit[:4])
            r_a1 = conv_gamma_relevance(conv, a1, r_y, rules, k2, b2)
            r_x = conv_gamma_relevance(conv, x_in, r_a1, rules, k1, b1)
            if len(unit) == 5:
                r_x = r_x + conv_gamma_relevance(conv, x_in, r_skip, rules,
                                                 tf.convert_to_tensor(unit[4]), None)
            else:
                r_x = r_x + r_skip
            r = r_x
        return r


class NestedModelRule(Rule):
    """A functional model used as a layer: the engine recurses into its graph."""


# ---------------------------------------------------------------------------------------------
# registry (by class, most specific first; custom classes may also register by class name)

_BY_NAME: dict[str, Rule] = {
    "MCDropout": IdentityRule(),
    "MonteCarloDropout": IdentityRule(),
    "PositiveSigma": PassThroughRule(),  # softplus + ε on RC-LSTM's sigma tower
    "ResConvLSTM2D": ResConvLSTMRule(),
}


def _class_table() -> list[tuple[type, Rule]]:
    import keras
    from keras import layers as L  # noqa: N812

    table: list[tuple[type, Rule]] = [
        (L.InputLayer, InputRule()),
        (keras.Model, NestedModelRule()),
        (L.Conv1D, ConvRule()),
        (L.Conv2D, ConvRule()),
        (L.Conv3D, ConvRule()),
        (L.Dense, DenseRule()),
        (L.BatchNormalization, BatchNormRule()),
        (L.Activation, PassThroughRule()),
        (L.ReLU, PassThroughRule()),
        (L.LeakyReLU, PassThroughRule()),
        (L.ELU, PassThroughRule()),
        (L.PReLU, PassThroughRule()),
        (L.MaxPooling1D, MaxPoolRule()),
        (L.MaxPooling2D, MaxPoolRule()),
        (L.GlobalMaxPooling1D, GlobalMaxPoolRule()),
        (L.GlobalMaxPooling2D, GlobalMaxPoolRule()),
        (L.AveragePooling1D, LinearZRule()),
        (L.AveragePooling2D, LinearZRule()),
        (L.GlobalAveragePooling1D, LinearZRule()),
        (L.GlobalAveragePooling2D, LinearZRule()),
        (L.Resizing, LinearZRule()),
        (L.UpSampling1D, LinearZRule()),
        (L.UpSampling2D, LinearZRule()),
        (L.Flatten, AdjointRule()),
        (L.Reshape, AdjointRule()),
        (L.Permute, AdjointRule()),
        (L.Cropping1D, AdjointRule()),
        (L.Cropping2D, AdjointRule()),
        (L.ZeroPadding1D, AdjointRule()),
        (L.ZeroPadding2D, AdjointRule()),
        (L.Concatenate, ConcatenateRule()),
        (L.Add, AddRule()),
        (L.LayerNormalization, LayerNormRule()),
        (L.MultiHeadAttention, AttentionRule()),
        (L.LSTM, LSTMRule()),
        (L.ConvLSTM1D, ConvLSTMRule()),
        (L.ConvLSTM2D, ConvLSTMRule()),
        (L.Dropout, IdentityRule()),
        (L.SpatialDropout1D, IdentityRule()),
        (L.SpatialDropout2D, IdentityRule()),
        (L.GaussianNoise, IdentityRule()),
        (L.GaussianDropout, IdentityRule()),
        (L.AlphaDropout, IdentityRule()),
    ]
    return table


_TABLE: list[tuple[type, Rule]] | None = None
_CUSTOM: list[tuple[type, Rule]] = []


def register_rule(layer_class: type | str, rule: Rule) -> None:
    """Register a rule for a custom layer class (or its class name)."""
    if isinstance(layer_class, str):
        _BY_NAME[layer_class] = rule
    else:
        _CUSTOM.insert(0, (layer_class, rule))


def rule_for(layer: Any) -> Rule:
    """The rule object for ``layer``; raises :class:`UnsupportedLayerError` if there is none."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _class_table()
    for cls, rule in _CUSTOM:
        if isinstance(layer, cls):
            return rule
    for klass in type(layer).__mro__:
        if klass.__name__ in _BY_NAME:
            return _BY_NAME[klass.__name__]
    for cls, rule in _TABLE:
        if type(layer) is cls:
            return rule
    for cls, rule in _TABLE:
        if isinstance(layer, cls):
            return rule
    raise UnsupportedLayerError(
        f"LRP has no rule for layer '{getattr(layer, 'name', '?')}' of class "
        f"{type(layer).__module__}.{type(layer).__name__}; register one with "
        "rul_core.explain.lrp.rules.register_rule"
    )
