"""Model bundles: a directory holding a trained model, its forest head and its card.

Layout of a bundle directory::

    card.json          model config, preset, hyperparameters, pipeline and normaliser
                       parameters, label scheme, training runs + content hashes, metrics,
                       package versions, seed, creation time, input shapes, file checksums
    card.md            the same, human readable (hyperparameter table)
    model.keras        the Keras model (or member_0.keras, member_1.keras, ... for an ensemble)
    forest.skops       the optional random-forest head (skops, never pickle)

Saving writes a temporary directory beside the target and renames it into place; an existing
bundle is replaced only after the new one is complete. Loading refuses any file it does not
expect (pickles, HDF5, ...), checks every file's SHA-256 against the card, refuses Keras
``Lambda`` layers before deserialising anything, loads Keras with ``safe_mode=True`` and the
forest through skops with an explicit trusted-types list, and checks versions and input shapes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

import rul_core
from rul_core.atomic import atomic_dir
from rul_core.config import UPLOAD_RECORD  # may sit beside the card (file names, never read)
from rul_core.device import compute_device
from rul_core.errors import BundleError, RulError
from rul_core.training import RunInfo, TrainedModel

CARD_NAME = "card.json"
CARD_MD_NAME = "card.md"
FOREST_NAME = "forest.skops"
BUNDLE_FORMAT = 1
_MEMBER_RE = re.compile(r"^member_(\d+)\.keras$")
_ALLOWED_FIXED = {CARD_NAME, CARD_MD_NAME, "model.keras", FOREST_NAME}
MAX_KERAS_CONFIG_BYTES = 16 * 2**20  # a model config is kilobytes; refuse to inflate more

# card fields and the JSON types they must have (checked before anything is used)
_CARD_TYPES: dict[str, tuple[type, ...]] = {
    "config": (dict,), "model_files": (list,), "files": (dict,), "versions": (dict,),
    "input_shapes": (list,), "normaliser": (dict,), "pipeline_config": (dict,),
    "train_runs": (list,), "val_runs": (list,), "history": (list,), "metrics": (dict,),
    "label_scheme": (str,), "label_params": (dict,), "seed": (int,), "level": (int, float),
    "created": (str,), "forest_file": (str, type(None)), "augmentation": (dict, type(None)),
}
_JSON_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer",
               float: "a number", type(None): "null"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the packages a bundle depends on."""
    import keras
    import sklearn

    out = {
        "rul_core": rul_core.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "python": sys.version.split()[0],
    }
    try:
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
    except ImportError:  # pragma: no cover - TF is a dependency
        out["tensorflow"] = ""
    try:
        import skops

        out["skops"] = skops.__version__
    except ImportError:  # pragma: no cover
        out["skops"] = ""
    return out


def _to_jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise BundleError(f"cannot store {type(obj).__name__} in a model card (no to_dict())")


def _pipeline_from_dict(d: dict[str, Any]) -> Any:
    from rul_core.signal import pipeline as pl

    cls = pl.PipelineConfig
    if hasattr(cls, "from_dict"):
        return cls.from_dict(d)
    return cls(**d)


def _model_files(trained: TrainedModel) -> list[str]:
    if len(trained.models) == 1:
        return ["model.keras"]
    return [f"member_{i}.keras" for i in range(len(trained.models))]


def _calibration(card: dict[str, Any], card_path: Path) -> list[float] | None:
    """The card's conformal interval factors (101 non-negative numbers), or None."""
    q = card.get("interval_calibration")
    if q is None:
        return None
    from rul_core.models.intervals import CALIBRATION_LEVELS

    ok = isinstance(q, list) and len(q) == len(CALIBRATION_LEVELS) and all(
        isinstance(v, int | float) and v >= 0 for v in q
    )
    if not ok:
        raise BundleError(
            f"{card_path}: field 'interval_calibration': expected {len(CALIBRATION_LEVELS)} "
            f"non-negative numbers, found {str(q)[:80]}"
        )
    return [float(v) for v in q]


def _snapshot_every(card: dict[str, Any], card_path: Path) -> int:
    """The card's snapshot thinning (1 for cards written before it existed)."""
    n = card.get("snapshot_every", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BundleError(
            f"{card_path}: field 'snapshot_every': expected a whole number >= 1, found {n!r}"
        )
    return n


def make_card(trained: TrainedModel) -> dict[str, Any]:
    """The card dict of a trained model (without file checksums)."""
    cfg = trained.config
    return {
        "format": BUNDLE_FORMAT,
        "model": cfg.name,
        "ablation": cfg.ablation,
        "preset": cfg.preset,
        "config": cfg.to_dict(),
        "hyperparameters": cfg.resolved(),
        "uses_forest": bool(cfg.uses_forest),
        "pipeline_config": _to_jsonable(trained.pipeline_config),
        "normaliser": _to_jsonable(trained.normaliser),
        "label_scheme": trained.label_scheme,
        "label_params": trained.label_params,
        "snapshot_every": int(trained.snapshot_every),
        "augmentation": (trained.augmentation.to_dict()
                         if trained.augmentation is not None else None),
        "train_runs": [r.to_dict() for r in trained.train_runs],
        "val_runs": [r.to_dict() for r in trained.val_runs],
        "metrics": trained.metrics,
        "history": trained.history,
        "seed": int(trained.seed),
        "level": float(trained.level),
        "interval_calibration": trained.interval_calibration,
        "created": trained.created,
        "versions": package_versions(),
        "device": compute_device(),
        "input_shapes": trained.input_shapes,
        "model_files": _model_files(trained),
        "forest_file": FOREST_NAME if trained.forest is not None else None,
    }


def _card_markdown(trained: TrainedModel, card: dict[str, Any]) -> str:
    from rul_core.models.presets import describe

    lines = [
        f"# Model card: {card['model']} ({card['ablation']}, preset {card['preset']})",
        "",
        f"Created {card['created']} on {card['device']}, seed {card['seed']}, labels "
        f"{card['label_scheme']}.",
        "",
        "Training runs: " + ", ".join(r["name"] for r in card["train_runs"]),
        "",
        *_sampling_lines(trained),
        *([f"Augmentation: {trained.augmentation.describe()} (the same batches per epoch; "
           "validation runs clean).", ""] if trained.augmentation is not None else []),
        _interval_line(trained),
        "",
        describe(trained.config),
        "",
        "## Metrics",
        "",
        *[f"- {k}: {v:.6g}" for k, v in sorted(card["metrics"].items())],
        "",
    ]
    return "\n".join(lines)


def _sampling_lines(trained: TrainedModel) -> list[str]:
    """The card's note on snapshot thinning (nothing when every snapshot was used)."""
    n = int(trained.snapshot_every)
    if n == 1:
        return []
    phases = int(trained.metrics.get("snapshot_phases", 1))
    offsets = (f" (and from the {phases - 1} snapshot(s) before it: {phases} phase offsets, "
               "the same batches per epoch)" if phases > 1 else "")
    return [f"Sampling: trained on one snapshot in {n}, counted back from each run's last"
            f"{offsets}; predictions use the same sampling.", ""]


def _interval_line(trained: TrainedModel) -> str:
    """How the card's interval is made, and whether it is calibrated."""
    level = round(100 * trained.level)
    if not trained.interval_calibration:
        return f"Interval: {level} % band as the model gives it (no validation runs, uncalibrated)."
    factor = trained.interval_calibration[level]
    val = ", ".join(r.name for r in trained.val_runs)
    return (f"Interval: {level} % band conformally calibrated on {val} (half-widths x "
            f"{factor:.3g} at {level} %).")


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, allow_nan=True)
        f.flush()
        os.fsync(f.fileno())


def _write_contents(trained: TrainedModel, tmp: Path) -> None:
    """Write every file of the bundle into the (empty) directory ``tmp``."""
    card = make_card(trained)
    for name, model in zip(card["model_files"], trained.models, strict=True):
        model.save(tmp / name)
    if trained.forest is not None:
        trained.forest.save(tmp / FOREST_NAME)
    (tmp / CARD_MD_NAME).write_text(_card_markdown(trained, card), encoding="utf-8")
    card["files"] = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.name != CARD_NAME}
    _write_json(tmp / CARD_NAME, card)


def check_bundle_target(path: str | Path) -> Path:
    """The resolved ``path``, if a bundle may be written there: nothing, an empty folder or a
    bundle (replaced); anything else raises BundleError (callers check before training)."""
    target = Path(path).resolve()
    if target.exists() and (
        not target.is_dir() or (any(target.iterdir()) and not (target / CARD_NAME).is_file())
    ):
        raise BundleError(f"{target}: exists and is not a model bundle; refusing to replace it")
    return target


def save_bundle(trained: TrainedModel, path: str | Path, replace: bool = True) -> Path:
    """Write ``trained`` as a bundle directory at ``path`` (atomically; replaces a bundle
    unless ``replace`` is False, when one written meanwhile by another process is kept and
    BundleError raised).

    An existing directory that is not a bundle (no card.json) is never replaced.
    """
    target = check_bundle_target(path)
    try:
        with atomic_dir(target, replace=replace) as tmp:
            _write_contents(trained, tmp)
    except FileExistsError as exc:
        raise BundleError(f"{target}: a bundle or folder of this name appeared while saving; "
                          "not replaced (choose another name or replace it explicitly)") from exc
    return target


# --------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------
def read_card(path: str | Path) -> dict[str, Any]:
    """The parsed card.json of a bundle directory (BundleError when missing or malformed)."""
    bundle = Path(path)
    card_path = bundle / CARD_NAME
    if not bundle.is_dir():
        raise BundleError(f"{bundle}: expected a model bundle directory")
    if not card_path.is_file():
        raise BundleError(f"{card_path}: missing; expected the bundle's model card")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{card_path}: expected JSON, could not parse it ({exc})") from exc
    if not isinstance(card, dict):
        raise BundleError(f"{card_path}: expected a JSON object")
    required = (
        "format",
        "config",
        "model_files",
        "files",
        "versions",
        "input_shapes",
        "normaliser",
        "pipeline_config",
    )
    missing = [k for k in required if k not in card]
    if missing:
        raise BundleError(f"{card_path}: missing field(s) {missing}")
    for key, types in _CARD_TYPES.items():
        value = card.get(key)
        if key in card and (not isinstance(value, types) or isinstance(value, bool)):
            expected = " or ".join(dict.fromkeys(_JSON_NAMES[t] for t in types))
            raise BundleError(f"{card_path}: field {key!r}: expected {expected}, found "
                              f"{json.dumps(value)[:60]}")
    if not card["model_files"] or not all(isinstance(n, str) for n in card["model_files"]):
        raise BundleError(f"{card_path}: field 'model_files': expected a non-empty list of "
                          f"file names, found {json.dumps(card['model_files'])[:60]}")
    if "level" in card and not 0.0 < card["level"] < 1.0:
        raise BundleError(f"{card_path}: field 'level': expected a coverage in (0, 1), found "
                          f"{card['level']}")
    if card["format"] != BUNDLE_FORMAT:
        raise BundleError(
            f"{card_path}: field 'format' is {card['format']!r}; this program reads "
            f"bundle format {BUNDLE_FORMAT}"
        )
    return card


def _check_files(bundle: Path, card: dict[str, Any]) -> None:
    """Refuse unexpected files; verify every expected file's checksum."""
    for p in sorted(bundle.iterdir()):
        if p.name == UPLOAD_RECORD and p.is_file() and not p.is_symlink():
            continue
        if p.name in _ALLOWED_FIXED or _MEMBER_RE.match(p.name):
            if not p.is_file() or p.is_symlink():
                raise BundleError(f"{p}: expected a regular file")
            continue
        raise BundleError(
            f"{p}: unexpected file in a model bundle (only card.json, card.md, *.keras and "
            "forest.skops are allowed; pickles and other executable formats are refused)"
        )
    files = card["files"]
    if not isinstance(files, dict):
        raise BundleError(f"{bundle / CARD_NAME}: field 'files' must map file names to SHA-256")
    for name in card["model_files"]:
        if not (name == "model.keras" or _MEMBER_RE.fullmatch(name)):
            raise BundleError(f"{bundle / CARD_NAME}: field 'model_files': expected model.keras "
                              f"or member_<n>.keras inside the bundle, found {name!r}")
    forest = card.get("forest_file")
    if forest not in (None, "", FOREST_NAME):
        raise BundleError(f"{bundle / CARD_NAME}: field 'forest_file': expected {FOREST_NAME!r} "
                          f"inside the bundle or null, found {forest!r}")
    expected = list(card["model_files"]) + ([forest] if forest else [])
    for name in expected:
        if not (bundle / name).is_file():
            raise BundleError(f"{bundle / name}: missing; the card lists it")
    for name, digest in files.items():
        if not (name in _ALLOWED_FIXED or _MEMBER_RE.match(name)) or name == CARD_NAME:
            raise BundleError(f"{bundle / CARD_NAME}: field 'files' names an unexpected file "
                              f"{name!r}; expected bundle file names only")
        p = bundle / name
        if not p.is_file():
            raise BundleError(f"{p}: missing; the card lists it")
        if _sha256(p) != digest:
            raise BundleError(
                f"{p}: SHA-256 differs from the card (file modified or card tampered with)"
            )
    for name in expected:
        if name not in files:
            raise BundleError(f"{bundle / CARD_NAME}: no checksum for {name}")


def bundle_status(path: str | Path) -> str:
    """What a catalog listing should say of the bundle at ``path``: ``""`` when its card and
    files check out, ``"missing"`` when the folder is gone, else ``"damaged: <why>"`` (the
    file, relative to the bundle, and what was expected). Loads no model; the files are hashed
    once per change of their size or mtime."""
    bundle = Path(path)
    if not bundle.is_dir():
        return "missing"
    try:
        signature = tuple((e.name, e.stat().st_size, e.stat().st_mtime_ns)
                          for e in sorted(os.scandir(bundle), key=lambda e: e.name))
    except OSError as exc:
        return f"damaged: {exc}"
    return _bundle_status(str(bundle), signature)


@functools.lru_cache(maxsize=256)
def _bundle_status(bundle: str, signature: tuple[tuple[str, int, int], ...]) -> str:
    """:func:`bundle_status` of a folder whose entries have ``signature`` (name, size, mtime)."""
    try:
        _check_files(Path(bundle), read_card(bundle))
    except (BundleError, OSError) as exc:
        return "damaged: " + str(exc).replace(f"{bundle}{os.sep}", "")
    return ""


def _major_minor(version: str) -> tuple[int, int]:
    parts = re.findall(r"\d+", str(version))
    return (int(parts[0]) if parts else 0, int(parts[1]) if len(parts) > 1 else 0)


def _check_versions(bundle: Path, card: dict[str, Any]) -> None:
    saved = card["versions"]
    now = package_versions()
    for pkg in ("keras", "tensorflow", "sklearn", "numpy"):
        a, b = saved.get(pkg), now.get(pkg)
        if not a or not b:
            continue
        (ma, mi), (mb, mj) = _major_minor(a), _major_minor(b)
        if ma != mb:
            if pkg == "keras":
                raise BundleError(
                    f"{bundle / CARD_NAME}: saved with keras {a}, this program has keras {b}; "
                    "a different major version cannot load it"
                )
            warnings.warn(
                f"{bundle}: saved with {pkg} {a}, running {b} (major version differs)",
                stacklevel=3,
            )
        elif mi != mj:
            warnings.warn(
                f"{bundle}: saved with {pkg} {a}, running {b} (minor version differs)",
                stacklevel=3,
            )


# Keras's own markers for serialised values (tensors, arrays, ...), never classes to import
_KERAS_VALUE_MARKERS = frozenset({"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__",
                                  "__ellipsis__", "__slice__", "__typespec__"})


def _class_allowed(node: dict[str, Any], registered: dict[str, Any]) -> bool:
    """Whether a ``class_name`` entry of a Keras config names a Keras built-in, one of Keras's
    value markers, or a class/function in rul_core's registry ``registered``."""
    name, module, reg = node.get("class_name"), node.get("module"), node.get("registered_name")
    if not isinstance(name, str):
        return False
    if module is None and name in _KERAS_VALUE_MARKERS:
        return True
    if isinstance(module, str) and (module == "keras" or module.startswith("keras.")):
        return reg in (None, name)
    if (module, name, reg) == ("builtins", "function", "function"):  # a function, by its name
        fn = node.get("config")
        return isinstance(fn, str) and (">" not in fn or fn in registered)
    return isinstance(reg, str) and reg in registered and (
        module is None or module == getattr(registered[reg], "__module__", None))


def _class_nodes(cfg: Any) -> list[dict[str, Any]]:
    """Every dict with a ``class_name`` in a Keras config tree."""
    nodes: list[dict[str, Any]] = []
    if isinstance(cfg, dict):
        if "class_name" in cfg:
            nodes.append(cfg)
        for v in cfg.values():
            nodes.extend(_class_nodes(v))
    elif isinstance(cfg, list):
        for v in cfg:
            nodes.extend(_class_nodes(v))
    return nodes


def _check_keras_archive(path: Path, registered: dict[str, Any]) -> None:
    """Refuse a .keras archive with Lambda layers, classes outside Keras and ``registered``
    (rul_core's custom objects) or unexpected members, before loading."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.namelist()
            bad = [
                m
                for m in members
                if m not in ("config.json", "metadata.json", "model.weights.h5")
                and not m.startswith("assets/")
            ]
            if bad:
                raise BundleError(f"{path}: unexpected member(s) in the Keras archive: {bad}")
            size = zf.getinfo("config.json").file_size
            if size > MAX_KERAS_CONFIG_BYTES:
                raise BundleError(f"{path}: member config.json: expected at most "
                                  f"{MAX_KERAS_CONFIG_BYTES} bytes, found {size}")
            with zf.open("config.json") as fh:  # reads no more than the declared size
                config = json.loads(fh.read(MAX_KERAS_CONFIG_BYTES + 1))
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError) as exc:
        raise BundleError(f"{path}: expected a Keras v3 archive ({exc})") from exc
    nodes = _class_nodes(config)
    if any(node["class_name"] in ("Lambda", "__lambda__") for node in nodes):
        raise BundleError(f"{path}: contains a Lambda layer (arbitrary code); refusing to load")
    for node in nodes:
        if not _class_allowed(node, registered):
            names = ", ".join(sorted(k for k in registered if ">" not in k))
            raise BundleError(
                f"{path}: member config.json: class {node.get('class_name')!r} (registered as "
                f"{node.get('registered_name')!r}, module {node.get('module')!r}) refused; "
                f"expected Keras built-in classes or rul_core's registered ones ({names})")


def load_bundle(path: str | Path) -> TrainedModel:
    """Load a bundle directory written by :func:`save_bundle` (safely; see module doc)."""
    import keras

    from rul_core.models import custom_objects
    from rul_core.models.presets import ModelConfig
    from rul_core.signal.noise import NoiseAugmentation
    from rul_core.signal.pipeline import Normaliser

    bundle = Path(path).resolve()
    card = read_card(bundle)
    card_path = bundle / CARD_NAME
    _check_files(bundle, card)
    _check_versions(bundle, card)
    try:
        config = ModelConfig.from_dict(card["config"])
        normaliser = Normaliser.from_dict(card["normaliser"])
        pipeline_config = _pipeline_from_dict(card["pipeline_config"])
        train_runs = [RunInfo.from_dict(r) for r in card.get("train_runs", [])]
        val_runs = [RunInfo.from_dict(r) for r in card.get("val_runs", [])]
        augmentation = (NoiseAugmentation.from_dict(card["augmentation"])
                        if card.get("augmentation") is not None else None)
    except (RulError, ValueError, TypeError, KeyError) as exc:
        raise BundleError(f"{card_path}: invalid card content: {exc}") from exc

    from rul_core.models.fastconv import use_fast_dilated_conv

    models = []
    registered = custom_objects()
    for name in card["model_files"]:
        p = bundle / name
        _check_keras_archive(p, registered)
        try:
            model = keras.saving.load_model(
                p, custom_objects=registered, safe_mode=True, compile=False
            )
        except Exception as exc:
            raise BundleError(f"{p}: could not load the Keras model: {exc}") from exc
        shapes = [[int(d) for d in t.shape[1:]] for t in model.inputs]
        if shapes != card["input_shapes"]:
            raise BundleError(
                f"{card_path}: field 'input_shapes' is {card['input_shapes']}, but {name} "
                f"takes {shapes}"
            )
        use_fast_dilated_conv(model)  # before any prediction traces the model
        models.append(model)

    forest = None
    if card.get("forest_file"):
        from rul_core.models.heads import ForestHead

        try:
            forest = ForestHead.load(bundle / card["forest_file"])
        except RulError:
            raise
        except Exception as exc:
            raise BundleError(f"{bundle / card['forest_file']}: could not load: {exc}") from exc
    elif config.uses_forest:
        raise BundleError(f"{card_path}: the model uses a forest head but no forest file is listed")

    return TrainedModel(
        config=config,
        models=models,
        normaliser=normaliser,
        pipeline_config=pipeline_config,
        label_scheme=str(card.get("label_scheme", "piecewise")),
        label_params=dict(card.get("label_params", {})),
        forest=forest,
        history=list(card.get("history", [])),
        train_runs=train_runs,
        val_runs=val_runs,
        metrics=dict(card.get("metrics", {})),
        seed=int(card.get("seed", config.seed)),
        level=float(card.get("level", 0.9)),
        interval_calibration=_calibration(card, card_path),
        snapshot_every=_snapshot_every(card, card_path),
        augmentation=augmentation,
        created=str(card.get("created", "")),
    )
