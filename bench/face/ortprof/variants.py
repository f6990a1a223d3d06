#!/usr/bin/python3
"""Variants of one ONNX model for bench/face/ortprof/experiments.sh (#21).

  variants.py batch N IN OUT   the model with batch N instead of 1 (input
                               dimension 0 and Reshapes to [1, ...]): does
                               batching the key frames save CPU per frame?
  variants.py relu IN OUT      every PRelu replaced by Relu (float): the
                               baseline of the int8 variant below
  variants.py int8 IN OUT      the relu variant with every Conv quantised
                               in ONNX Runtime's QDQ form (uint8
                               activations, int8 per-channel weights, int32
                               bias), which ONNX Runtime fuses into
                               QLinearConv: the speed of int8 kernels

Speed only: the scales are not calibrated and the relu and int8 variants
compute something else than the model. Needs Debian's python3-onnx
(`apt-get install python3-onnx`; not part of the set-up).
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def batch(m, n):
    g = m.graph
    g.input[0].type.tensor_type.shape.dim[0].dim_value = n
    inits = {x.name: x for x in g.initializer}
    for node in g.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            shape = numpy_helper.to_array(inits[node.input[1]]).copy()
            if shape[0] == 1:
                shape[0] = n
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
    for o in g.output:
        if o.type.tensor_type.shape.dim:
            o.type.tensor_type.shape.dim[0].dim_param = "N"
    del g.value_info[:]


def relu(m):
    for node in m.graph.node:
        if node.op_type == "PRelu":
            node.op_type = "Relu"
            del node.input[1:]


ACT_SCALE, ACT_ZERO = 0.05, 128


def int8(m):
    relu(m)
    g = m.graph
    inits = {x.name: x for x in g.initializer}
    new_inits, pre, nodes, done = [], [], [], {}

    def const(name, value):
        new_inits.append(numpy_helper.from_array(value, name))
        return name

    def qdq(x, out):
        s = const(out + "_s", np.array(ACT_SCALE, np.float32))
        z = const(out + "_z", np.array(ACT_ZERO, np.uint8))
        return [helper.make_node("QuantizeLinear", [x, s, z], [out + "_q"]),
                helper.make_node("DequantizeLinear", [out + "_q", s, z], [out])]

    for node in g.node:
        if node.op_type != "Conv":
            nodes.append(node)
            continue
        x = node.input[0]
        if x not in done:
            done[x] = x + "_dq"
            pre += qdq(x, done[x])
        w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        sw = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(1), 1e-8) / 127
        wq = np.clip(np.round(w / sw.reshape(-1, *[1] * (w.ndim - 1))), -127, 127).astype(np.int8)
        wn = node.input[1] + "_q"
        const(wn, wq)
        const(wn + "_s", sw.astype(np.float32))
        const(wn + "_z", np.zeros(w.shape[0], np.int8))
        pre.append(helper.make_node("DequantizeLinear", [wn, wn + "_s", wn + "_z"], [wn + "_dq"], axis=0))
        ins = [done[x], wn + "_dq"]
        if len(node.input) > 2:
            b = numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)
            sb = (ACT_SCALE * sw).astype(np.float32)
            bn = node.input[2] + "_q"
            const(bn, np.round(b / sb).astype(np.int32))
            const(bn + "_s", sb)
            const(bn + "_z", np.zeros(w.shape[0], np.int32))
            pre.append(helper.make_node("DequantizeLinear", [bn, bn + "_s", bn + "_z"], [bn + "_dq"], axis=0))
            ins.append(bn + "_dq")
        out = node.output[0]
        conv = helper.make_node("Conv", ins, [out + "_f"], name=node.name)
        conv.attribute.extend(node.attribute)
        nodes.append(conv)
        nodes += qdq(out + "_f", out)
    # Topological order: the new nodes read values defined further down.
    have = {i.name for i in g.input} | {i.name for i in g.initializer} | {x.name for x in new_inits} | {""}
    todo, order = pre + nodes, []
    while todo:
        ready = [all(i in have for i in n.input) for n in todo]
        if not any(ready):
            raise SystemExit("variants.py: the graph has a cycle")
        for n, r in zip(todo, ready):
            if r:
                order.append(n)
                have.update(n.output)
        todo = [n for n, r in zip(todo, ready) if not r]
    del g.node[:]
    g.node.extend(order)
    g.initializer.extend(new_inits)
    if m.opset_import[0].version < 13:  # per-channel DequantizeLinear
        m.opset_import[0].version = 13


def main(argv):
    if len(argv) < 4 or argv[1] not in ("batch", "relu", "int8"):
        raise SystemExit(__doc__)
    if argv[1] == "batch":
        n, src, dst = int(argv[2]), argv[3], argv[4]
        m = onnx.load(src)
        batch(m, n)
    else:
        src, dst = argv[2], argv[3]
        m = onnx.load(src)
        (relu if argv[1] == "relu" else int8)(m)
    onnx.save(m, dst)


if __name__ == "__main__":
    main(sys.argv)
