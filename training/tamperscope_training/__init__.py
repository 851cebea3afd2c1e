"""Python tooling for tamperscope: reference fixtures, stand-in ONNX models, model conversion."""
