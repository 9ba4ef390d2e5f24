"""Transfer learning: freeze the layers of a trained model up to a named submodule (and unfreeze
them again), so that training on a small data set changes only what follows.

The lectures' recipe: train on a big data set (or load a saved model), freeze the feature
layers, put a new last layer in and train it on the small data set; with more data, fine-tune
more layers with about a tenth of the learning rate (parameter groups).

    >>> freeze(model, upto="13")           # all but the last layer of a 15-layer Sequential
    ['0.weight', '1.weight', '1.bias', ...]
    >>> model.add_module("14", nn.Linear(hidden, 5))     # a new head for 5 new classes
    >>> opt = optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)

Freezing sets requires_grad False, so backward computes no gradient for those parameters and
every optimiser skips them (the base Optimizer skips parameters that are frozen or have no
gradient, momentum and weight decay included): they stay bit for bit what they were. Batch
norm's running statistics are buffers, not parameters: in train mode a frozen batch norm still
updates them. To keep them too, put the frozen modules in eval mode after each model.train(),
e.g. with LambdaCallback(on_epoch_start=lambda trainer, epoch: features.eval()).
"""
__all__ = ["freeze", "unfreeze"]


def _parameters_upto(op, model, upto):
    """(name, parameter) for the parameters of the modules that named_modules() lists up to
    and including `upto`, with all of its submodules (every module when upto is None)."""
    if upto is not None and not isinstance(upto, str):
        raise TypeError(f"{op}: upto must be a submodule's name as named_modules() gives it "
                        f"(a str such as 'features' or '3') or None for every layer, got "
                        f"{type(upto).__name__} {upto!r}")
    names = [name for name, _ in model.named_modules()]
    if upto is None or upto == "":
        chosen = set(names)
    elif upto not in names:
        raise ValueError(f"{op}: {type(model).__name__} has no submodule named {upto!r}; the "
                         f"names are {[n for n in names if n]}")
    else:
        # named_modules() walks the tree depth first, so the submodules of `upto` come right
        # after it; the modules before it include its ancestors (their own parameters too).
        end = names.index(upto)
        chosen = set(names[:end + 1]) | {n for n in names if n.startswith(upto + ".")}
    # a parameter's name is its module's name, a dot, and the attribute's name
    return [(name, p) for name, p in model.named_parameters()
            if name.rpartition(".")[0] in chosen]


def freeze(model, upto=None):
    """Set requires_grad False on the parameters of every module up to and including the
    submodule named `upto` (a name from model.named_modules(), e.g. "features" or "3"; None:
    the whole model). Returns the names of the parameters it froze (named_parameters()
    names). A name that is not there raises ValueError listing the names that are."""
    chosen = _parameters_upto("freeze", model, upto)
    for _, p in chosen:
        p.requires_grad_(False)
    return [name for name, _ in chosen]


def unfreeze(model, upto=None):
    """The inverse of freeze(model, upto): requires_grad True on the same parameters (the
    whole model with upto=None). Returns their names."""
    chosen = _parameters_upto("unfreeze", model, upto)
    for _, p in chosen:
        p.requires_grad_(True)
    return [name for name, _ in chosen]
