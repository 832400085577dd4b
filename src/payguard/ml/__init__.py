"""Learned risk score: public-data import, point-in-time training sets, LightGBM, ONNX."""
