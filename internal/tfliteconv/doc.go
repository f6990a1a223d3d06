// Package tfliteconv converts a TFLite model (a FlatBuffers file, first
// subgraph) to an ONNX model (opset 13) that ONNX Runtime runs: today
// MediaPipe's face_landmark.tflite, whose graph uses CONV_2D,
// DEPTHWISE_CONV_2D, PRELU, ADD, PAD, MAX_POOL_2D and DEQUANTIZE of float16
// weights (MUL, RESHAPE, CONCATENATION, AVERAGE_POOL_2D and the plain
// activations are handled too). It is a set-up tool, run by
// cmd/trustid-convert; the service binary does not link it. Its output is
// deterministic, so deploy/models.sha256 pins it.
package tfliteconv
