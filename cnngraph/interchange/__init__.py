"""Networks in and out of cnngraph: ONNX export (`onnx_export`)."""
