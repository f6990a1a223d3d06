package onnx

// NCHWc returns an ONNX model rewritten so that ONNX Runtime (1.17) keeps
// it in its blocked NCHWc layout from the first convolution to the last:
// RewriteDepthwisePad (bottlenecks padded to whole channel blocks; the
// anti-spoof net), RewriteChannelPad (zero-channel Pads as 1x1 Convs; the
// face mesh), then RewritePRelu (per-channel PRelus as BatchNormalization,
// Relu and Add; the face mesh, the recognition and anti-spoof nets), in
// that order: the first reads the PRelus the last replaces. A rewrite with
// nothing to do leaves the model as it is. The outputs stay the model's to
// within float rounding (each rewrite's test and the callers' agreement
// tests: authn/face's TestRuntimesAgree and TestGolden, liveness/facemesh's
// TestRewritesAgree).
func NCHWc(model []byte) ([]byte, error) {
	for _, rewrite := range []func([]byte) ([]byte, int, error){RewriteDepthwisePad, RewriteChannelPad, RewritePRelu} {
		var err error
		if model, _, err = rewrite(model); err != nil {
			return nil, err
		}
	}
	return model, nil
}
