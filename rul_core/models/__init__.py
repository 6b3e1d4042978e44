"""The three published models (Multimodal-RUL, CARLE, RC-LSTM), their layers and heads."""
