"""Deployment: ONNX export check, int8 quantization, MLflow Model Registry."""
