"""From a Run to per-window model inputs: the contract every model and page relies on.

CONTRACT (implemented by the signal pipeline; models, explanations and pages consume it):

- ``PipelineConfig``: window length/stride, optional Gaussian sigma, ImR channel, CWT band.
- ``Normaliser``: per-channel min/max fitted on *training* runs, applied clipped to [0, 1];
  ``to_dict()``/``from_dict()`` so it is stored in a model card.
- ``WindowSet``: per-window features of one run.
    * ``images``: uint8 (n, 64, 500); each value is the number of lit raster pixels (0, 1 or 2)
      in a column pair of the 64x1000 ImR, so ``images / 2`` is the averaged 64x500 raster.
    * ``tf``: float32 (n, channels, 7) — ``[log E, f_d, h, K, sk, mean, std]`` per channel.
    * ``snapshot_index``: int (n,) — the snapshot each window lies in (windows never cross
      snapshot boundaries); ``offset``: int (n,) — first sample of the window in the snapshot.
    * ``image_input(idx)`` -> float32 (k, 64, 500, 1); ``tf_input(channels, idx)`` -> float32
      (k, 7*len(channels), 1) with channel blocks concatenated in the order given.
- ``extract_windows(run, normaliser, config, progress=None, cancel=None) -> WindowSet``.
- ``window_signals(run, normaliser, config, snapshot_idx=None)`` -> float32
  (n, window_length, channels): the normalised raw windows, for RC-LSTM and display.
"""
