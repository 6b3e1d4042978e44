"""Hyperparameter overrides that make the models small enough to train in seconds in tests."""

# A CARLE small enough to train in a second or two on 2 cores.
TINY_CARLE = {
    "cnn_filters": [4, 4, 4, 4],
    "lstm_units": [4, 4],
    "attention_heads": 1,
    "attention_key_dim": 4,
    "dense_units": [8, 6, 4],
    "forest_trees": 5,
}

# An RC-LSTM small enough to train an epoch in a second or two (window pooled by 16).
TINY_RC_LSTM = {
    "res_units": 1,
    "res_filters": 4,
    "convlstm_filters": 4,
    "tower_units": 4,
    "pool": 16,
}
