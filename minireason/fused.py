"""Fused projections: several linear maps of one input as one matmul, under their Hugging Face names.

Q, K and V (and an MLP's gate and up) are one `FusedLinear` each, so a decode step runs one kernel instead of three
or two. Checkpoints, loaders and converters never see a fused name: `keep_checkpoint_names` makes the owner's state
dict read and write the parts under their own names, in Hugging Face's order.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class FusedLinear(nn.Linear):
    """Several projections of one input as one matmul (Q, K and V; gate and up): one kernel instead of three or
    two in every decode step. Checkpoints keep the Hugging Face names: see `keep_checkpoint_names`."""

    def __init__(self, in_features: int, parts: dict[str, int], bias: bool):
        super().__init__(in_features, sum(parts.values()), bias=bias)
        self.parts = parts  # checkpoint name -> rows, in order

    def split(self, state: dict, prefix: str, name: str) -> None:
        """Replace `prefix+name.weight` (and bias) in a state dict by its parts' rows, under their names."""
        for kind in ("weight", "bias"):
            if f"{prefix}{name}.{kind}" in state:
                rows = state.pop(f"{prefix}{name}.{kind}").split(list(self.parts.values()))
                state.update({f"{prefix}{part}.{kind}": r for part, r in zip(self.parts, rows)})

    def join(self, state: dict, prefix: str, name: str) -> None:
        """The inverse of `split`: the parts' tensors, concatenated under `prefix+name`."""
        for kind in ("weight", "bias"):
            keys = [f"{prefix}{part}.{kind}" for part in self.parts]
            if all(k in state for k in keys):
                state[f"{prefix}{name}.{kind}"] = torch.cat([state.pop(k) for k in keys])


def keep_checkpoint_names(owner: nn.Module) -> None:
    """Make `owner`'s state dict read and write its FusedLinear children under their parts' Hugging Face names,
    in the Hugging Face order (the parts first), so checkpoints, loaders and converters never see a fused name.
    The hooks sit on the owner: load_state_dict hands a child only the keys under the child's own prefix."""
    fused = {name: child for name, child in owner.named_children() if isinstance(child, FusedLinear)}

    def split(module, state: dict, prefix: str, local_metadata) -> None:
        for name, child in fused.items():
            child.split(state, prefix, name)
        first = [f"{prefix}{part}.{kind}" for child in fused.values() for part in child.parts
                 for kind in ("weight", "bias")]
        first = [k for k in first if k in state]
        state.update({k: state.pop(k) for k in first + [k for k in state if k.startswith(prefix) and k not in first]})

    def join(module, state: dict, prefix: str, *args) -> None:
        for name, child in fused.items():
            child.join(state, prefix, name)

    owner.register_state_dict_post_hook(split)
    owner.register_load_state_dict_pre_hook(join)
