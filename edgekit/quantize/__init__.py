"""Quantizers: ONNX Runtime (dynamic INT8, static QDQ INT8, FP16) and NNCF for OpenVINO."""
