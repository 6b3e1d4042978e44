"""Signal pipeline: filters, normaliser, windows, ImR raster, CWT, TF features, noise."""
