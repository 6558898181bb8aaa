"""Skeleton-topology building blocks shared by HTNet and NanoHTNet.

Terms follow the HTNet paper: a *Hierarchical Mixer* block splits its channels into three groups,
one per semantic level of the skeleton, processed progressively (each level receives the output of
the previous one):

* joint level  -- :class:`JointLevelGraphConv`: graph convolution over the normalised bone
  adjacency;
* part level   -- :class:`IntraPartConstraint`: every limb part uses its parent (reference) joint as
  the origin for its end joints, so errors are not passed down the chain unchecked;
* body level   -- :class:`BodyLevelAttention`: multi-head self-attention over all joints.

All modules take per-joint token features in *joint-major* layout ``(J, N, D)``, where ``N`` is
any flattened batch (batch x frames, or batch x DCT coefficients): graph and part operations are
then single (J, J) @ (J, N*D) matrix products without copies. Everything is written with Linear /
MatMul / Softmax / LayerNorm so it exports to plain ONNX ops.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from pose3d_ros.core.skeletons import JointSet

ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU}


def activation(name: str) -> nn.Module:
    """Activation by name. SiLU is the CPU-friendly default (GELU's erf is ~3x slower here)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known {sorted(ACTIVATIONS)}") from None


def normalized_adjacency(joint_set: JointSet) -> torch.Tensor:
    """Symmetric normalised bone adjacency with self loops: D^-1/2 (A + I) D^-1/2, shape (J, J)."""
    a = joint_set.adjacency(self_loops=True).astype(np.float64)
    d = 1.0 / np.sqrt(a.sum(axis=1))
    return torch.from_numpy((d[:, None] * a * d[None, :]).astype(np.float32))


class Mlp(nn.Module):
    """Two-layer perceptron: (..., D_in) -> (..., D_out)."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        out_dim: int | None = None,
        dropout: float = 0.0,
        act: str = "silu",
    ):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = activation(act)
        self.fc2 = nn.Linear(hidden, out_dim or dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class GraphConv(nn.Module):
    """Graph convolution over the skeleton, joint-major: (J, N, C_in) -> (J, N, C_out).

    Self and neighbour messages get separate weights (a joint's own evidence is treated differently
    from its neighbours'); the fixed normalised adjacency is refined by a learnable symmetric offset
    initialised to zero, so training starts from the pure bone topology. Joint-major layout makes
    the neighbour aggregation one (J, J) @ (J, N*C) matrix product without copies.
    """

    def __init__(self, in_dim: int, out_dim: int, adjacency: torch.Tensor):
        super().__init__()
        j = adjacency.shape[0]
        self.register_buffer("adjacency", adjacency.clone(), persistent=False)
        self.register_buffer("eye", torch.eye(j), persistent=False)
        self.adjacency_offset = nn.Parameter(torch.zeros(j, j))
        self.self_linear = nn.Linear(in_dim, out_dim)
        self.neighbour_linear = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        j, _, c = x.shape
        a = self.adjacency + 0.5 * (self.adjacency_offset + self.adjacency_offset.t())  # (J, J)
        a_self = (a * self.eye).sum(-1).reshape(j, 1, 1)  # (J, 1, 1)
        a_nb = a * (1.0 - self.eye)  # (J, J), zero diagonal
        neighbours = torch.matmul(a_nb, x.reshape(j, -1)).reshape(j, -1, c)  # (J, N, C_in)
        return a_self * self.self_linear(x) + self.neighbour_linear(neighbours)


class JointLevelGraphConv(nn.Module):
    """Joint level: LN -> GCN -> act -> GCN -> LN, residual. (J, N, D) -> (J, N, D)."""

    def __init__(self, dim: int, hidden: int, adjacency: torch.Tensor, act: str = "silu"):
        super().__init__()
        self.norm_in = nn.LayerNorm(dim)
        self.gcn1 = GraphConv(dim, hidden, adjacency)
        self.act = activation(act)
        self.gcn2 = GraphConv(hidden, dim, adjacency)
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm_out(self.gcn2(self.act(self.gcn1(self.norm_in(x)))))


class IntraPartConstraint(nn.Module):
    """Part level (Intra-Part Constraint), joint-major: (J, N, D) -> (J, N, D).

    For every limb part ``(r, m_1, ..., m_n)`` of the joint set, ``r`` (the joint nearest the root)
    is the part's reference. Two constraints are added to the part's non-reference joints:

    * part token: the reference feature together with the *reference-relative* features
      ``f(m_i) - f(r)`` of all members, projected to one token per part and broadcast to ``m_i``;
    * parent token: each member's feature relative to its kinematic parent,
      ``[f(parent(m)), f(m) - f(parent(m))]``, projected per joint (the end joint is constrained by
      the joint it hangs from, as in backtracking along the chain).

    Joints outside all parts (the root) only keep their residual. The output of a member joint
    depends only on joints of its own part (tested). Selections and differences are fixed
    matrices, so the whole level is MatMul + Linear in ONNX.
    """

    def __init__(
        self, dim: int, hidden: int, joint_set: JointSet, dropout: float = 0.0, act: str = "silu"
    ):
        super().__init__()
        parts = list(joint_set.parts.values())
        length = max(len(p) for p in parts)
        j, p = joint_set.num_joints, len(parts)
        # Row (k, 0) selects the reference r_k, row (k, i) gives m_i - r_k; padded rows are zero.
        relative = torch.zeros(p, length, j)
        assign = torch.zeros(j, p)  # (J, P): broadcasts part tokens to their non-reference joints
        parent = torch.zeros(j, j)  # (J, J): member -> its kinematic parent
        for k, part in enumerate(parts):
            relative[k, 0, part[0]] = 1.0
            for i, m in enumerate(part[1:], start=1):
                relative[k, i, m] += 1.0
                relative[k, i, part[0]] -= 1.0
                assign[m, k] = 1.0
                parent[m, joint_set.parents[m]] = 1.0
        member = assign.sum(1)  # (J,) 1 for non-reference part members
        self.register_buffer("relative", relative.reshape(p * length, j), persistent=False)
        self.register_buffer("assign", assign, persistent=False)
        self.register_buffer("parent", parent, persistent=False)
        self.register_buffer("parent_relative", torch.diag(member) - parent, persistent=False)
        self.register_buffer("member_mask", member.reshape(j, 1, 1), persistent=False)
        self.num_parts, self.length = p, length

        self.norm = nn.LayerNorm(dim)
        self.part_proj = nn.Linear(dim * length, dim)  # [f(r), f(m_1)-f(r), ...] -> part token
        self.part_norm = nn.LayerNorm(dim)
        self.part_mlp = Mlp(dim, hidden, dropout=dropout, act=act)
        self.parent_proj = nn.Linear(dim, dim)  # f(parent)
        self.bone_proj = nn.Linear(dim, dim, bias=False)  # f(m) - f(parent)
        self.act = activation(act)

    def reference_relative(self, h: torch.Tensor) -> torch.Tensor:
        """(J, N, D) -> (P, L, N, D): slot 0 is f(r), slot i is f(m_i) - f(r) (zero if padded)."""
        j, _, d = h.shape
        rel = torch.matmul(self.relative, h.reshape(j, -1))
        return rel.reshape(self.num_parts, self.length, -1, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)  # (J, N, D)
        j, _, d = h.shape
        rel = self.reference_relative(h).permute(0, 2, 1, 3)  # (P, N, L, D)
        tokens = self.part_proj(rel.reshape(self.num_parts, -1, self.length * d))  # (P, N, D)
        tokens = tokens + self.part_mlp(self.part_norm(tokens))
        part = torch.matmul(self.assign, tokens.reshape(self.num_parts, -1)).reshape(j, -1, d)
        flat = h.reshape(j, -1)
        par = torch.matmul(self.parent, flat).reshape(j, -1, d)  # f(parent(m)), 0 elsewhere
        bone = torch.matmul(self.parent_relative, flat).reshape(j, -1, d)  # f(m) - f(parent(m))
        parent = (self.parent_proj(par) + self.bone_proj(bone)) * self.member_mask
        return x + self.act(part) + self.act(parent)


class BodyLevelAttention(nn.Module):
    """Body level: multi-head self-attention over the J joints, pre-LN residual. (J, N, D)."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"body-level width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.dropout = dropout
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        j = x.shape[0]
        qkv = self.qkv(self.norm(x)).reshape(j, -1, 3, self.num_heads, self.head_dim)
        qkv = qkv.permute(2, 1, 3, 0, 4)  # (3, N, H, J, Dh)
        q, k, v = qkv.unbind(0)
        out = functional.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0
        )  # (N, H, J, Dh)
        out = out.permute(2, 0, 1, 3).reshape(j, -1, self.num_heads * self.head_dim)  # (J, N, D)
        return x + self.drop(self.proj(out))


class HierarchicalMixer(nn.Module):
    """Spatial Hierarchical Mixer (one HTNet block), joint-major: (J, N, D) -> (J, N, D).

    Channels are split in three equal groups (joint / part / body). Progressive design: the part
    level receives joint-level output added to its own channels, the body level receives the
    part-level output added to its own; the three are concatenated and mixed by a channel MLP.
    """

    def __init__(
        self,
        dim: int,
        mlp_hidden: int,
        gcn_hidden: int,
        num_heads: int,
        joint_set: JointSet,
        adjacency: torch.Tensor,
        dropout: float = 0.0,
        act: str = "silu",
    ):
        super().__init__()
        if dim % 3:
            raise ValueError(f"width {dim} must be divisible by 3 (joint/part/body channel split)")
        d = dim // 3
        self.split = d
        self.joint_level = JointLevelGraphConv(d, gcn_hidden, adjacency, act)
        self.part_level = IntraPartConstraint(d, max(d, mlp_hidden // 3), joint_set, dropout, act)
        self.body_level = BodyLevelAttention(d, num_heads, dropout)
        self.norm = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden, dropout=dropout, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_joint, x_part, x_body = torch.split(x, self.split, dim=-1)  # 3 x (J, N, D/3)
        x_joint = self.joint_level(x_joint)
        x_part = self.part_level(x_part + x_joint)
        x_body = self.body_level(x_body + x_part)
        x = torch.cat([x_joint, x_part, x_body], dim=-1)  # (J, N, D)
        return x + self.mlp(self.norm(x))
