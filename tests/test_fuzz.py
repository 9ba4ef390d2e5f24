"""Bad arguments for every public op, layer, loss, optimiser, scheduler, transform and the
DataLoader: wrong ranks, shapes, dtypes and devices, negative or float sizes, out-of-range dims,
indices and labels, NaN and out-of-range hyperparameters. Each must raise the exception torch
raises for it (ValueError / TypeError / IndexError; RuntimeError where torch raises one: device
and matmul/reshape/permute shape mismatches) with a message that names the op or layer; none
may crash, read out of bounds in a kernel or return a wrong shape.

A table of cases (name, a callable that must raise, the exceptions accepted, a substring its
message must contain), then hypothesis strategies for the numeric parts (few examples in the
`default` profile, many in `thorough`).

Designed to run alone, also with NUMBA_BOUNDSCHECK=1 (a kernel that reads out of bounds then
raises an IndexError whose message names no op, so it fails the substring check). Almost every
case must raise before a kernel runs; the few that compute use tiny float32 tensors, so the
module compiles only a handful of kernels:

    NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=/tmp/nb-boundscheck python -m pytest tests/test_fuzz.py -n 0
"""
import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl
from tinygrad_lite import data, nn, optim
from tinygrad_lite.nn import functional as F
from tinygrad_lite.optim import lr_scheduler as S

NAN, INF = float("nan"), float("inf")
V, T, I, R = ValueError, TypeError, IndexError, RuntimeError

# small fixtures, built once (no kernel runs to build them)
X = tl.zeros(2, 3)
X4 = tl.zeros(2, 4, 5, 5)
W = tl.zeros(6, 4, 3, 3)
LOGITS = tl.zeros(2, 3)
LABELS = tl.Tensor(np.array([0, 2]))
def _xc():  # a CUDA tensor (on the simulator under pytest), made when a case runs
    return tl.zeros(2, 3, device="cuda")
IMAGES = np.zeros((4, 8, 8, 3), np.uint8)  # a host NHWC batch, as transforms take it


def _param():
    return nn.Parameter(tl.zeros(3))


def _opt():
    return optim.SGD([_param()], lr=0.1, momentum=0.9)


def _leaf():
    return tl.zeros(3, requires_grad=True)


def _backward_nonscalar():
    y = _leaf() * 2.0
    y.backward()


def _backward_bad_gradient():
    y = _leaf() * 2.0
    y.backward(tl.zeros(4))


def _inplace_on_leaf():
    _leaf().add_(1.0)


def _two_groups_lbfgs():
    optim.LBFGS([{"params": [_param()]}, {"params": [_param()]}])


def _sequential_of_other_optimizer():
    opt = _opt()
    S.SequentialLR(opt, [S.StepLR(_opt(), 2), S.StepLR(opt, 2)], [3])


def _load_bad_shape():
    nn.Linear(3, 2).load_state_dict({"weight": tl.zeros(2, 4), "bias": tl.zeros(2)})


def _load_missing_key():
    nn.Linear(3, 2).load_state_dict({"weight": tl.zeros(2, 3)})


def _iterate(loader):
    for _ in loader:
        pass


# (name, callable that must raise, exceptions accepted, substring the message must contain)
CASES = [
    # creation and dtypes
    ("zeros(float size)", lambda: tl.zeros(2.7), (T,), "zeros"),
    ("zeros(negative size)", lambda: tl.zeros(-1), (V, R), "zeros"),
    ("ones(nan size)", lambda: tl.ones(NAN), (T,), "ones"),
    ("randn(negative size)", lambda: tl.randn(2, -3), (V, R), "randn"),
    ("full(float size)", lambda: tl.full((2.5,), 1.0), (T,), "full"),
    ("arange(step 0)", lambda: tl.arange(0, 5, 0), (V, R), "arange"),
    ("eye(negative)", lambda: tl.eye(-2), (V, R), "eye"),
    ("randint(low >= high)", lambda: tl.randint(3, 3, (2,)), (V, R), "randint"),
    ("tensor(ragged)", lambda: tl.tensor([[1.0, 2.0], [3.0]]), (V,), "ragged"),
    ("tensor(int beyond int64)", lambda: tl.tensor([2 ** 70]), (V, OverflowError), "int64"),
    ("tensor(strings)", lambda: tl.tensor(["a", "b"]), (T, V), "Tensor"),
    ("Tensor(dtype float16)", lambda: tl.Tensor([1.0], dtype="float16"), (T, V), "float16"),
    ("astype(complex)", lambda: X.astype("complex64"), (T, V), "complex64"),
    ("to(unknown device)", lambda: X.to("tpu"), (V, R), "tpu"),
    # element-wise, broadcasting, devices
    ("mul(shapes)", lambda: X * tl.zeros(4), (V, R), "mul"),
    ("add(string)", lambda: X + "a", (T,), "add"),
    ("add(cuda, cpu)", lambda: _xc() + X, (R,), "add"),
    ("where(cuda cond, cpu)", lambda: tl.where(_xc() > 0, X, X), (R,), "where"),
    ("maximum(shapes)", lambda: tl.maximum(X, tl.zeros(2, 4)), (V, R), "maximum"),
    ("clip(string)", lambda: X.clip("a", 1.0), (T,), "clip"),
    # reductions
    ("sum(dim out of range)", lambda: X.sum(axis=2), (I,), "sum"),
    ("mean(dim -3)", lambda: X.mean(axis=-3), (I,), "mean"),
    ("sum(repeated dims)", lambda: X.sum(axis=(0, 0)), (V, R), "sum"),
    ("max(dim out of range)", lambda: X.max(axis=5), (I,), "max"),
    ("argmax(tuple)", lambda: X.argmax(axis=(0, 1)), (T,), "argmax"),
    ("softmax(dim out of range)", lambda: X.softmax(2), (I,), "softmax"),
    ("log_softmax(float dim)", lambda: X.log_softmax(1.0), (T,), "log_softmax"),
    ("var(dim out of range)", lambda: X.var(axis=3), (I,), "var"),
    ("logsumexp(dim)", lambda: X.logsumexp(axis=-4), (I,), "logsumexp"),
    # movement and indexing
    ("reshape(wrong size)", lambda: X.reshape(4, 2), (R,), "reshape"),
    ("reshape(two -1)", lambda: X.reshape(-1, -1), (R,), "reshape"),
    ("reshape(float)", lambda: X.reshape(2.0, 3), (T,), "reshape"),
    ("view(wrong size)", lambda: X.view(7), (R,), "view|reshape"),  # view is a reshape
    ("permute(repeated)", lambda: X.permute(0, 0), (R,), "permute"),
    ("permute(too few)", lambda: X.permute(0), (R,), "permute"),
    ("transpose(dim)", lambda: X.transpose(0, 2), (I,), "transpose"),
    ("squeeze(dim)", lambda: X.squeeze(2), (I,), "squeeze"),
    ("unsqueeze(dim)", lambda: X.unsqueeze(4), (I,), "unsqueeze"),
    ("flatten(dim)", lambda: X.flatten(0, 5), (I,), "flatten"),
    ("expand(incompatible)", lambda: X.expand(3, 2), (R, V), "expand"),
    ("split(size 0)", lambda: X.split(0), (V, R), "split"),
    ("split(sizes not summing)", lambda: X.split([1, 3]), (V, R), "split"),
    ("getitem(int out of range)", lambda: X[2], (I,), "index"),
    ("getitem(negative out of range)", lambda: X[:, -4], (I,), "index"),
    ("getitem(index array out of range)", lambda: X[tl.Tensor(np.array([0, 5]))], (I,),
     "index"),
    ("getitem(mask shape)", lambda: X[tl.Tensor(np.array([True, False, True]))], (I,),
     "boolean|mask"),
    ("getitem(too many indices)", lambda: X[0, 0, 0], (I,), "index"),
    ("getitem(float)", lambda: X[0.5], (T, I), "index"),
    ("cat(shapes)", lambda: tl.cat([X, tl.zeros(2, 4)]), (R, V), "cat"),
    ("cat(non-tensor)", lambda: tl.cat([X, 1.0]), (T,), "cat"),
    ("cat(empty)", lambda: tl.cat([]), (V, R), "cat"),
    ("cat(dim)", lambda: tl.cat([X, X], axis=2), (I,), "cat"),
    ("cat(cuda, cpu)", lambda: tl.cat([X, _xc()]), (R,), "cat"),
    ("stack(shapes)", lambda: tl.stack([X, tl.zeros(3, 2)]), (R, V), "stack"),
    ("pad(odd length)", lambda: F.pad(X, (1, 2, 3)), (V, R), "pad"),
    ("pad(negative beyond size)", lambda: F.pad(X, (-2, -2)), (V, R), "pad"),
    # matmul
    ("matmul(shapes)", lambda: X @ tl.zeros(4, 2), (R,), "matmul"),
    ("matmul(0-d)", lambda: tl.zeros(()) @ X, (R,), "matmul"),
    ("matmul(batch dims)", lambda: tl.zeros(2, 2, 3) @ tl.zeros(3, 3, 1), (R,), "matmul"),
    ("matmul(cuda, cpu)", lambda: _xc() @ tl.zeros(3, 2), (R,), "matmul"),
    # autograd and in place
    ("backward(non-scalar)", _backward_nonscalar, (R,), "backward"),
    ("backward(gradient shape)", _backward_bad_gradient, (R, V), "backward"),
    ("add_(leaf requiring grad)", _inplace_on_leaf, (R,), "add_"),
    ("copy_(shape)", lambda: tl.zeros(3).copy_(tl.zeros(4)), (R, V), "copy_"),
    ("requires_grad on int", lambda: tl.zeros(3).long().requires_grad_(), (R, T), "requires_grad"),
    # activations
    ("relu(non-tensor)", lambda: F.relu([1.0]), (T, AttributeError), "relu"),
    ("elu(non-tensor)", lambda: F.elu(1.0), (T,), "elu"),
    ("gelu(approximate)", lambda: F.gelu(X, "fast"), (V,), "gelu"),
    ("GELU(approximate)", lambda: nn.GELU("fast"), (V,), "GELU"),
    ("prelu(weight size)", lambda: F.prelu(X4, tl.zeros(3)), (V, R), "prelu"),
    ("PReLU(0)", lambda: nn.PReLU(0), (V,), "PReLU"),
    ("PReLU(channels)", lambda: nn.PReLU(3)(X4), (V, R), "PReLU"),
    ("maxout(pieces 0)", lambda: F.maxout(X, 0), (V,), "maxout"),
    ("maxout(indivisible)", lambda: F.maxout(X, 2), (V,), "maxout"),
    ("Maxout(in_features)", lambda: nn.Maxout(4, 2)(X), (V, R), "Maxout"),
    # linear, dropout
    ("Linear(in_features)", lambda: nn.Linear(4, 2)(X), (R, V), "Linear|matmul"),
    ("Linear(negative)", lambda: nn.Linear(-1, 2), (V, R), "Linear"),
    ("linear(weight columns)", lambda: F.linear(X, tl.zeros(2, 4)), (R, V), "linear|matmul"),
    ("dropout(p > 1)", lambda: F.dropout(X, 1.5), (V,), "dropout"),
    ("dropout(p nan)", lambda: F.dropout(X, NAN), (V,), "dropout"),
    ("Dropout(p < 0)", lambda: nn.Dropout(-0.1), (V,), "Dropout"),
    ("Dropout2d(p nan)", lambda: nn.Dropout2d(NAN), (V,), "Dropout2d"),
    ("dropout2d(rank)", lambda: F.dropout2d(tl.zeros(3), 0.5), (V, R), "dropout2d"),
    ("DropConnect(p)", lambda: nn.DropConnect(3, 2, p=2.0), (V,), "DropConnect"),
    ("StochasticDepth(mode)", lambda: nn.StochasticDepth(0.5, "column"), (V,),
     "StochasticDepth"),
    ("StochasticDepth(p nan)", lambda: nn.StochasticDepth(NAN, "row"), (V,), "StochasticDepth"),
    # convolution
    ("conv2d(weight rank)", lambda: F.conv2d(X4, tl.zeros(6, 4, 3)), (R, V), "conv2d"),
    ("conv2d(channels)", lambda: F.conv2d(X4, tl.zeros(6, 3, 3, 3)), (R, V), "conv2d"),
    ("conv2d(input rank)", lambda: F.conv2d(X, W), (R, V), "conv2d"),
    ("conv2d(groups)", lambda: F.conv2d(X4, tl.zeros(6, 2, 3, 3), groups=3), (R, V),
     "conv2d"),
    ("conv2d(stride 0)", lambda: F.conv2d(X4, W, stride=0), (R, V), "conv2d"),
    ("conv2d(negative padding)", lambda: F.conv2d(X4, W, padding=-1), (R, V), "conv2d"),
    ("conv2d(float stride)", lambda: F.conv2d(X4, W, stride=1.5), (T, V), "conv2d"),
    ("conv2d(same + stride)", lambda: F.conv2d(X4, W, stride=2, padding="same"), (V,),
     "conv2d"),
    ("conv2d(padding string)", lambda: F.conv2d(X4, W, padding="full"), (V,), "conv2d"),
    ("conv2d(kernel > input)", lambda: F.conv2d(X4, tl.zeros(6, 4, 7, 7)), (R, V), "conv2d"),
    ("conv2d(bias size)", lambda: F.conv2d(X4, W, tl.zeros(5)), (R, V), "conv2d"),
    ("conv2d(cuda weight)", lambda: F.conv2d(X4, W.to("cuda")), (R,), "conv2d"),
    ("conv2d(int input)", lambda: F.conv2d(X4.long(), W), (R, T), "conv2d"),
    ("Conv2d(kernel 0)", lambda: nn.Conv2d(4, 6, 0), (V, R), "Conv2d"),
    ("Conv2d(groups)", lambda: nn.Conv2d(4, 6, 3, groups=4), (V,), "Conv2d"),
    ("Conv2d(channels)", lambda: nn.Conv2d(3, 6, 3)(X4), (R, V), "Conv2d"),
    ("Conv2d(padding_mode)", lambda: nn.Conv2d(4, 6, 3, padding_mode="mirror"), (V,),
     "Conv2d"),
    # pooling
    ("max_pool2d(kernel 0)", lambda: F.max_pool2d(X4, 0), (V, R), "max_pool2d"),
    ("max_pool2d(padding > k/2)", lambda: F.max_pool2d(X4, 2, padding=2), (V, R),
     "max_pool2d"),
    ("max_pool2d(rank)", lambda: F.max_pool2d(X, 2), (V, R), "max_pool2d"),
    ("max_pool2d(window > input)", lambda: F.max_pool2d(X4, 6), (V, R), "max_pool2d"),
    ("avg_pool2d(stride 0)", lambda: F.avg_pool2d(X4, 2, 0), (V, R), "avg_pool2d"),
    ("avg_pool2d(divisor 0)", lambda: F.avg_pool2d(X4, 2, divisor_override=0), (V, R),
     "avg_pool2d"),
    ("adaptive_avg_pool2d(negative)", lambda: F.adaptive_avg_pool2d(X4, -1), (V, R),
     "adaptive_avg_pool2d"),
    ("adaptive_max_pool2d(rank)", lambda: F.adaptive_max_pool2d(X, 1), (V, R),
     "adaptive_max_pool2d"),
    ("fractional(both sizes)", lambda: F.fractional_max_pool2d(
        X4, 2, output_size=3, output_ratio=0.5), (V,), "fractional_max_pool2d"),
    ("fractional(ratio 1)", lambda: F.fractional_max_pool2d(X4, 2, output_ratio=1.0), (V,),
     "fractional_max_pool2d"),
    ("fractional(too big)", lambda: F.fractional_max_pool2d(X4, 2, output_size=5), (V, R),
     "fractional_max_pool2d"),
    ("MaxPool2d(stride 0)", lambda: nn.MaxPool2d(2, 0), (V,), "MaxPool2d"),
    ("AvgPool2d(negative padding)", lambda: nn.AvgPool2d(2, padding=-1), (V,), "AvgPool2d"),
    ("AdaptiveAvgPool2d(0)", lambda: nn.AdaptiveAvgPool2d(0), (V,), "AdaptiveAvgPool2d"),
    ("FractionalMaxPool2d(no size)", lambda: nn.FractionalMaxPool2d(2), (V,),
     "FractionalMaxPool2d"),
    # normalisation
    ("BatchNorm2d(channels)", lambda: nn.BatchNorm2d(3)(X4), (V, R), "BatchNorm2d"),
    ("BatchNorm2d(rank)", lambda: nn.BatchNorm2d(3)(X), (V,), "BatchNorm2d"),
    ("BatchNorm1d(one value per channel)", lambda: nn.BatchNorm1d(3)(tl.zeros(1, 3)), (V,),
     "BatchNorm1d"),
    ("BatchNorm2d(0)", lambda: nn.BatchNorm2d(0), (V,), "BatchNorm2d"),
    ("batch_norm(running_mean size)", lambda: F.batch_norm(X4, tl.zeros(3), tl.ones(4)),
     (V, R), "batch_norm"),
    ("batch_norm(eps < 0)", lambda: F.batch_norm(X4, None, None, training=True, eps=-1.0),
     (V,), "batch_norm"),
    ("layer_norm(shape)", lambda: F.layer_norm(X4, (4,)), (V, R), "layer_norm"),
    ("LayerNorm(shape)", lambda: nn.LayerNorm(4)(X4), (V, R), "LayerNorm"),
    ("LayerNorm(0)", lambda: nn.LayerNorm(0), (V,), "LayerNorm"),
    ("group_norm(groups)", lambda: F.group_norm(X4, 3), (V, R), "group_norm"),
    ("GroupNorm(groups)", lambda: nn.GroupNorm(3, 4), (V,), "GroupNorm"),
    ("GroupNorm(channels)", lambda: nn.GroupNorm(2, 6)(X4), (V, R), "GroupNorm"),
    ("instance_norm(rank)", lambda: F.instance_norm(X), (V, R), "instance_norm"),
    ("InstanceNorm2d(rank)", lambda: nn.InstanceNorm2d(3)(X), (V,), "InstanceNorm2d"),
    ("InstanceNorm2d(one pixel)", lambda: nn.InstanceNorm2d(4)(tl.zeros(2, 4, 1, 1)), (V,),
     "instance_norm|InstanceNorm2d"),
    # losses
    ("cross_entropy(label >= C)", lambda: F.cross_entropy(
        LOGITS, tl.Tensor(np.array([0, 3]))), (I,), "cross_entropy"),
    ("cross_entropy(label < 0)", lambda: F.cross_entropy(
        LOGITS, tl.Tensor(np.array([-1, 0]))), (I,), "cross_entropy"),
    ("cross_entropy(labels shape)", lambda: F.cross_entropy(
        LOGITS, tl.Tensor(np.array([0, 1, 2]))), (V, R), "cross_entropy"),
    ("cross_entropy(probs shape)", lambda: F.cross_entropy(LOGITS, tl.zeros(2, 4)), (V, R),
     "cross_entropy"),
    ("cross_entropy(bool labels)", lambda: F.cross_entropy(
        LOGITS, tl.Tensor(np.array([True, False]))), (T, R), "cross_entropy"),
    ("cross_entropy(int logits)", lambda: F.cross_entropy(LOGITS.long(), LABELS), (T, R),
     "cross_entropy"),
    ("cross_entropy(weight size)", lambda: F.cross_entropy(LOGITS, LABELS, tl.ones(2)),
     (V, R), "cross_entropy"),
    ("cross_entropy(reduction)", lambda: F.cross_entropy(LOGITS, LABELS, reduction="avg"),
     (V,), "cross_entropy"),
    ("cross_entropy(label_smoothing)", lambda: F.cross_entropy(
        LOGITS, LABELS, label_smoothing=1.5), (V,), "cross_entropy"),
    ("cross_entropy(label_smoothing nan)", lambda: F.cross_entropy(
        LOGITS, LABELS, label_smoothing=NAN), (V,), "cross_entropy"),
    ("cross_entropy(0-d input)", lambda: F.cross_entropy(tl.zeros(()), LABELS), (V, R, I),
     "cross_entropy"),
    ("cross_entropy(cuda, cpu)", lambda: F.cross_entropy(LOGITS.to("cuda"), LABELS), (R,),
     "cross_entropy"),
    ("CrossEntropyLoss(label >= C)", lambda: nn.CrossEntropyLoss()(
        LOGITS, tl.Tensor(np.array([7, 0]))), (I,), "cross_entropy"),
    ("nll_loss(label >= C)", lambda: F.nll_loss(LOGITS, tl.Tensor(np.array([0, 3]))), (I,),
     "nll_loss"),
    ("nll_loss(float labels)", lambda: F.nll_loss(LOGITS, tl.zeros(2)), (T, R, V), "nll_loss"),
    ("mse_loss(shape)", lambda: F.mse_loss(X, tl.zeros(3, 2)), (V, R), "mse_loss"),
    ("l1_loss(reduction)", lambda: F.l1_loss(X, X, reduction="max"), (V,), "l1_loss"),
    ("smooth_l1_loss(beta < 0)", lambda: F.smooth_l1_loss(X, X, beta=-1.0), (V, R),
     "smooth_l1_loss"),
    ("huber_loss(delta 0)", lambda: F.huber_loss(X, X, delta=0.0), (V, R), "huber_loss"),
    ("huber_loss(delta nan)", lambda: F.huber_loss(X, X, delta=NAN), (V, R), "huber_loss"),
    ("bce_with_logits(shape)", lambda: F.binary_cross_entropy_with_logits(X, tl.zeros(3)),
     (V,), "binary_cross_entropy_with_logits"),
    ("bce_with_logits(pos_weight)", lambda: F.binary_cross_entropy_with_logits(
        X, X, pos_weight=tl.ones(2)), (V, R), "binary_cross_entropy_with_logits"),
    ("multi_margin_loss(p 3)", lambda: F.multi_margin_loss(LOGITS, LABELS, p=3), (V,),
     "multi_margin_loss"),
    ("multi_margin_loss(label >= C)", lambda: F.multi_margin_loss(
        LOGITS, tl.Tensor(np.array([3, 0]))), (I, R), "multi_margin_loss"),
    ("multi_margin_loss(3-D)", lambda: F.multi_margin_loss(tl.zeros(2, 3, 1), LABELS), (V, R),
     "multi_margin_loss"),
    ("MSELoss(reduction)", lambda: nn.MSELoss(reduction="avg"), (V,), "MSELoss"),
    ("MultiMarginLoss(p)", lambda: nn.MultiMarginLoss(p=0), (V,), "MultiMarginLoss"),
    # gradient clipping, init, modules
    ("clip_grad_norm_(max_norm nan)", lambda: nn.utils.clip_grad_norm_([_param()], NAN), (V,),
     "clip_grad_norm_"),
    ("clip_grad_norm_(norm_type 0)", lambda: nn.utils.clip_grad_norm_([_param()], 1.0, 0),
     (V, R), "clip_grad_norm_"),
    ("clip_grad_norm_(non-tensor)", lambda: nn.utils.clip_grad_norm_([1.0], 1.0), (T,),
     "clip_grad_norm_"),
    ("clip_grad_value_(negative)", lambda: nn.utils.clip_grad_value_([_param()], -1.0), (V,),
     "clip_grad_value_"),
    ("calculate_gain(name)", lambda: nn.init.calculate_gain("swoosh"), (V,), "swoosh"),
    ("kaiming_normal_(1-D)", lambda: nn.init.kaiming_normal_(tl.zeros(3)), (V,), "fan"),
    ("xavier_uniform_(1-D)", lambda: nn.init.xavier_uniform_(tl.zeros(3)), (V,), "fan"),
    ("load_state_dict(shape)", _load_bad_shape, (R, V), "weight"),
    ("load_state_dict(missing)", _load_missing_key, (R, KeyError), "bias"),
    ("Module.to(device)", lambda: nn.Linear(2, 2).to("tpu"), (V, R, T), "tpu"),
    # optimisers
    ("SGD(lr nan)", lambda: optim.SGD([_param()], lr=NAN), (V,), "lr|learning rate"),
    ("SGD(lr < 0)", lambda: optim.SGD([_param()], lr=-0.1), (V,), "lr|learning rate"),
    ("SGD(momentum nan)", lambda: optim.SGD([_param()], lr=0.1, momentum=NAN), (V,),
     "momentum"),
    ("SGD(momentum < 0)", lambda: optim.SGD([_param()], lr=0.1, momentum=-0.5), (V,),
     "momentum"),
    ("SGD(weight_decay < 0)", lambda: optim.SGD([_param()], lr=0.1, weight_decay=-1.0), (V,),
     "weight_decay"),
    ("SGD(nesterov without momentum)", lambda: optim.SGD([_param()], lr=0.1, nesterov=True),
     (V,), "nesterov"),
    ("SGD(nesterov with dampening)", lambda: optim.SGD(
        [_param()], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), (V,), "nesterov"),
    ("SGD(empty)", lambda: optim.SGD([], lr=0.1), (V,), "empty"),
    ("SGD(a tensor)", lambda: optim.SGD(_param(), lr=0.1), (T,), "iterable"),
    ("SGD(duplicate)", lambda: optim.SGD([_param()] * 2, lr=0.1), (V,), "SGD"),
    ("SGD(non-tensor)", lambda: optim.SGD([1.0], lr=0.1), (T,), "SGD"),
    ("Adam(beta1 = 1)", lambda: optim.Adam([_param()], betas=(1.0, 0.9)), (V,), "beta"),
    ("Adam(beta2 < 0)", lambda: optim.Adam([_param()], betas=(0.9, -0.1)), (V,), "beta"),
    ("Adam(betas nan)", lambda: optim.Adam([_param()], betas=(NAN, 0.9)), (V,), "beta"),
    ("Adam(eps < 0)", lambda: optim.Adam([_param()], eps=-1e-8), (V,), "eps"),
    ("AdamW(weight_decay nan)", lambda: optim.AdamW([_param()], weight_decay=NAN), (V,),
     "weight_decay"),
    ("RMSprop(alpha < 0)", lambda: optim.RMSprop([_param()], alpha=-0.1), (V,), "alpha"),
    ("RMSprop(momentum nan)", lambda: optim.RMSprop([_param()], momentum=NAN), (V,),
     "momentum"),
    ("RMSprop(eps nan)", lambda: optim.RMSprop([_param()], eps=NAN), (V,), "eps"),
    ("Adagrad(lr_decay < 0)", lambda: optim.Adagrad([_param()], lr_decay=-1.0), (V,),
     "lr_decay"),
    ("Adagrad(initial_accumulator_value < 0)", lambda: optim.Adagrad(
        [_param()], initial_accumulator_value=-1.0), (V,), "initial_accumulator_value"),
    ("LBFGS(lr nan)", lambda: optim.LBFGS([_param()], lr=NAN), (V,), "lr|learning rate"),
    ("LBFGS(max_iter 0)", lambda: optim.LBFGS([_param()], max_iter=0), (V,), "max_iter"),
    ("LBFGS(line search)", lambda: optim.LBFGS([_param()], line_search_fn="armijo"), (V,),
     "armijo"),
    ("LBFGS(two groups)", _two_groups_lbfgs, (V,), "LBFGS"),
    ("add_param_group(duplicate)", lambda: (lambda p: optim.SGD([p], lr=0.1).add_param_group(
        {"params": [p]}))(_param()), (V,), "param"),
    # schedulers
    ("StepLR(step_size 0)", lambda: S.StepLR(_opt(), 0), (V,), "StepLR"),
    ("StepLR(float step_size)", lambda: S.StepLR(_opt(), 2.5), (V, T), "StepLR"),
    ("StepLR(not an optimizer)", lambda: S.StepLR(None, 2), (T,), "StepLR"),
    ("ExponentialLR(gamma nan)", lambda: S.ExponentialLR(_opt(), NAN), (V,), "ExponentialLR"),
    ("LinearLR(start_factor 0)", lambda: S.LinearLR(_opt(), 0.0), (V,), "LinearLR"),
    ("LinearLR(end_factor > 1)", lambda: S.LinearLR(_opt(), 0.5, 1.5), (V,), "LinearLR"),
    ("CosineAnnealingLR(T_max 0)", lambda: S.CosineAnnealingLR(_opt(), 0), (V,),
     "CosineAnnealingLR"),
    ("CosineAnnealingWarmRestarts(T_0 0)", lambda: S.CosineAnnealingWarmRestarts(_opt(), 0),
     (V,), "CosineAnnealingWarmRestarts"),
    ("CosineAnnealingWarmRestarts(T_mult 0.5)", lambda: S.CosineAnnealingWarmRestarts(
        _opt(), 5, 0.5), (V,), "CosineAnnealingWarmRestarts"),
    ("OneCycleLR(no total)", lambda: S.OneCycleLR(_opt(), 0.1), (V,), "OneCycleLR"),
    ("OneCycleLR(total_steps 0)", lambda: S.OneCycleLR(_opt(), 0.1, total_steps=0), (V,),
     "OneCycleLR"),
    ("OneCycleLR(pct_start 2)", lambda: S.OneCycleLR(_opt(), 0.1, 10, pct_start=2.0), (V,),
     "OneCycleLR"),
    ("InverseSqrtLR(timescale 0)", lambda: S.InverseSqrtLR(_opt(), 0), (V,), "InverseSqrtLR"),
    ("LambdaLR(not callable)", lambda: S.LambdaLR(_opt(), 3), (T, V), "LambdaLR"),
    ("SequentialLR(milestones)", lambda: (lambda o: S.SequentialLR(
        o, [S.StepLR(o, 2), S.StepLR(o, 2)], [3, 4]))(_opt()), (V,), "SequentialLR"),
    ("SequentialLR(other optimizer)", _sequential_of_other_optimizer, (V,), "SequentialLR"),
    ("ReduceLROnPlateau(mode)", lambda: S.ReduceLROnPlateau(_opt(), mode="up"), (V,),
     "ReduceLROnPlateau"),
    ("ReduceLROnPlateau(factor 1)", lambda: S.ReduceLROnPlateau(_opt(), factor=1.0), (V,),
     "ReduceLROnPlateau"),
    # data: datasets, loader, transforms
    ("TensorDataset(lengths)", lambda: data.TensorDataset(np.zeros((3, 2)), np.zeros(4)), (V,),
     "TensorDataset"),
    ("Subset(index)", lambda: data.Subset(data.TensorDataset(np.zeros((3, 2))), [0, 5])[1],
     (I,), "Subset"),
    ("random_split(lengths)", lambda: data.random_split(
        data.TensorDataset(np.zeros((3, 2))), [2, 2]), (V,), "random_split"),
    ("DataLoader(batch_size 0)", lambda: data.DataLoader(
        data.TensorDataset(np.zeros((3, 2))), batch_size=0), (V,), "batch_size"),
    ("DataLoader(batch_size float)", lambda: data.DataLoader(
        data.TensorDataset(np.zeros((3, 2))), batch_size=2.5), (V, T), "batch_size"),
    ("DataLoader(num_workers < 0)", lambda: data.DataLoader(
        data.TensorDataset(np.zeros((3, 2))), num_workers=-1), (V,), "num_workers"),
    ("DataLoader(prefetch_factor 0)", lambda: data.DataLoader(
        data.TensorDataset(np.zeros((3, 2))), num_workers=1, prefetch_factor=0), (V,),
     "prefetch_factor"),
    ("DataLoader(not a dataset)", lambda: _iterate(data.DataLoader(5)), (T,), "DataLoader"),
    ("RandomCrop(size 0)", lambda: data.RandomCrop(0), (V,), "RandomCrop"),
    ("RandomCrop(padding < 0)", lambda: data.RandomCrop(8, padding=-1), (V,), "RandomCrop"),
    ("RandomCrop(padding_mode)", lambda: data.RandomCrop(8, padding_mode="wrap"), (V,),
     "RandomCrop"),
    ("RandomCrop(too big)", lambda: data.RandomCrop(9)(IMAGES), (V,), "RandomCrop"),
    ("RandomCrop(rank)", lambda: data.RandomCrop(4)(IMAGES[0]), (V, T), "RandomCrop"),
    ("RandomHorizontalFlip(p)", lambda: data.RandomHorizontalFlip(1.5), (V,),
     "RandomHorizontalFlip"),
    ("RandomHorizontalFlip(p nan)", lambda: data.RandomHorizontalFlip(NAN), (V,),
     "RandomHorizontalFlip"),
    ("RandomResizedCrop(scale)", lambda: data.RandomResizedCrop(4, scale=(1.0, 0.5)), (V,),
     "RandomResizedCrop"),
    ("ColorJitter(negative)", lambda: data.ColorJitter(brightness=-0.1), (V,), "ColorJitter"),
    ("Cutout(size 0)", lambda: data.Cutout(0), (V,), "Cutout"),
    ("Mixup(alpha 0)", lambda: data.Mixup(0.0), (V,), "Mixup"),
    ("Normalize(std 0)", lambda: data.Normalize([0.0] * 3, [1.0, 0.0, 1.0]), (V,), "Normalize"),
    ("Normalize(channels)", lambda: data.Normalize([0.0] * 2, [1.0] * 2)(IMAGES), (V,),
     "Normalize"),
]


@pytest.mark.parametrize("name,call,errors,words", CASES, ids=[c[0] for c in CASES])
def test_bad_argument_raises(name, call, errors, words):
    _raises(errors, words, call)


# ----- hypothesis: the numeric parts -----
def _raises(errors, words, call):
    with pytest.raises(errors) as info:
        call()
    message = str(info.value)
    assert re.search(words, message, re.IGNORECASE), f"message {message!r} lacks {words!r}"


bad_size = st.one_of(st.integers(-10 ** 6, -1), st.floats(allow_nan=True).filter(
    lambda f: not (f == int(f) if math.isfinite(f) else False)))


@given(size=bad_size, maker=st.sampled_from(["zeros", "ones", "randn", "rand", "reshape"]))
def test_creation_rejects_bad_sizes(size, maker):
    if maker == "reshape":
        call = lambda: X.reshape(size, -1)  # noqa: E731
    else:
        call = lambda: getattr(tl, maker)(2, size)  # noqa: E731
    _raises((V, T, R), maker, call)


DIM_OPS = {
    "sum": lambda x, d: x.sum(axis=d), "mean": lambda x, d: x.mean(axis=d),
    "max": lambda x, d: x.max(axis=d), "min": lambda x, d: x.min(axis=d),
    "argmax": lambda x, d: x.argmax(axis=d), "std": lambda x, d: x.std(axis=d),
    "softmax": lambda x, d: x.softmax(d), "log_softmax": lambda x, d: x.log_softmax(d),
    "squeeze": lambda x, d: x.squeeze(d),
    "unsqueeze": lambda x, d: x.unsqueeze(d + 1 if d >= 0 else d - 1),  # its range is ndim + 1
    "transpose": lambda x, d: x.transpose(0, d), "flatten": lambda x, d: x.flatten(d),
    "split": lambda x, d: x.split(1, axis=d), "cat": lambda x, d: tl.cat([x, x], axis=d),
}


@given(op=st.sampled_from(sorted(DIM_OPS)),
       dim=st.one_of(st.integers(2, 10 ** 9), st.integers(-10 ** 9, -3)))
def test_out_of_range_dims_raise_index_error(op, dim):
    _raises((I,), op.rstrip("_"), lambda: DIM_OPS[op](X, dim))


@given(bad=st.one_of(st.integers(3, 2 ** 62), st.integers(-2 ** 62, -1)),
       loss=st.sampled_from(["cross_entropy", "nll_loss", "multi_margin_loss",
                             "CrossEntropyLoss", "NLLLoss"]),
       position=st.integers(0, 1), ignore_index=st.sampled_from([-100, 1]))
def test_labels_out_of_range(bad, loss, position, ignore_index):
    """A label outside [0, C) that is not ignore_index, at either position: an IndexError
    naming the loss before any kernel reads it (torch: 'Target 3 is out of bounds')."""
    if bad == ignore_index:
        bad = -7
    y = np.zeros(2, np.int64)
    y[position] = bad
    target = tl.Tensor(y)
    call = {"cross_entropy": lambda: F.cross_entropy(LOGITS, target, ignore_index=ignore_index),
            "nll_loss": lambda: F.nll_loss(LOGITS, target, ignore_index=ignore_index),
            "multi_margin_loss": lambda: F.multi_margin_loss(LOGITS, target),
            "CrossEntropyLoss": lambda: nn.CrossEntropyLoss(ignore_index=ignore_index)(
                LOGITS, target),
            "NLLLoss": lambda: nn.NLLLoss(ignore_index=ignore_index)(LOGITS, target)}[loss]
    words = {"CrossEntropyLoss": "cross_entropy|CrossEntropyLoss",
             "NLLLoss": "nll_loss|NLLLoss"}.get(loss, loss)
    _raises((I, R) if loss == "multi_margin_loss" else (I,), words, call)


@given(shapes=st.tuples(*[st.integers(1, 4)] * 4).filter(lambda s: s[1] != s[2]))
def test_matmul_shape_mismatch(shapes):
    a, b, c, d = shapes
    _raises((R,), "matmul", lambda: tl.zeros(a, b) @ tl.zeros(c, d))


@given(index=st.one_of(st.integers(2, 2 ** 62), st.integers(-2 ** 62, -3)),
       as_tensor=st.booleans())
def test_index_out_of_range(index, as_tensor):
    key = tl.Tensor(np.array([0, index], np.int64)) if as_tensor else index
    _raises((I,), "index|bounds", lambda: X[key])


bad_fraction = st.one_of(st.just(NAN), st.floats(-1e9, -1e-9), st.floats(1.0 + 1e-9, 1e9),
                         st.just(INF), st.just(-INF))
bad_nonneg = st.one_of(st.just(NAN), st.floats(-1e9, -1e-12), st.just(-INF))

OPTIMISER_ARGS = {  # (rule, keyword, strategy of bad values, word in the message)
    "SGD.lr": ("SGD", "lr", bad_nonneg, "lr|learning rate"),
    "SGD.momentum": ("SGD", "momentum", bad_nonneg, "momentum"),
    "SGD.dampening": ("SGD", "dampening", st.just(NAN), "dampening"),
    "SGD.weight_decay": ("SGD", "weight_decay", bad_nonneg, "weight_decay"),
    "Adam.lr": ("Adam", "lr", bad_nonneg, "lr|learning rate"),
    "Adam.eps": ("Adam", "eps", bad_nonneg, "eps"),
    "Adam.beta1": ("Adam", "betas", bad_fraction.map(lambda b: (b, 0.999)), "beta"),
    "Adam.beta2": ("Adam", "betas", bad_fraction.map(lambda b: (0.9, b)), "beta"),
    "AdamW.weight_decay": ("AdamW", "weight_decay", bad_nonneg, "weight_decay"),
    "RMSprop.alpha": ("RMSprop", "alpha", bad_nonneg, "alpha"),
    "RMSprop.momentum": ("RMSprop", "momentum", bad_nonneg, "momentum"),
    "RMSprop.eps": ("RMSprop", "eps", bad_nonneg, "eps"),
    "Adagrad.lr_decay": ("Adagrad", "lr_decay", bad_nonneg, "lr_decay"),
    "Adagrad.eps": ("Adagrad", "eps", bad_nonneg, "eps"),
    "LBFGS.lr": ("LBFGS", "lr", bad_nonneg, "lr|learning rate"),
}


@given(arg=st.sampled_from(sorted(OPTIMISER_ARGS)), data_=st.data())
def test_optimiser_rejects_bad_hyperparameters(arg, data_):
    rule, key, values, words = OPTIMISER_ARGS[arg]
    value = data_.draw(values)
    _raises((V,), words, lambda: getattr(optim, rule)([_param()], **{key: value}))


@given(arg=st.sampled_from(sorted(k for k in OPTIMISER_ARGS if not k.startswith("LBFGS"))),
       data_=st.data())  # LBFGS has one group only, as in torch
def test_param_group_rejects_bad_hyperparameters(arg, data_):
    """The same checks for a group added later: nothing is added when it is refused."""
    rule, key, values, words = OPTIMISER_ARGS[arg]
    value = data_.draw(values)
    opt = getattr(optim, rule)([_param()])
    _raises((V,), words, lambda: opt.add_param_group({"params": [_param()], key: value}))
    assert len(opt.param_groups) == 1


@given(p=bad_fraction, which=st.sampled_from(["Dropout", "Dropout2d", "dropout", "dropout2d",
                                              "RandomHorizontalFlip", "StochasticDepth"]))
def test_probabilities_out_of_range(p, which):
    call = {"Dropout": lambda: nn.Dropout(p), "Dropout2d": lambda: nn.Dropout2d(p),
            "dropout": lambda: F.dropout(X, p), "dropout2d": lambda: F.dropout2d(X4, p),
            "RandomHorizontalFlip": lambda: data.RandomHorizontalFlip(p),
            "StochasticDepth": lambda: nn.StochasticDepth(p, "row")}[which]
    _raises((V,), which, call)


@given(batch_size=st.one_of(st.integers(-10 ** 6, 0), st.floats(0.5, 100).filter(
    lambda f: f != int(f)), st.just(True)))
def test_dataloader_rejects_bad_batch_sizes(batch_size):
    ds = data.TensorDataset(np.zeros((3, 2)))
    _raises((V, T), "batch_size", lambda: data.DataLoader(ds, batch_size=batch_size))


@given(bad=st.integers(-3, 0), where=st.sampled_from(["kernel_size", "stride"]),
       which=st.sampled_from(["conv2d", "max_pool2d", "avg_pool2d", "Conv2d", "MaxPool2d",
                              "AvgPool2d"]))
def test_non_positive_window_arguments(bad, where, which):
    """kernel_size or stride <= 0."""
    k, s = (bad, 1) if where == "kernel_size" else (2, bad)
    call = {"conv2d": lambda: F.conv2d(X4, tl.zeros(6, 4, 3, 3) if where == "stride" else
                                       tl.zeros(6, 4, 0, 0), stride=s),
            "max_pool2d": lambda: F.max_pool2d(X4, k, s),
            "avg_pool2d": lambda: F.avg_pool2d(X4, k, s),
            "Conv2d": lambda: nn.Conv2d(4, 6, k, s),
            "MaxPool2d": lambda: nn.MaxPool2d(k, s),
            "AvgPool2d": lambda: nn.AvgPool2d(k, s)}[which]
    _raises((V, R), which, call)
