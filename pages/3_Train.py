"""Train: pick a model and bearings, train in the background with live curves, cross-validate
the same settings over bearings, or load a bundle.

Training (every fold of a cross-validation too) runs in a child process
(``rul_core.isolated``), so the server does not keep what TensorFlow leaves behind after every
fit; the model comes back as a checked bundle."""

from __future__ import annotations

import streamlit as st

from rul_core import app_ui, labels, phm2012, plots, ui_state

PAGE = "Train"
CHALLENGE_APPLIED = "train_challenge_applied"
app_ui.header(PAGE)

presets, isolated, crossval, training_mod = app_ui.require_modules(
    "Model training (rul_core.models / rul_core.isolated / rul_core.crossval)",
    "rul_core.models.presets", "rul_core.isolated", "rul_core.crossval", "rul_core.training")

tab_train, tab_load, tab_cv = st.tabs(["Train a model", "Load a bundle",
                                       "Past cross-validations"])

# ----------------------------------------------------------------------------- train
with tab_train:
    dataset = app_ui.current_dataset()
    if dataset is None:
        st.info("Load a dataset on the Data page first.")
    else:
        if st.button("PHM 2012 challenge settings", key="train_challenge",
                     on_click=st.session_state.update,
                     args=(ui_state.challenge_train_state(dataset.run_names),),
                     help="RC-LSTM, capped labels of 50 min, every 6th snapshot, 5 epochs "
                          "without early stopping, every bearing for training and none for "
                          "validation, a seed ensemble of five: the README's challenge command, "
                          "chosen on the answer-free grid proxy of bench/phm2012.py."):
            st.session_state[CHALLENGE_APPLIED] = True  # until the cap or the thinning changes
        mode = st.radio(
            "Run", (ui_state.TRAIN_ONE, ui_state.CROSS_VALIDATE), horizontal=True,
            key="train_mode",
            help="Cross-validation trains the model below once per fold of whole bearings and "
                 "scores every bearing with the model that did not see it: how it will do on "
                 "a new machine. Each fold trains in a fresh process; the result is saved in "
                 "the workspace.")
        cross_validating = mode == ui_state.CROSS_VALIDATE
        c1, c2, c3 = st.columns(3)
        model_name = c1.selectbox("Model", presets.MODEL_NAMES, key="train_model",
                                  format_func={"multimodal": "Multimodal-RUL", "carle": "CARLE",
                                               "rc_lstm": "RC-LSTM"}.get)
        app_ui.keep_valid("train_ablation", presets.ABLATIONS[model_name])
        ablation = c2.selectbox("Ablation", presets.ABLATIONS[model_name], key="train_ablation")
        preset = c3.selectbox("Preset", tuple(presets.PRESETS), key="train_preset",
                              index=list(presets.PRESETS).index("quick"))
        c4, c5, c6 = st.columns(3)
        schemes = app_ui.label_schemes() or ["piecewise"]
        app_ui.keep_valid("train_scheme", schemes)
        scheme = c4.selectbox("Label scheme", schemes, key="train_scheme",
                              index=schemes.index("piecewise") if "piecewise" in schemes else 0)
        intervals = (["gaussian", "ensemble"] if model_name == "rc_lstm"
                     else ["mc_dropout", "ensemble"])
        app_ui.keep_valid("train_interval", intervals)
        interval = c5.selectbox("Uncertainty", intervals, key="train_interval")
        n_members = 1
        if interval == "ensemble":
            n_members = c5.number_input(
                "Ensemble members", 2, 20, phm2012.CHALLENGE_TRAINING["n_members"],
                key="train_members",
                help="Copies trained with seeds seed, seed+1, ...; their predictions are "
                     "averaged and their spread widens the band. Training takes this many "
                     "times longer.")
        hp = presets.PRESETS[preset][model_name]
        epochs = c6.number_input("Epochs", 1, 500, int(hp.get("epochs", 20)), key="train_epochs")
        names = dataset.run_names
        if cross_validating:
            app_ui.keep_valid("cv_runs", names, names)  # another dataset since
            train_names = st.multiselect("Bearings to cross-validate over", names,
                                         default=names, key="cv_runs")
        else:
            app_ui.keep_valid("train_runs", names, names[: max(1, len(names) - 1)])
            train_names = st.multiselect("Training bearings", names,
                                         default=names[: max(1, len(names) - 1)],
                                         key="train_runs")
        label_params: dict = {}
        if scheme == "piecewise":
            label_params["knee_fraction"] = st.slider(
                "Healthy share of life (label 1 before it)", 0.0, 0.9, 0.3, 0.05,
                key="train_knee")
        elif scheme == "capped":
            c_cap, c_log = st.columns(2)
            cap_min = c_cap.number_input(
                "Cap: remaining life counted up to (minutes)", 0.5, 10_000.0, 50.0,
                key="train_cap_min", on_change=st.session_state.pop,
                args=(CHALLENGE_APPLIED, None),
                help="The label is min(time left, cap) / cap. Predictions turn straight into "
                     "minutes left, whatever the bearing's total life (PHM 2012 protocol).")
            cap_runs = [dataset.run(n) for n in train_names] or dataset.runs
            label_params["max_rul"] = app_ui.guarded(
                labels.snapshots_for, 60.0 * cap_min, cap_runs, context="label cap")
            log_min = c_log.number_input(
                "Log scale (minutes; 0: linear labels)", 0.0, 10_000.0, 0.0, key="train_log_min",
                help="Compress the capped labels: log(1 + t/s) / log(1 + cap/s) of the time "
                     "left t, so the loss weighs relative errors near failure (what the PHM "
                     "2012 score punishes) more than errors far from it.")
            if log_min > 0:
                label_params["log_scale"] = app_ui.guarded(
                    labels.snapshots_for, 60.0 * log_min, cap_runs, context="label log scale")
        n_folds, inner_val, val_names, jobs = None, False, [], 1
        if cross_validating:
            cf1, cf2, cf3 = st.columns(3)
            split = cf1.radio(
                "Folds", ("Leave one bearing out", "K groups of bearings"), key="cv_split",
                help="Folds hold whole bearings: windows of one bearing never train and test "
                     "in the same fold (they overlap and share its history).")
            if split != "Leave one bearing out":
                most = max(2, len(train_names) - 1)
                app_ui.clamp_state("cv_folds", most)
                n_folds = int(cf2.number_input("K", 2, most, 2, key="cv_folds",
                                               help="Bearings are shared out at random "
                                                    "(seeded) into K groups of nearly equal "
                                                    "size."))
            inner_val = cf1.checkbox(
                "A validation bearing in every fold", key="cv_inner_val",
                help="The last training bearing of each fold validates (early stopping, band "
                     "calibration) instead of training.")
            most_jobs = max(1, len(train_names))
            app_ui.clamp_state("cv_jobs", most_jobs)
            jobs = int(cf3.number_input(
                "Folds at once", 1, most_jobs, 1, key="cv_jobs",
                help="Train this many folds side by side, each in its own process, with the "
                     "same result as one at a time. Two at once ran a six-fold RC-LSTM "
                     "cross-validation 1.4 times faster on two CPU cores; a GPU takes many "
                     "more. Each fold needs its own memory (quick presets on FEMTO: 1 GB for "
                     "RC-LSTM, 2.5 GB for Multimodal-RUL)."))
        else:
            rest = [n for n in names if n not in train_names]
            app_ui.keep_valid("val_runs", rest, rest)
            val_names = st.multiselect("Validation/test bearings (never mixed with training)",
                                       rest, default=rest, key="val_runs")
            if not rest:
                st.caption("Every bearing trains, so none validates: early stopping and the "
                           "best epoch follow the training error. Leave a bearing out of "
                           "training to validate on it.")
        c7, c8, c9, c10 = st.columns(4)
        seed = c7.number_input("Seed", 0, 10_000, 0, key="train_seed")
        patience = c8.number_input(
            "Early-stopping patience (epochs)", 0, 500, 10, key="train_patience",
            help="Stop when the validation error (the training error without validation "
                 "bearings) has not improved for this many epochs, and keep the best epoch. "
                 "0: train every epoch and keep the last.")
        every = c9.number_input(
            "Use every N-th snapshot", 1, 1000, 1, key="train_every",
            on_change=st.session_state.pop, args=(CHALLENGE_APPLIED, None),
            help="Train on every N-th snapshot counted back from each bearing's last: N times "
                 "fewer windows per epoch. The model then predicts with the same sampling; "
                 "labels still count the recording's snapshots.")
        app_ui.clamp_state("train_phases", int(every))
        phases = c10.number_input(
            "Phase offsets", 1, int(every), 1, key="train_phases",
            help="With every N-th snapshot: also train on the thinnings that end 1, 2, ... "
                 "snapshots before each bearing's last (at most N). More distinct windows, the "
                 "same number of batches per epoch.")
        if st.session_state.get(CHALLENGE_APPLIED) and scheme == "capped":
            notice = app_ui.guarded(ui_state.challenge_short_runs_notice, cap_runs, cap_min,
                                    int(every), context="run lengths")
            if notice:
                st.warning(notice)
        with st.expander("Noise augmentation"):
            ca1, ca2, ca3 = st.columns(3)
            aug_kind = ca1.selectbox(
                "Noise", ui_state.AUGMENTATION_KINDS, key="train_aug_kind",
                format_func=lambda k: k.replace("_", " ").replace("and", "&"),
                help="Also train on noisy copies of every training bearing, with the Noise "
                     "lab's noise, so the model learns to read through it. Validation bearings "
                     "stay clean; an epoch keeps the same number of batches.")
            aug_severity = ca2.number_input(
                "Severity", 0.05, 5.0, 1.0, 0.05, key="train_aug_severity",
                disabled=aug_kind == ui_state.NO_AUGMENTATION,
                help="As in the Noise lab: 1 is the papers' amplitude (Gaussian sigma 0.03 of "
                     "the normalised signal) or fractions (salt & pepper 10 % / 20 %).")
            aug_copies = ca3.number_input(
                "Noisy copies", 1, 10, 1, key="train_aug_copies",
                disabled=aug_kind == ui_state.NO_AUGMENTATION,
                help="Noisy copies per training bearing, each with its own noise; memory "
                     "grows with them.")
        augmentation = app_ui.guarded(ui_state.train_augmentation, aug_kind, aug_severity,
                                      aug_copies, context="noise augmentation")
        if augmentation is not None:
            st.caption(f"Noise augmentation: {augmentation.describe()}.")
        kind = "xjtu" if "xjtu" in (dataset.layout or "").lower() else "femto"
        hp_keys = sorted(presets.ModelConfig(model_name, preset=preset,
                                             dataset_kind=kind).resolved())
        overrides = st.text_area(
            f"{ui_state.HPARAMS_FIELD} (KEY=VALUE, one per line)", key="train_hparams",
            height=68, placeholder="e.g. timesteps=14",
            help="Change the preset's values, as the CLI's --hparam does (values are JSON: "
                 "numbers, lists, \"quoted text\"); the model card lists the result. Keys of "
                 f"this model: {', '.join(hp_keys)}.")
        config = app_ui.guarded(ui_state.train_config, model_name, ablation, preset, kind,
                                int(seed), interval, int(n_members), overrides,
                                context="model configuration")

        job = st.session_state.get(app_ui.TRAIN_JOB)
        running = job is not None and job.running
        params_ok = (all(v is not None for v in label_params.values()) and config is not None
                     and (augmentation is not None or aug_kind == ui_state.NO_AUGMENTATION))
        too_few = len(train_names) < (2 if cross_validating else 1)
        if cross_validating and too_few:
            st.info("Cross-validation needs at least two bearings.")
        if st.button("Start cross-validation" if cross_validating else "Start training",
                     type="primary", key="cv_start" if cross_validating else "train_start",
                     disabled=running or too_few or not params_ok):
            chosen_runs = [dataset.run(n) for n in train_names]
            train_kwargs = {"label_scheme": scheme, "label_params": label_params,
                            "epochs": int(epochs), "patience": int(patience),
                            "snapshot_every": int(every), "snapshot_phases": int(phases),
                            "augmentation": augmentation}
            if cross_validating:
                job_name = f"{ui_state.CROSSVAL_JOB_PREFIX}{model_name}-{ablation}"

                def target(progress, cancel, config=config, runs=chosen_runs, folds=n_folds,
                           inner_val=inner_val, jobs=jobs, kwargs=train_kwargs):
                    return crossval.cross_validate(config, runs, n_folds=folds,
                                                   inner_val=inner_val, jobs=jobs,
                                                   progress=progress, cancel=cancel, **kwargs)
            else:
                job_name = f"{model_name}-{ablation}"
                val_runs = [dataset.run(n) for n in val_names] or None

                def target(progress, cancel, config=config, runs=chosen_runs,
                           val_runs=val_runs, kwargs=train_kwargs):
                    return isolated.train_isolated(config, runs, val_runs=val_runs,
                                                   progress=progress, cancel=cancel, **kwargs)

            st.session_state[app_ui.TRAIN_JOB] = ui_state.start_job(job_name, target)
            st.session_state.pop(app_ui.TRAIN_JOB_COLLECTED, None)
            st.rerun()

        @st.fragment(run_every=1.0 if running else None)
        def job_panel() -> None:
            """Live progress of the training job (re-runs itself every second while it runs)."""
            job = st.session_state.get(app_ui.TRAIN_JOB)
            if job is None:
                return
            last = job.last
            frac = 0.0 if last is None else float(last.extra.get("overall", last.fraction))
            what = ui_state.job_kind(job)
            st.progress(frac, text=ui_state.progress_line(job))
            hist = job.epoch_history()
            if hist:
                app_ui.show_figure(plots.loss_figure(hist, "Training loss"), "loss", PAGE)
            notice = st.session_state.pop(app_ui.CANCEL_NOTICE, None)
            if notice:
                st.toast(notice)
            if job.running:
                st.button(f"Cancel {what.lower()}", key="train_cancel",
                          on_click=app_ui.request_cancel)
            elif (job.status == "done" and not st.session_state.get(app_ui.TRAIN_JOB_COLLECTED)
                  and isinstance(job.result, crossval.CrossValidation)):
                st.session_state["cv_saved"] = app_ui.guarded(
                    ui_state.record_cross_validation, job.result, dataset.name,
                    context="save cross-validation")
                st.session_state[app_ui.TRAIN_JOB_COLLECTED] = True
                st.rerun(scope="app")
            elif job.status == "done" and not st.session_state.get(app_ui.TRAIN_JOB_COLLECTED):
                app_ui.collect_trained_model()
                st.rerun(scope="app")
            elif job.status in ("failed", "cancelled"):
                if job.status == "cancelled":
                    st.warning(ui_state.cancelled_message(job, what))
                else:
                    st.error(f"{what} failed: {job.error}")
                if not st.session_state.get(app_ui.TRAIN_JOB_COLLECTED):
                    st.session_state[app_ui.TRAIN_JOB_COLLECTED] = True
                    st.rerun(scope="app")  # stop polling

        job_panel()

        job = st.session_state.get(app_ui.TRAIN_JOB)
        if (job is not None and job.status == "done"
                and isinstance(job.result, crossval.CrossValidation)):
            if job.late_cancel:
                st.warning(ui_state.late_cancel_message(job, "Cross-validation")
                           + " It is saved in the workspace like any other.")
            app_ui.show_cross_validation(job.result, st.session_state.get("cv_saved"), PAGE)
        elif job is not None and job.status == "done" and job.result is not None:
            trained = job.result
            if job.late_cancel:
                st.warning(ui_state.late_cancel_message(job) + " It is in this session's "
                           "models like any other; it is saved as a bundle only if you save it "
                           "below.")
            stopping = training_mod.stopping_note(trained)
            st.success(f"Trained {ui_state.model_label(trained)} in {job.elapsed:.1f} s "
                       "— now available on Evaluate, Noise lab and Explain."
                       + (f" {stopping}" if stopping else ""))
            st.dataframe({k: [v] for k, v in trained.metrics.items()}, hide_index=True)
            name = st.text_input("Bundle name", value=f"{trained.config.name}-"
                                 f"{trained.config.ablation}-{trained.config.preset}",
                                 key="bundle_name")
            target = ui_state.bundle_path(name)
            replace = False
            if target.exists():
                replace = st.checkbox(f"A bundle named {target.name} exists: replace it",
                                      key="bundle_replace")
            if st.button("Save as bundle in the workspace", key="save_bundle",
                         disabled=target.exists() and not replace):
                path = app_ui.guarded(ui_state.save_model, trained, name, replace=replace,
                                      context="save bundle")
                if path is not None:
                    app_ui.mark_saved(trained)
                    st.success(f"Saved to {path}")

# ----------------------------------------------------------------------------- load
with tab_load:
    if app_ui.optional("rul_core.bundle", "load_bundle") is None:
        app_ui.not_available("Model bundles (rul_core.bundle)")
    else:
        choices: dict[str, str] = {}
        for demo_label, demo_path in ui_state.demo_models().items():
            choices[demo_label] = str(demo_path)
        ws = app_ui.optional("rul_core.workspace", "Workspace")
        if ws is not None and st.button(
                "Find bundles missing from the catalog", key="bundle_rescan",
                help="Catalog the bundle folders in the workspace that the catalog does not "
                     "list (a save interrupted before cataloguing it), after checking their "
                     "cards and checksums; nothing is loaded"):
            found = app_ui.guarded(lambda: ws().rescan_bundles(), context="workspace catalog")
            if found is not None:
                (st.warning if found.skipped else st.success)(found.summary())
                if found.lines():
                    st.code("\n".join(found.lines()), language=None)
        if ws is not None:
            try:
                for row in ws().list_bundles():
                    choices[ui_state.bundle_choice_label(row)] = row["path"]
            except Exception as exc:
                app_ui.show_error(exc, "workspace catalog")
        if choices:
            app_ui.keep_valid("bundle_pick", list(choices))
            pick = st.selectbox("From the catalog", list(choices), key="bundle_pick")
            if st.button("Load", key="bundle_load"):
                trained = app_ui.guarded(app_ui.load_model, choices[pick], context="load bundle")
                if trained is not None:
                    app_ui.session_models()[pick] = trained
                    app_ui.set_model_label(pick)
                    st.success(f"Loaded {pick}")
        path_text = st.text_input("…or a bundle folder on the server", key="bundle_path")
        if path_text and st.button("Load from path", key="bundle_load_path"):
            trained = app_ui.guarded(app_ui.load_model, path_text, context="load bundle")
            if trained is not None:
                app_ui.session_models()[path_text] = trained
                app_ui.set_model_label(path_text)
                st.success(f"Loaded {path_text}")
        files = st.file_uploader("…or upload a bundle (its folder, or a .zip of it)",
                                 accept_multiple_files=True, key="bundle_upload")
        if files and st.button("Load upload", key="bundle_load_upload"):
            path = app_ui.guarded(ui_state.bundle_from_upload,
                                  [(f.name, f.getvalue()) for f in files], context="upload")
            trained = None
            if path is not None:
                trained = app_ui.guarded(app_ui.load_model, path, context="load bundle")
            if trained is not None:
                label = f"upload {path.parent.name}"
                app_ui.session_models()[label] = trained
                app_ui.set_model_label(label)
                st.success(f"Loaded {label}")

    models = app_ui.session_models()
    if models:
        st.subheader("Models in this session")
        pres = app_ui.optional("rul_core.models.presets", "describe")
        for label, m in models.items():
            with st.expander(label):
                if pres is not None:
                    st.markdown(pres(m.config))
                st.json({"train_runs": [r.name for r in m.train_runs],
                         "label_scheme": m.label_scheme, "label_params": m.label_params,
                         "snapshot_every": m.snapshot_every,
                         "augmentation": (m.augmentation.describe()
                                          if m.augmentation is not None else "none"),
                         "metrics": m.metrics})
        drop = st.multiselect("Remove from this session", list(models), key="session_drop",
                              help="The models leave this session's lists; their bundles on "
                                   "disk and in the catalog stay (load them again above).")
        unsaved = app_ui.unsaved_models(drop)
        if unsaved:
            st.warning(f"Not saved as a bundle, so lost once removed: {', '.join(unsaved)}. "
                       "Save it on the first tab first, or tick the box to remove anyway.")
        lose = bool(unsaved) and st.checkbox("Remove them anyway", key="session_drop_unsaved")
        if drop and st.button(f"Remove {len(drop)} model{'s' if len(drop) > 1 else ''}",
                              key="session_drop_go", disabled=bool(unsaved) and not lose):
            gone = app_ui.remove_session_models(drop)
            st.session_state["session_drop_notice"] = (
                f"Removed from this session: {', '.join(gone)} (bundles kept).")
            st.rerun()
    if notice := st.session_state.pop("session_drop_notice", None):
        st.success(notice)

# ----------------------------------------------------------------------------- past runs
with tab_cv:
    past = app_ui.guarded(ui_state.cross_validation_table, context="workspace catalog")
    if past is None or not len(past):
        st.info("No cross-validation in the workspace yet: run one from the first tab, or "
                "with python -m rul_core crossval.")
    else:
        app_ui.show_table(past.drop(columns="path"), "cv-catalog",
                          "Cross-validations in the workspace", PAGE)
        app_ui.keep_valid("cv_past_pick", list(past.index))
        pick = st.selectbox("Open", past.index, key="cv_past_pick",
                            format_func=lambda i: f"#{i} {past.loc[i, 'model']} — "
                                                  f"{past.loc[i, 'created']}")
        loaded = app_ui.guarded(app_ui.load_cross_validation, past.loc[pick, "path"],
                                context="load cross-validation")
        if loaded is not None:
            app_ui.show_cross_validation(loaded, past.loc[pick, "path"], PAGE, key="cv-past")
