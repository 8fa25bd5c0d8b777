#!/usr/bin/python3
"""Builds the golden suite's large models — vision, sequence, quantized and FP16 — and their
inputs, at build time, from a fixed seed:

    /usr/bin/python3 tests/onnx_golden/models.py OUT_DIR

writes OUT_DIR/<model>.onnx, OUT_DIR/<case>.<input>.bin and OUT_DIR/inputs.txt (the format of
generate.py, plus "compare" lines naming each output's tolerance), and OUT_DIR/layers/: one
single-Conv model per distinct convolution of resnet18, for bench/engine's per-layer figures.
reference.js then scores the cases with onnxruntime-node (OUT_DIR/outputs.txt) and
onnx_models_test compares the engine with it.

The models are written node by node with onnx.helper, layer for layer the architectures of
torchvision 0.14 (resnet18, mobilenet_v2, mobilenet_v3_small, squeezenet1_1,
shufflenet_v2_x1_0, efficientnet_b0: same layers, shapes and activations, in the form
torch.onnx.export gives them, BatchNormalization kept as its own node), plus an LSTM and a
bidirectional GRU over sensor sequences, a transformer encoder over token ids, a U-Net-style
segmenter (ConvTranspose, Resize), a detector ending in NonMaxSuppression, a QDQ-quantized
CNN and the same in QLinearConv/QLinearMatMul form, a dynamically quantized MLP, an FP16 CNN,
a float CNN with FP16 and BF16 weights, a camera model's preprocessing (uint8 frames) and a
super-resolution network (PRelu, InstanceNormalization, DepthToSpace, SpaceToDepth); five of
them also as torch exports them at opset 11 (<model>_opset11). Weights are random
(He-scaled normal, so activations keep their size through deep stacks); nothing here is
trained. Each model is scored at batch 1 and batch 8 (cases <model>_b1 and <model>_b8).

Runs with Debian's interpreter and packages only: python3-onnx, python3-numpy. About 5 s.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BATCHES = (1, 8)
F = TensorProto.FLOAT


# ---- a small graph builder ---------------------------------------------------------------

class Builder:
    """Accumulates nodes and initializers; names values v1, v2, ...; weights from one rng."""

    def __init__(self, rng, opset=17):
        self.rng = rng
        self.opset = opset  # 17, or 11 for the older forms torch exports at opset 11
        self.gain = 2.0  # conv weights' variance is gain / fan_in (He's, for ReLU)
        self.nodes, self.inits = [], []
        self.count = 0

    def name(self, hint="v"):
        self.count += 1
        return f"{hint}{self.count}"

    def const(self, array, hint="w"):
        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def i64(self, values):
        return self.const(np.array(values, np.int64), "c")

    def f32(self, values):
        return self.const(np.array(values, np.float32), "c")

    def op(self, op_type, inputs, outputs=1, **attrs):
        outs = [self.name() for _ in range(outputs)] if isinstance(outputs, int) else outputs
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(op_type), **attrs))
        return outs[0] if len(outs) == 1 else outs

    def normal(self, shape, std):
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    # -- layers --
    def conv(self, x, cin, cout, k, stride=1, pad=None, groups=1, bias=False, dilation=1, std=None):
        pad = (k - 1) // 2 * dilation if pad is None else pad
        fan_in = cin // groups * k * k
        w = self.const(self.normal((cout, cin // groups, k, k), std or np.sqrt(self.gain / fan_in)))
        ins = [x, w] + ([self.const(self.normal((cout,), 0.1))] if bias else [])
        return self.op("Conv", ins, kernel_shape=[k, k], strides=[stride, stride],
                       pads=[pad] * 4, group=groups, dilations=[dilation, dilation])

    def bn(self, x, c):
        r = self.rng
        params = [r.uniform(0.8, 1.2, c), r.uniform(-0.1, 0.1, c), r.uniform(-0.1, 0.1, c),
                  r.uniform(0.8, 1.2, c)]
        return self.op("BatchNormalization", [x] + [self.const(p.astype(np.float32)) for p in params],
                       epsilon=1e-5, momentum=0.9)

    def cbr(self, x, cin, cout, k, stride=1, groups=1, act="Relu", dilation=1):
        y = self.bn(self.conv(x, cin, cout, k, stride, groups=groups, dilation=dilation), cout)
        return self.act(y, act)

    def act(self, x, act):
        if act is None:
            return x
        if act == "Relu6":
            return self.op("Clip", [x, self.f32(0.0), self.f32(6.0)])
        if act == "SiLU":
            return self.op("Mul", [x, self.op("Sigmoid", [x])])
        if act == "HardSigmoid":
            return self.op("HardSigmoid", [x], alpha=1.0 / 6, beta=0.5)
        if act == "HardSwish" and self.opset < 14:  # x * hardsigmoid(x), as torch writes it
            return self.op("Mul", [x, self.act(x, "HardSigmoid")])
        return self.op(act, [x])

    # -- operators whose form changed between opset 11 and 17 --
    def unsqueeze(self, x, axes):
        if self.opset < 13:
            return self.op("Unsqueeze", [x], axes=axes)
        return self.op("Unsqueeze", [x, self.i64(axes)])

    def split(self, x, sizes, axis):
        if self.opset < 13:
            return self.op("Split", [x], outputs=len(sizes), axis=axis, split=sizes)
        return self.op("Split", [x, self.i64(sizes)], outputs=len(sizes), axis=axis)

    def resize(self, x, scales=None, sizes=None, **attrs):
        """Resize-11 takes roi and scales as tensors even when empty; Resize-13 omits them."""
        empty = "" if self.opset >= 13 else self.f32(np.zeros(0, np.float32))
        ins = [x, empty, self.f32(scales) if scales else empty] + ([sizes] if sizes else [])
        return self.op("Resize", ins, **attrs)

    def layer_norm(self, x, d):
        scale = self.const(self.rng.uniform(0.8, 1.2, d).astype(np.float32))
        bias = self.const(self.normal((d,), 0.1))
        if self.opset >= 17:
            return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=1e-5)
        # torch's export before opset 17: mean, variance, normalise, scale, shift.
        centred = self.op("Sub", [x, self.op("ReduceMean", [x], axes=[-1], keepdims=1)])
        var = self.op("ReduceMean", [self.op("Pow", [centred, self.f32(2.0)])], axes=[-1], keepdims=1)
        norm = self.op("Div", [centred, self.op("Sqrt", [self.op("Add", [var, self.f32(1e-5)])])])
        return self.op("Add", [self.op("Mul", [norm, scale]), bias])

    def linear(self, x, cin, cout):
        w = self.const(self.normal((cout, cin), np.sqrt(1.0 / cin)))
        b = self.const(self.normal((cout,), 0.1))
        return self.op("Gemm", [x, w, b], alpha=1.0, beta=1.0, transB=1)

    def classifier_head(self, x, cin, classes=1000):
        return self.linear(self.op("Flatten", [self.op("GlobalAveragePool", [x])], axis=1), cin, classes)

    def model(self, inputs, outputs, name):
        g = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)],
                              producer_name="outpost-golden")
        m.ir_version = 8
        return m


def image_input(c=3, h=224, w=224):
    return [helper.make_tensor_value_info("input", F, ["N", c, h, w])]


def out(name, elem=F, rank=2):
    return helper.make_tensor_value_info(name, elem, [f"{name}_{i}" for i in range(rank)])


# ---- torchvision architectures -----------------------------------------------------------

def resnet18(b, convs=None):
    x = b.cbr("input", 3, 64, 7, 2)
    x = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for block in range(2):
            s = stride if block == 0 else 1
            y = b.cbr(x, cin, cout, 3, s)
            y = b.bn(b.conv(y, cout, cout, 3), cout)
            skip = x
            if s != 1 or cin != cout:
                skip = b.bn(b.conv(x, cin, cout, 1, s, pad=0), cout)
            x = b.op("Relu", [b.op("Add", [y, skip])])
            cin = cout
    return b.classifier_head(x, 512)


# resnet18's convolutions at 224x224: (cin, cout, k, stride, input size, how many).
RESNET18_CONVS = [(3, 64, 7, 2, 224, 1), (64, 64, 3, 1, 56, 4), (64, 128, 3, 2, 56, 1),
                  (128, 128, 3, 1, 28, 3), (64, 128, 1, 2, 56, 1), (128, 256, 3, 2, 28, 1),
                  (256, 256, 3, 1, 14, 3), (128, 256, 1, 2, 28, 1), (256, 512, 3, 2, 14, 1),
                  (512, 512, 3, 1, 7, 3), (256, 512, 1, 2, 14, 1)]


def make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def mobilenet_v2(b):
    x = b.cbr("input", 3, 32, 3, 2, act="Relu6")
    cin = 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = x if t == 1 else b.cbr(x, cin, hidden, 1, act="Relu6")
            y = b.cbr(y, hidden, hidden, 3, stride, groups=hidden, act="Relu6")
            y = b.bn(b.conv(y, hidden, c, 1), c)
            x = b.op("Add", [x, y]) if stride == 1 and cin == c else y
            cin = c
    x = b.cbr(x, 320, 1280, 1, act="Relu6")
    return b.classifier_head(x, 1280)


def squeeze_excite(b, x, c, squeeze, inner_act, gate_act):
    s = b.op("GlobalAveragePool", [x])
    s = b.act(b.conv(s, c, squeeze, 1, bias=True), inner_act)
    s = b.act(b.conv(s, squeeze, c, 1, bias=True), gate_act)
    return b.op("Mul", [x, s])


def mobilenet_v3_small(b):
    x = b.cbr("input", 3, 16, 3, 2, act="HardSwish")
    cin = 16
    for k, exp, c, se, act, s in [(3, 16, 16, True, "Relu", 2), (3, 72, 24, False, "Relu", 2),
                                  (3, 88, 24, False, "Relu", 1), (5, 96, 40, True, "HardSwish", 2),
                                  (5, 240, 40, True, "HardSwish", 1), (5, 240, 40, True, "HardSwish", 1),
                                  (5, 120, 48, True, "HardSwish", 1), (5, 144, 48, True, "HardSwish", 1),
                                  (5, 288, 96, True, "HardSwish", 2), (5, 576, 96, True, "HardSwish", 1),
                                  (5, 576, 96, True, "HardSwish", 1)]:
        y = x if exp == cin else b.cbr(x, cin, exp, 1, act=act)
        y = b.cbr(y, exp, exp, k, s, groups=exp, act=act)
        if se:
            y = squeeze_excite(b, y, exp, make_divisible(exp // 4), "Relu", "HardSigmoid")
        y = b.bn(b.conv(y, exp, c, 1), c)
        x = b.op("Add", [x, y]) if s == 1 and cin == c else y
        cin = c
    x = b.cbr(x, 96, 576, 1, act="HardSwish")
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    x = b.act(b.linear(x, 576, 1024), "HardSwish")
    return b.linear(x, 1024, 1000)


def squeezenet1_1(b):
    def fire(x, cin, sq, e1, e3):
        s = b.op("Relu", [b.conv(x, cin, sq, 1, bias=True)])
        return b.op("Concat", [b.op("Relu", [b.conv(s, sq, e1, 1, bias=True)]),
                               b.op("Relu", [b.conv(s, sq, e3, 3, bias=True)])], axis=1)

    def pool(x):
        return b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)

    x = b.op("Relu", [b.conv("input", 3, 64, 3, 2, pad=0, bias=True)])
    x = fire(fire(pool(x), 64, 16, 64, 64), 128, 16, 64, 64)
    x = fire(fire(pool(x), 128, 32, 128, 128), 256, 32, 128, 128)
    x = fire(fire(pool(x), 256, 48, 192, 192), 384, 48, 192, 192)
    x = fire(fire(x, 384, 64, 256, 256), 512, 64, 256, 256)
    x = b.op("Dropout", [x])
    x = b.op("Relu", [b.conv(x, 512, 1000, 1, bias=True, std=0.05)])
    return b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)


def channel_shuffle(b, x, c):
    # As torch exports x.view(n, 2, c // 2, h, w): the batch from Shape, the rest constant.
    shape = b.op("Shape", [x])
    n = b.op("Gather", [shape, b.i64([0])], axis=0)
    hw = b.op("Slice", [shape, b.i64([2]), b.i64([4])])
    five = b.op("Concat", [n, b.i64([2, c // 2]), hw], axis=0)
    y = b.op("Transpose", [b.op("Reshape", [x, five])], perm=[0, 2, 1, 3, 4])
    return b.op("Reshape", [y, b.op("Concat", [n, b.i64([c]), hw], axis=0)])


def shufflenet_v2(b):
    x = b.cbr("input", 3, 24, 3, 2)
    x = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 24
    for repeats, cout in [(4, 116), (8, 232), (4, 464)]:
        bf = cout // 2
        for i in range(repeats):
            if i == 0:
                b1 = b.bn(b.conv(x, cin, cin, 3, 2, groups=cin), cin)
                b1 = b.cbr(b1, cin, bf, 1)
                b2 = b.cbr(x, cin, bf, 1)
            else:
                b1, b2 = b.split(x, [bf, bf], 1)
                b2 = b.cbr(b2, bf, bf, 1)
            stride = 2 if i == 0 else 1
            b2 = b.bn(b.conv(b2, bf, bf, 3, stride, groups=bf), bf)
            b2 = b.cbr(b2, bf, bf, 1)
            x = channel_shuffle(b, b.op("Concat", [b1, b2], axis=1), cout)
            cin = cout
    x = b.cbr(x, 464, 1024, 1)
    x = b.op("ReduceMean", [x], axes=[2, 3], keepdims=0)
    return b.linear(x, 1024, 1000)


def efficientnet_b0(b):
    # SiLU keeps less of its input's variance than ReLU: with He's gain the image's part of the
    # signal fades over the 81 convolutions and every image gets the same logits.
    b.gain = 2.3
    x = b.cbr("input", 3, 32, 3, 2, act="SiLU")
    cin = 32
    for e, k, s, c, n in [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            exp = cin * e
            y = x if e == 1 else b.cbr(x, cin, exp, 1, act="SiLU")
            y = b.cbr(y, exp, exp, k, stride, groups=exp, act="SiLU")
            y = squeeze_excite(b, y, exp, max(1, cin // 4), "SiLU", "Sigmoid")
            y = b.bn(b.conv(y, exp, c, 1), c)
            x = b.op("Add", [y, x]) if stride == 1 and cin == c else y
            cin = c
    x = b.cbr(x, 320, 1280, 1, act="SiLU")
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    return b.linear(b.op("Dropout", [x]), 1280, 1000)


VISION = {"resnet18": resnet18, "mobilenet_v2": mobilenet_v2,
          "mobilenet_v3_small": mobilenet_v3_small, "squeezenet1_1": squeezenet1_1,
          "shufflenet_v2": shufflenet_v2, "efficientnet_b0": efficientnet_b0}


# ---- sequence models ---------------------------------------------------------------------

def lstm_sensor(b):
    """torch's nn.LSTM(6, 32, num_layers=2, bidirectional=True, batch_first=True) over
    [N, 50, 6] readings with given initial states, the last step's state into 3 classes."""
    h, x = 32, b.op("Transpose", ["input"], perm=[1, 0, 2])
    cin = 6
    n = b.op("Slice", [b.op("Shape", ["input"]), b.i64([0]), b.i64([1])])
    state_shape = b.op("Concat", [b.i64([2]), n, b.i64([h])], axis=0)
    for layer in range(2):
        w = b.const(b.normal((2, 4 * h, cin), 1 / np.sqrt(h)))
        r = b.const(b.normal((2, 4 * h, h), 1 / np.sqrt(h)))
        bias = b.const(b.normal((2, 8 * h), 0.1))
        h0 = b.op("Expand", [b.const(b.normal((2, 1, h), 0.5)), state_shape])
        c0 = b.op("Expand", [b.const(b.normal((2, 1, h), 0.5)), state_shape])
        y, y_h, _ = b.op("LSTM", [x, w, r, bias, "", h0, c0], outputs=3, hidden_size=h,
                         direction="bidirectional")
        x = b.op("Reshape", [b.op("Transpose", [y], perm=[0, 2, 1, 3]), b.i64([0, 0, 2 * h])])
        cin = 2 * h
    last = b.op("Reshape", [b.op("Transpose", [y_h], perm=[1, 0, 2]), b.i64([0, 2 * h])])
    logits = b.linear(last, 2 * h, 3)
    b.op("Identity", [logits], outputs=["logits"])
    b.op("ArgMax", [logits], outputs=["label"], axis=1, keepdims=0)
    return ["logits", "label"]


def gru_bidirectional(b):
    """A bidirectional GRU (hidden 24, torch's linear_before_reset) over [N, 40, 8] readings of
    per-row lengths ("lengths", INT32: a padded batch), a 2-value regression at every step."""
    h = 24
    x = b.op("Transpose", ["input"], perm=[1, 0, 2])
    w = b.const(b.normal((2, 3 * h, 8), 1 / np.sqrt(h)))
    r = b.const(b.normal((2, 3 * h, h), 1 / np.sqrt(h)))
    bias = b.const(b.normal((2, 6 * h), 0.1))
    y, _ = b.op("GRU", [x, w, r, bias, "lengths"], outputs=[b.name(), "state"], hidden_size=h,
                direction="bidirectional", linear_before_reset=1)
    y = b.op("Reshape", [b.op("Transpose", [y], perm=[2, 0, 1, 3]), b.i64([0, 0, 2 * h])])
    y = b.op("MatMul", [y, b.const(b.normal((2 * h, 2), 1 / np.sqrt(2 * h)))])
    b.op("Add", [y, b.f32([0.5, -0.5])], outputs=["y"])
    return ["y", "state"]


def transformer_encoder(b):
    """Two post-norm encoder blocks (d 64, 4 heads, feed-forward 128, GELU) over [N, 32] token
    ids (0 pads, masked out of attention), mean-pooled into 4 classes."""
    d, heads, t = 64, 4, 32
    x = b.op("Gather", [b.const(b.normal((1000, d), 1.0)), "input"], axis=0)
    x = b.op("Add", [x, b.const(b.normal((t, d), 0.5))])
    pad = b.op("Equal", ["input", b.i64(0)])
    mask = b.op("Where", [pad, b.f32(-1e9), b.f32(0.0)])
    mask = b.unsqueeze(mask, [1, 2])

    def dense(v, cin, cout):
        y = b.op("MatMul", [v, b.const(b.normal((cin, cout), 1 / np.sqrt(cin)))])
        return b.op("Add", [y, b.const(b.normal((cout,), 0.1))])

    def split_heads(v, perm):
        return b.op("Transpose", [b.op("Reshape", [v, b.i64([0, 0, heads, d // heads])])], perm=perm)

    for _ in range(2):
        q = split_heads(dense(x, d, d), [0, 2, 1, 3])
        k = split_heads(dense(x, d, d), [0, 2, 3, 1])
        v = split_heads(dense(x, d, d), [0, 2, 1, 3])
        s = b.op("Add", [b.op("Mul", [b.op("MatMul", [q, k]), b.f32(0.25)]), mask])
        ctx = b.op("MatMul", [b.op("Softmax", [s], axis=-1), v])
        ctx = b.op("Reshape", [b.op("Transpose", [ctx], perm=[0, 2, 1, 3]), b.i64([0, 0, d])])
        x = b.layer_norm(b.op("Add", [x, dense(ctx, d, d)]), d)
        f = dense(x, d, 128)
        erf = b.op("Erf", [b.op("Div", [f, b.f32(np.sqrt(2.0))])])
        f = b.op("Mul", [b.op("Mul", [f, b.op("Add", [erf, b.f32(1.0)])]), b.f32(0.5)])
        x = b.layer_norm(b.op("Add", [x, dense(f, 128, d)]), d)
    logits = b.linear(b.op("ReduceMean", [x], axes=[1], keepdims=0), d, 4)
    b.op("Identity", [logits], outputs=["logits"])
    b.op("ArgMax", [logits], outputs=["label"], axis=1, keepdims=0)
    return ["logits", "label"]


# ---- segmentation and detection ----------------------------------------------------------

def unet_segmenter(b):
    """A two-level U-Net over [N, 3, 64, 64]: ConvTranspose (3x3, stride 2, output_padding 1)
    on one way up, Resize to sizes (linear, pytorch_half_pixel) on the other, and auxiliary
    heads upsampled by Resize (cubic, align_corners; nearest, asymmetric, floor); 4 classes per
    pixel."""
    def double(v, cin, cout):
        return b.cbr(b.cbr(v, cin, cout, 3), cout, cout, 3)

    def pool(v):
        return b.op("MaxPool", [v], kernel_shape=[2, 2], strides=[2, 2])

    e1 = double("input", 3, 16)
    e2 = double(pool(e1), 16, 32)
    mid = double(pool(e2), 32, 64)
    up = b.op("ConvTranspose", [mid, b.const(b.normal((64, 32, 3, 3), np.sqrt(2 / 64 / 9 * 4))),
                                b.const(b.normal((32,), 0.1))],
              kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])
    d1 = double(b.op("Concat", [up, e2], axis=1), 64, 32)
    # torch's F.interpolate(size=(64, 64), mode="bilinear"): sizes from the input's shape.
    sizes = b.op("Concat", [b.op("Slice", [b.op("Shape", [d1]), b.i64([0]), b.i64([2])]),
                            b.i64([64, 64])], axis=0)
    up = b.resize(d1, sizes=sizes, mode="linear", coordinate_transformation_mode="pytorch_half_pixel")
    up = b.conv(up, 32, 16, 1, bias=True)
    d2 = double(b.op("Concat", [up, e1], axis=1), 32, 16)
    head = b.conv(d2, 16, 4, 1, bias=True)
    # Auxiliary heads: bicubic with align_corners from the bottleneck, nearest from d1.
    aux = b.resize(b.conv(mid, 64, 4, 1, bias=True), [1, 1, 4, 4], mode="cubic", cubic_coeff_a=-0.75,
                   coordinate_transformation_mode="align_corners")
    aux2 = b.resize(b.conv(d1, 32, 4, 1, bias=True), [1, 1, 2, 2], mode="nearest",
                    coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    b.op("Add", [b.op("Add", [head, aux]), aux2], outputs=["logits"])
    b.op("ArgMax", ["logits"], outputs=["mask"], axis=1, keepdims=0)
    return ["logits", "mask"]


def detector_nms(b):
    """A tiny single-shot detector over [N, 3, 64, 64]: a 16x16 grid of anchors, box deltas
    decoded into centres and sizes, sigmoid scores for 3 classes, NonMaxSuppression
    (center_point_box, 10 per class, IoU 0.5, score 0.8); outputs the selected [K, 3] indices
    and their boxes and scores."""
    f = b.cbr(b.cbr("input", 3, 16, 3, 2), 16, 32, 3, 2)
    deltas = b.op("Transpose", [b.op("Reshape", [b.conv(f, 32, 4, 1, bias=True, std=0.3),
                                                 b.i64([0, 4, 256])])], perm=[0, 2, 1])
    scores = b.op("Sigmoid", [b.op("Reshape", [b.conv(f, 32, 3, 1, bias=True), b.i64([0, 3, 256])])])
    grid = (np.arange(16, dtype=np.float32) + 0.5) * 4
    centers = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(256, 2)
    ctr = b.op("Add", [b.op("Mul", [b.op("Slice", [deltas, b.i64([0]), b.i64([2]), b.i64([2])]),
                                    b.f32(6.0)]), b.const(centers)])
    half = b.op("Mul", [b.op("Exp", [b.op("Mul", [b.op("Slice", [deltas, b.i64([2]), b.i64([4]),
                                                                 b.i64([2])]), b.f32(0.3)])]),
                        b.f32(6.0)])
    boxes = b.op("Concat", [ctr, b.op("Add", [half, half])], axis=2)
    sel = b.op("NonMaxSuppression", [boxes, scores, b.i64([10]), b.f32([0.5]), b.f32([0.8])],
               outputs=["selected"], center_point_box=1)
    b.op("GatherND", [boxes, b.op("Gather", [sel, b.i64([0, 2])], axis=1)], outputs=["boxes"])
    b.op("GatherND", [scores, sel], outputs=["scores"])
    return ["selected", "boxes", "scores"]


# ---- quantized and reduced-precision models ----------------------------------------------

def qdq(b, x, scale, zero_point, dtype=np.uint8):
    s, z = b.f32(scale), b.const(np.array(zero_point, dtype), "zp")
    return b.op("DequantizeLinear", [b.op("QuantizeLinear", [x, s, z]), s, z])


def qdq_weights(b, w, in_scale):
    """int8 weights with one scale per output channel (axis 0) and the int32 bias at
    in_scale * weight scale, as onnxruntime's static quantizer writes them."""
    cout = w.shape[0]
    scale = (np.abs(w.reshape(cout, -1)).max(1) / 127).astype(np.float32)
    wq = np.clip(np.round(w / scale.reshape((cout,) + (1,) * (w.ndim - 1))), -127, 127)
    dw = b.op("DequantizeLinear", [b.const(wq.astype(np.int8)), b.const(scale),
                                   b.const(np.zeros(cout, np.int8), "zp")], axis=0)
    bscale = (scale * in_scale).astype(np.float32)
    bq = np.round(b.normal((cout,), 0.1) / bscale).astype(np.int32)
    db = b.op("DequantizeLinear", [b.const(bq), b.const(bscale), b.const(np.zeros(cout, np.int32), "zp")],
              axis=0)
    return dw, db


# Output quantization step of the QDQ CNN: its tolerance.
QDQ_OUT_SCALE = np.float32(8 / 255)


def qdq_cnn(b):
    """A QDQ CNN over [N, 3, 32, 32] (uint8 activations, int8 per-channel weights): every
    Conv, MaxPool, the residual Add, GlobalAveragePool and the Gemm between
    QuantizeLinear/DequantizeLinear pairs,
    which onnxruntime runs as QLinearConv and friends; 10 float outputs, quantized."""
    s0, s1, s2, s3 = 8 / 255, 6 / 255, 6 / 255, 2 / 255
    x = qdq(b, "input", s0, 128)
    w, bias = qdq_weights(b, b.normal((16, 3, 3, 3), np.sqrt(2 / 27)), s0)
    x = b.op("Relu", [b.op("Conv", [x, w, bias], kernel_shape=[3, 3], pads=[1, 1, 1, 1])])
    x = qdq(b, x, s1, 0)
    x = qdq(b, b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2]), s1, 0)
    w, bias = qdq_weights(b, b.normal((32, 16, 3, 3), np.sqrt(2 / 144)), s1)
    x = b.op("Relu", [b.op("Conv", [x, w, bias], kernel_shape=[3, 3], pads=[1, 1, 1, 1])])
    x = qdq(b, x, s2, 0)
    w, bias = qdq_weights(b, b.normal((32, 32, 3, 3), np.sqrt(1 / 288)), s2)
    y = qdq(b, b.op("Conv", [x, w, bias], kernel_shape=[3, 3], pads=[1, 1, 1, 1]), 8 / 255, 128)
    x = qdq(b, b.op("Relu", [b.op("Add", [x, y])]), s2, 0)  # a residual block
    x = qdq(b, b.op("GlobalAveragePool", [x]), s3, 0)
    x = b.op("Flatten", [x], axis=1)
    w, bias = qdq_weights(b, b.normal((10, 32), np.sqrt(1 / 32)), s3)
    y = b.op("Gemm", [x, w, bias], transB=1)
    s, z = b.f32(QDQ_OUT_SCALE), b.const(np.array(128, np.uint8), "zp")
    b.op("DequantizeLinear", [b.op("QuantizeLinear", [y, s, z]), s, z], outputs=["output"])
    return ["output"]


# Output quantization step of the QOperator CNN: its tolerance.
QLINEAR_OUT_SCALE = np.float32(6 / 255)


def qlinear_cnn(b):
    """The QOperator form onnxruntime's static quantizer also writes: QuantizeLinear, three
    strided QLinearConv (uint8 activations, int8 per-channel weights, int32 bias; a zero point
    of 0 clips like Relu), GlobalAveragePool on the dequantized values, QLinearMatMul (int8
    weights), DequantizeLinear; 10 outputs over [N, 3, 32, 32]."""
    x_scale, x_zp = b.f32(8 / 255), b.const(np.array(128, np.uint8), "zp")
    x = b.op("QuantizeLinear", ["input", x_scale, x_zp])
    s_in = 8 / 255
    for cin, cout in [(3, 16), (16, 32), (32, 32)]:
        w = b.normal((cout, cin, 3, 3), np.sqrt(2 / cin / 9))
        ws = (np.abs(w.reshape(cout, -1)).max(1) / 127).astype(np.float32)
        wq = np.round(w / ws[:, None, None, None]).astype(np.int8)
        bias = np.round(b.normal((cout,), 0.1) / (ws * s_in)).astype(np.int32)
        y_scale, y_zp = b.f32(6 / 255), b.const(np.array(0, np.uint8), "zp")
        x = b.op("QLinearConv", [x, x_scale, x_zp, b.const(wq), b.const(ws), b.const(np.zeros(cout, np.int8), "zp"),
                                 y_scale, y_zp, b.const(bias)],
                 kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
        x_scale, x_zp, s_in = y_scale, y_zp, 6 / 255
    x = b.op("Flatten", [b.op("GlobalAveragePool", [b.op("DequantizeLinear", [x, x_scale, x_zp])])], axis=1)
    a_scale, a_zp = b.f32(2 / 255), b.const(np.array(0, np.uint8), "zp")
    x = b.op("QuantizeLinear", [x, a_scale, a_zp])
    w = b.normal((32, 10), np.sqrt(1 / 32))
    ws = np.float32(np.abs(w).max() / 127)
    y_scale, y_zp = b.f32(QLINEAR_OUT_SCALE), b.const(np.array(128, np.uint8), "zp")
    y = b.op("QLinearMatMul", [x, a_scale, a_zp, b.const(np.round(w / ws).astype(np.int8)), b.f32(ws),
                               b.const(np.array(0, np.int8), "zp"), y_scale, y_zp])
    b.op("DequantizeLinear", [y, y_scale, y_zp], outputs=["output"])
    return ["output"]


def dynamic_quant_mlp(b):
    """A 64-128-64-10 MLP as onnxruntime's dynamic quantizer writes it: each layer quantizes
    its input with DynamicQuantizeLinear (uint8), multiplies by int8 weights with
    MatMulInteger, and scales the int32 sums back to float."""
    x, sizes = "input", [64, 128, 64, 10]
    for i in range(3):
        cin, cout = sizes[i], sizes[i + 1]
        w = b.normal((cin, cout), np.sqrt(2 / cin))
        ws = np.float32(np.abs(w).max() / 127)
        xq, xs, xz = b.op("DynamicQuantizeLinear", [x], outputs=3)
        acc = b.op("MatMulInteger", [xq, b.const(np.round(w / ws).astype(np.int8)), xz,
                                     b.const(np.array(0, np.int8), "zp")])
        y = b.op("Mul", [b.op("Cast", [acc], to=TensorProto.FLOAT), b.op("Mul", [xs, b.f32(ws)])])
        y = b.op("Add", [y, b.const(b.normal((cout,), 0.1))])
        x = b.op("Relu", [y]) if i < 2 else b.op("Identity", [y], outputs=["output"])
    return ["output"]


def fp16_cnn(b):
    """A CNN over [N, 3, 32, 32] with FLOAT16 weights and activations (float32 at the
    boundary through Cast, as onnxconverter's keep_io_types writes it)."""
    h = TensorProto.FLOAT16
    x = b.op("Cast", ["input"], to=h)
    for cin, cout in [(3, 16), (16, 32)]:
        w = b.const(b.normal((cout, cin, 3, 3), np.sqrt(2 / cin / 9)).astype(np.float16))
        bias = b.const(b.normal((cout,), 0.1).astype(np.float16))
        x = b.op("Relu", [b.op("Conv", [x, w, bias], kernel_shape=[3, 3], pads=[1, 1, 1, 1])])
        x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    w = b.const(b.normal((10, 32), np.sqrt(1 / 32)).astype(np.float16))
    y = b.op("Gemm", [x, w, b.const(b.normal((10,), 0.1).astype(np.float16))], transB=1)
    b.op("Cast", [y], outputs=["output"], to=F)
    return ["output"]


def half_weights_cnn(b):
    """A float CNN over [N, 3, 32, 32] that stores its weights at half size, converted once by
    Cast: the convolutions' in FLOAT16, the classifier's in BFLOAT16."""
    x = "input"
    for cin, cout in [(3, 16), (16, 32)]:
        w16 = b.const(b.normal((cout, cin, 3, 3), np.sqrt(2 / cin / 9)).astype(np.float16))
        w = b.op("Cast", [w16], to=F)
        bias = b.op("Cast", [b.const(b.normal((cout,), 0.1).astype(np.float16))], to=F)
        x = b.op("Relu", [b.op("Conv", [x, w, bias], kernel_shape=[3, 3], pads=[1, 1, 1, 1])])
        x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    # bfloat16: the top half of each float32's bits.
    bits = (b.normal((10, 32), np.sqrt(1 / 32)).view(np.uint32) >> 16).astype(np.uint16)
    name = b.name("bf16")
    b.inits.append(helper.make_tensor(name, TensorProto.BFLOAT16, [10, 32], bits.tobytes(), raw=True))
    y = b.op("Gemm", [x, b.op("Cast", [name], to=F), b.f32(np.full(10, 0.05, np.float32))], transB=1)
    b.op("Identity", [y], outputs=["output"])
    return ["output"]


def camera_preprocess(b):
    """The front of a camera model: uint8 frames [N, 120, 160, 3] (height, width, RGB) cast to
    float, made planar, resized to 64x64 three ways (linear, half_pixel; cubic, asymmetric;
    nearest, round_prefer_ceil — scales of 0.533 and 0.4, not integers), normalised per channel
    by ImageNet's mean and deviation."""
    x = b.op("Transpose", [b.op("Cast", ["input"], to=F)], perm=[0, 3, 1, 2])
    sizes = b.op("Concat", [b.op("Slice", [b.op("Shape", [x]), b.i64([0]), b.i64([2])]),
                            b.i64([64, 64])], axis=0)
    mean = b.f32(np.array([123.675, 116.28, 103.53], np.float32).reshape(1, 3, 1, 1))
    std = b.f32(np.array([58.395, 57.12, 57.375], np.float32).reshape(1, 3, 1, 1))
    for out_name, attrs in [("linear", dict(mode="linear", coordinate_transformation_mode="half_pixel")),
                            ("cubic", dict(mode="cubic", coordinate_transformation_mode="asymmetric")),
                            ("nearest", dict(mode="nearest", nearest_mode="round_prefer_ceil",
                                             coordinate_transformation_mode="half_pixel"))]:
        y = b.resize(x, sizes=sizes, **attrs)
        b.op("Div", [b.op("Sub", [y, mean]), std], outputs=[out_name])
    return ["linear", "cubic", "nearest"]


def super_resolution(b):
    """torch's super-resolution example grown a little: [N, 1, 64, 64] luminance through
    Conv 5x5 + PRelu, Conv 3x3 + InstanceNormalization + Relu, Conv 3x3 + Relu and Conv 3x3 to
    9 channels, then PixelShuffle(3) as torch exports it (DepthToSpace, CRD) to [N, 1, 192, 192];
    a second output takes the input's 2x2 blocks to channels (SpaceToDepth) and back (DCR)."""
    x = b.conv("input", 1, 64, 5, bias=True)
    x = b.op("PRelu", [x, b.const(b.rng.uniform(0.05, 0.3, (64, 1, 1)).astype(np.float32))])
    x = b.conv(x, 64, 64, 3, bias=True)
    x = b.op("InstanceNormalization", [x, b.const(b.rng.uniform(0.8, 1.2, 64).astype(np.float32)),
                                       b.const(b.normal((64,), 0.1))], epsilon=1e-5)
    x = b.op("Relu", [x])
    x = b.op("Relu", [b.conv(x, 64, 32, 3, bias=True)])
    x = b.conv(x, 32, 9, 3, bias=True)
    b.op("DepthToSpace", [x], outputs=["upscaled"], blocksize=3, mode="CRD")
    blocks = b.op("SpaceToDepth", ["input"], blocksize=2)
    blocks = b.op("Add", [blocks, b.conv(blocks, 4, 4, 3, bias=True)])
    b.op("DepthToSpace", [blocks], outputs=["refined"], blocksize=2, mode="DCR")
    return ["upscaled", "refined"]


def frames(rng, n):
    return {"input": rng.integers(0, 256, (n, 120, 160, 3)).astype(np.uint8)}


# ---- inputs, cases and files -------------------------------------------------------------

def images(c, hw):
    """Pictures rather than white noise (which global pooling averages away): per image and
    channel a brightness, a contrast and two plane waves of random direction, plus noise."""
    def make(rng, n):
        yx = np.mgrid[0:hw, 0:hw].astype(np.float32) / hw
        x = rng.standard_normal((n, c, hw, hw)) * 0.3
        x += rng.uniform(-1, 1, (n, c, 1, 1))
        for _ in range(2):
            freq = rng.uniform(-12, 12, (n, c, 2, 1, 1))
            wave = np.sin((freq * yx).sum(2) + rng.uniform(0, 2 * np.pi, (n, c, 1, 1)))
            x += wave * rng.uniform(0.2, 1.5, (n, c, 1, 1))
        return {"input": x.astype(np.float32)}
    return make


def sensors(t, f):
    def make(rng, n):
        steps = np.arange(t, dtype=np.float32)[None, :, None]
        freq = rng.uniform(0.05, 0.5, (n, 1, f))
        phase = rng.uniform(0, 2 * np.pi, (n, 1, f))
        noise = rng.standard_normal((n, t, f)) * 0.1
        return {"input": (np.sin(steps * freq + phase) + noise).astype(np.float32)}
    return make


def tokens(rng, n):
    ids = rng.integers(1, 1000, (n, 32)).astype(np.int64)
    for row in range(1, n):  # rows after the first are padded with 0 after a random length
        ids[row, int(rng.integers(8, 32)):] = 0
    return {"input": ids}


def padded_sensors(rng, n):
    x = sensors(40, 8)(rng, n)
    x["lengths"] = np.array([40] + [int(v) for v in rng.integers(10, 41, n - 1)], np.int32)
    return x


def features(rng, n):
    return {"input": rng.standard_normal((n, 64)).astype(np.float32)}


L, S = "labels", "scale"
# Models also written in the forms torch's exporter gives at opset 11 (Split, Unsqueeze and
# Resize's roi as before opset 13, HardSwish as x * HardSigmoid(x), LayerNormalization as
# its ReduceMean/Sub/Pow/Sqrt/Div decomposition): cases <model>_opset11_b1 and _b8.
OPSET11 = ["mobilenet_v3_small", "shufflenet_v2", "lstm_sensor", "transformer_encoder", "unet_segmenter"]
# name: (builder, inputs(rng, n), [(input name (default "input"), element type, dims)],
#        {output: (element type, compare rule, rank)})
MODELS = {name: (fn, images(3, 224), [(F, ["N", 3, 224, 224])], {"logits": (F, S, 2)})
          for name, fn in VISION.items()}
MODELS.update({
    "lstm_sensor": (lstm_sensor, sensors(50, 6), [(F, ["N", 50, 6])],
                    {"logits": (F, "rel", 2), "label": (TensorProto.INT64, L, 1)}),
    "gru_bidirectional": (gru_bidirectional, padded_sensors,
                          [(F, ["N", 40, 8]), ("lengths", TensorProto.INT32, ["N"])],
                          {"y": (F, "rel", 3), "state": (F, "rel", 3)}),
    "transformer_encoder": (transformer_encoder, tokens, [(TensorProto.INT64, ["N", 32])],
                            {"logits": (F, "rel", 2), "label": (TensorProto.INT64, L, 1)}),
    "unet_segmenter": (unet_segmenter, images(3, 64), [(F, ["N", 3, 64, 64])],
                       {"logits": (F, S, 4), "mask": (TensorProto.INT64, L, 3)}),
    "detector_nms": (detector_nms, images(3, 64), [(F, ["N", 3, 64, 64])],
                     {"selected": (TensorProto.INT64, L, 2), "boxes": (F, "rel", 2), "scores": (F, "rel", 1)}),
    "qdq_cnn": (qdq_cnn, images(3, 32), [(F, ["N", 3, 32, 32])],
                {"output": (F, f"abs {QDQ_OUT_SCALE:.9g}", 2)}),
    "qlinear_cnn": (qlinear_cnn, images(3, 32), [(F, ["N", 3, 32, 32])],
                    {"output": (F, f"abs {QLINEAR_OUT_SCALE:.9g}", 2)}),
    "dynamic_quant_mlp": (dynamic_quant_mlp, features, [(F, ["N", 64])], {"output": (F, "rel", 2)}),
    "half_weights_cnn": (half_weights_cnn, images(3, 32), [(F, ["N", 3, 32, 32])], {"output": (F, S, 2)}),
    "camera_preprocess": (camera_preprocess, frames, [(TensorProto.UINT8, ["N", 120, 160, 3])],
                          {"linear": (F, "rel", 4), "cubic": (F, "rel", 4), "nearest": (F, "rel", 4)}),
    "super_resolution": (super_resolution, images(1, 64), [(F, ["N", 1, 64, 64])],
                         {"upscaled": (F, S, 4), "refined": (F, S, 4)}),
    "fp16_cnn": (fp16_cnn, images(3, 32), [(F, ["N", 3, 32, 32])], {"output": (F, S, 2)}),
})


def write_tensor(out_dir, case, name, array, manifest):
    path = f"{case}.{name}.bin"
    dtype = {np.dtype(np.float32): "float32", np.dtype(np.int64): "int64",
             np.dtype(np.int32): "int32", np.dtype(np.uint8): "uint8"}[array.dtype]
    with open(os.path.join(out_dir, path), "wb") as f:
        f.write(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())
    manifest.append(f"input {case} {name} {dtype} {','.join(str(d) for d in array.shape)} {path}")


def save_model(out_dir, name, model):
    onnx.checker.check_model(model)
    with open(os.path.join(out_dir, f"{name}.onnx"), "wb") as f:
        f.write(model.SerializeToString())


def build(name, seed):
    fn, inputs, input_specs, outputs = MODELS[name.removesuffix("_opset11")]
    b = Builder(np.random.default_rng(seed), 11 if name.endswith("_opset11") else 17)
    names = fn(b)
    if isinstance(names, str):  # a vision model: its last value is the logits
        b.op("Identity", [names], outputs=["logits"])
    specs = [spec if len(spec) == 3 else ("input",) + spec for spec in input_specs]
    return b.model([helper.make_tensor_value_info(*spec) for spec in specs],
                   [out(o, t, r) for o, (t, _, r) in outputs.items()], name), inputs, outputs


def write_layers(out_dir, rng):
    """resnet18's distinct convolutions as single-Conv models (bias, no activation) with a
    batch-8 input each; layers/inputs.txt adds "conv <model> cin cout k stride size count"."""
    layer_dir = os.path.join(out_dir, "layers")
    os.makedirs(layer_dir, exist_ok=True)
    manifest = []
    for cin, cout, k, stride, hw, count in RESNET18_CONVS:
        name = f"conv{k}x{k}_{cin}_{cout}_s{stride}_{hw}"
        b = Builder(rng)
        y = b.conv("input", cin, cout, k, stride, bias=True)
        b.op("Identity", [y], outputs=["output"])
        save_model(layer_dir, name, b.model([helper.make_tensor_value_info("input", F, ["N", cin, hw, hw])],
                                            [out("output", F, 4)], name))
        manifest.append(f"model {name} {name}.onnx")
        manifest.append(f"conv {name} {cin} {cout} {k} {stride} {hw} {count}")
        write_tensor(layer_dir, name, "input", rng.standard_normal((8, cin, hw, hw)).astype(np.float32),
                     manifest)
    with open(os.path.join(layer_dir, "inputs.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: models.py OUT_DIR")
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    manifest = []
    for seed, name in enumerate(list(MODELS) + [m + "_opset11" for m in OPSET11]):
        model, inputs, outputs = build(name, 1000 + seed)
        save_model(out_dir, name, model)
        rng = np.random.default_rng(2000 + seed)
        for n in BATCHES:
            case = f"{name}_b{n}"
            manifest.append(f"model {case} {name}.onnx")
            for k, v in inputs(rng, n).items():
                write_tensor(out_dir, case, k, v, manifest)
            manifest += [f"compare {case} {o} {rule}" for o, (_, rule, _) in outputs.items()]
    write_layers(out_dir, np.random.default_rng(3000))
    with open(os.path.join(out_dir, "inputs.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")


if __name__ == "__main__":
    main()
