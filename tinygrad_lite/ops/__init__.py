"""Differentiable ops, one module per family; each Function keeps forward and backward together."""
import functools

# The Tensor class, set by tensor.py (which imports the ops, so they cannot import it). Ops
# build plain Tensors even from subclasses such as nn.Parameter.
Tensor = None


def torch_names(fn):
    """Accept PyTorch's `dim=` and `keepdim=` for `axis=` and `keepdims=`."""
    @functools.wraps(fn)
    def method(self, *args, **kwargs):
        for torch_name, name in (("dim", "axis"), ("keepdim", "keepdims")):
            if torch_name in kwargs:
                if name in kwargs:
                    raise TypeError(f"{fn.__name__}: got both {name}= and its alias "
                                    f"{torch_name}=")
                kwargs[name] = kwargs.pop(torch_name)
        return fn(self, *args, **kwargs)
    return method
