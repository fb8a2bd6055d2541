"""MIMIC: Multi-Interaction Modeling with Intelligent Coordination (paper §3, docs/design.md §3).

Eq. 1     per-modality encoder: BiLSTM(32+32) → single-head self-attention → mean over time
          (the three BiLSTMs: nn.LSTM per modality, or all six recurrences in one Triton
          launch, mimic_edge.kernels.bilstm_encoders)
Eq. 2     alignment:  ĥ_m = LayerNorm(h_m) + h_m
Eqs. 3-4  decoupling: S = mean_m ĥ_m,  i_m = ĥ_m − S  (parameter-free)
Eqs. 5-6  bottlenecks, one Linear(64→16) each, shared by the modalities: ĩ_m, h̃_m
Eqs. 7-11 fusion head: M, I = FC(MaxPool(x_t ⊗ x_v ⊗ x_a)); G = σ(W_g [S, I, M]); F = G ⊙ F0
          (mimic_edge.kernels.fusion_head: the PyTorch reference or the fused Triton kernel)
Eqs. 12-15 loss: task loss + λ · InfoNCE between the modalities of each instance
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mimic_edge.config import MODALITIES, MimicConfig
from mimic_edge.kernels import triton_head_usable
from mimic_edge.kernels.reference import fusion_head_reference, pooled_outer
from mimic_edge.models.common import bilstm, masked_mean, task_loss, valid_mask


class UnimodalEncoder(nn.Module):
    """Eq. 1: BiLSTM → scaled dot-product self-attention → (masked) mean over time."""

    def __init__(self, in_dim: int, config: MimicConfig):
        super().__init__()
        d = config.d_model
        self.lstm = nn.LSTM(in_dim, config.lstm_hidden, batch_first=True, bidirectional=True)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self._lstm_weights = self.lstm_weights()  # the same Parameter objects, for torch.compile

    def lstm_weights(self) -> list[Tensor]:
        """nn.LSTM's 8 weights in its order (forward w_ih, w_hh, b_ih, b_hh, then reverse), for the
        Triton encoder. Under torch.compile, the list kept at construction: Dynamo refuses to trace
        into an nn.LSTM module, even to read its parameters (module.to() and load_state_dict keep
        the Parameter objects; load_state_dict(assign=True) would not). Not under torch.export,
        which traces nn.LSTM as Python and swaps in its own parameters: the kept list would hold
        the originals, exported as constants beside the unused parameters."""
        if torch.compiler.is_compiling() and not torch.compiler.is_exporting():
            return self._lstm_weights
        return [w for direction in self.lstm.all_weights for w in direction]

    def forward(self, x: Tensor, lengths: Tensor | None = None, states: Tensor | None = None) -> Tensor:
        """states: this BiLSTM's outputs (B, L, 64) when computed elsewhere (the Triton encoder
        runs all three modalities' recurrences in one launch); None: run self.lstm here."""
        u = bilstm(self.lstm, x, lengths)[0] if states is None else states  # (B, L, 64)
        scores = self.q(u) @ self.k(u).transpose(1, 2) / math.sqrt(u.shape[-1])  # (B, L, L)
        if lengths is not None:  # padded keys get no weight
            keep = valid_mask(lengths, u.shape[1])[:, None, :]  # (B, 1, L)
            scores = scores.masked_fill(~keep, float("-inf"))
        attended = self.o(scores.softmax(dim=-1) @ self.v(u))  # (B, L, 64)
        return masked_mean(attended, lengths)  # (B, 64)


class MIMIC(nn.Module):
    # FLOP breakdown (mimic_edge.bench.flops): submodules per group; "fusion" is everything else
    FLOP_GROUPS = {"encoders": ("encoders", "align"), "head": ("head",)}

    def __init__(self, config: MimicConfig):
        super().__init__()
        self.config = config
        d, b, c = config.d_model, config.bottleneck, config.fusion_dim
        self.encoders = nn.ModuleDict({m: UnimodalEncoder(config.dims[m], config) for m in MODALITIES})
        self.align = nn.ModuleDict({m: nn.LayerNorm(d) for m in MODALITIES})  # Eq. 2
        self.bottleneck_i = nn.Linear(d, b)  # W_i, Eq. 5
        self.bottleneck_h = nn.Linear(d, b)  # W_h, Eq. 6
        pooled = (b // 2) ** 3  # 16³ → MaxPool3d(2) → 8³ = 512
        self.fc_m = nn.Linear(pooled, c)  # Eq. 7
        self.fc_i = nn.Linear(pooled, c)  # Eq. 8
        self.gate = nn.Linear(d + 2 * c, d + 2 * c)  # W_g, Eq. 10
        h = config.head_hidden
        self.head = nn.Sequential(
            nn.Linear(d + 2 * c, h), nn.ReLU(), nn.Dropout(config.dropout),
            nn.Linear(h, h), nn.ReLU(), nn.Dropout(config.dropout),
            nn.Linear(h, config.out_dim),
        )
        # The Triton encoder's packed LSTM weights (kernels/lstm.py pack_weights) and what they were
        # packed from: made once in inference, not per call (see _packed_lstm_weights). Not state.
        self._lstm_pack: tuple[tuple, list[Tensor]] | None = None

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, text: Tensor, audio: Tensor, vision: Tensor, lengths: dict[str, Tensor] | None = None) -> Tensor:
        enc = self.encode(text, audio, vision, lengths)
        fused = self.fuse(enc["h_tilde"], enc["i_tilde"], enc["shared"])  # (B, 192), Eqs. 7-11
        return self.head(fused)  # (B, out)

    def encode(self, text: Tensor, audio: Tensor, vision: Tensor,
               lengths: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Eqs. 1-6: ĥ_m, S, i_m and the bottlenecks ĩ_m, h̃_m."""
        cfg = self.config
        inputs = {"text": text, "audio": audio, "vision": vision}
        lengths = lengths or {}
        xs = {m: torch.zeros_like(inputs[m]) if m in cfg.drop_modalities else inputs[m] for m in MODALITIES}  # paper Table 1
        states = self.triton_recurrences(xs, lengths)  # {m: (B, L_m, 64)}, or {}: each encoder runs its nn.LSTM
        h_hat = {}
        for m in MODALITIES:
            h = self.encoders[m](xs[m], lengths.get(m), states.get(m))  # (B, 64), Eq. 1
            h_hat[m] = self.align[m](h) + h  # Eq. 2
        shared = (h_hat["text"] + h_hat["vision"] + h_hat["audio"]) / 3  # Eq. 3, (B, 64)
        individual = {m: h_hat[m] - shared for m in MODALITIES}  # Eq. 4
        order = ("text", "vision", "audio")  # outer product index order (t, v, a), docs/design.md §3.5
        return {
            "h_hat": torch.stack([h_hat[m] for m in MODALITIES], dim=1),  # (B, 3, 64) in MODALITIES order
            "shared": shared,  # (B, 64)
            "individual": torch.stack([individual[m] for m in MODALITIES], dim=1),  # (B, 3, 64)
            "i_tilde": torch.stack([F.relu(self.bottleneck_i(individual[m])) for m in order], dim=1),  # (B, 3, 16), Eq. 5
            "h_tilde": torch.stack([F.relu(self.bottleneck_h(h_hat[m])) for m in order], dim=1),  # (B, 3, 16), Eq. 6
        }

    def triton_recurrences(self, xs: dict[str, Tensor], lengths: dict[str, Tensor]) -> dict[str, Tensor]:
        """With encoder="triton" where Triton runs: the three BiLSTMs' outputs {m: (B, L_m, 64)}
        from one kernel launch, the values the nn.LSTM path gives, padded steps included
        (kernels/lstm_reference.py). Otherwise {}: chosen, or no Triton for this device (a CPU
        without TRITON_INTERPRET=1, a Jetson), and each encoder runs its own nn.LSTM."""
        if self.config.encoder != "triton" or not triton_head_usable(xs["text"].device):  # the head's rule
            return {}
        from mimic_edge.kernels import bilstm_encoders  # needs triton: imported only when used

        weights = [self.encoders[m].lstm_weights() for m in MODALITIES]
        outs = bilstm_encoders([xs[m] for m in MODALITIES], weights, [lengths.get(m) for m in MODALITIES],
                               packed=self._packed_lstm_weights(weights))
        return dict(zip(MODALITIES, outs))

    def _packed_lstm_weights(self, weights: list[list[Tensor]]) -> list[Tensor] | None:
        """The kernel's packed weights, packed again only when a weight changed (its storage or
        version: an optimizer step, load_state_dict, .to()). None, so that the kernel packs in the
        call, while gradients are recorded (they must reach the weights) or a graph is traced (the
        packing belongs to it)."""
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return None
        from mimic_edge.kernels.lstm import pack_weights

        key = tuple((w.data_ptr(), w._version, w.device, w.dtype) for ws in weights for w in ws)
        if self._lstm_pack is None or self._lstm_pack[0] != key:
            self._lstm_pack = (key, pack_weights(weights))
        return self._lstm_pack[1]

    def representations(self, text: Tensor, audio: Tensor, vision: Tensor,
                        lengths: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Every intermediate of Eqs. 1-11 and the score, for losses and analysis.

        ĩ_m, h̃_m are in (t, v, a) order, the outer product's; ĥ_m and i_m in MODALITIES order.
        The fusion is spelled out here (M, I, G are not outputs of the fused head).
        """
        cfg = self.config
        reps = self.encode(text, audio, vision, lengths)
        interaction = self.fc_m(pooled_outer(reps["h_tilde"])) * float(cfg.use_interaction)  # M, (B, 64), Eq. 7
        individual = self.fc_i(pooled_outer(reps["i_tilde"])) * float(cfg.use_individual)  # I, (B, 64), Eq. 8
        f0 = torch.cat([reps["shared"] * float(cfg.use_shared), individual, interaction], dim=-1)  # (B, 192), Eq. 9
        gate = torch.sigmoid(self.gate(f0))  # G, Eq. 10
        fused = gate * f0  # F, Eq. 11
        return {**reps, "M": interaction, "I": individual, "G": gate, "F0": f0, "fused": fused,
                "score": self.head(fused)}

    def fuse(self, h_tilde: Tensor, i_tilde: Tensor, shared: Tensor) -> Tensor:
        """Eqs. 7-11 through the configured fusion head; ablations zero S, I or M exactly."""
        cfg = self.config
        if cfg.fusion_head == "triton" and triton_head_usable(shared.device):
            from mimic_edge.kernels import fusion_head as head  # needs triton: imported only when used
        else:  # chosen, or no Triton for this device (a CPU without TRITON_INTERPRET=1, a Jetson)
            head = fusion_head_reference

        def kept(tensor: Tensor, keep: bool) -> Tensor:  # the tensor itself: no per-call copy of a weight
            return tensor if keep else torch.zeros_like(tensor)

        return head(
            h_tilde, i_tilde, kept(shared, cfg.use_shared),
            kept(self.fc_m.weight, cfg.use_interaction), kept(self.fc_m.bias, cfg.use_interaction),  # zero FC ⇒ M = 0
            kept(self.fc_i.weight, cfg.use_individual), kept(self.fc_i.bias, cfg.use_individual),
            self.gate.weight, self.gate.bias,
        )

    def loss(self, text: Tensor, audio: Tensor, vision: Tensor, target: Tensor,
             lengths: dict[str, Tensor] | None = None) -> tuple[Tensor, dict[str, float]]:
        """Eq. 15: task loss (MSE or CE) + λ · L_contrast; returns (total, parts for logging)."""
        enc = self.encode(text, audio, vision, lengths)
        score = self.head(self.fuse(enc["h_tilde"], enc["i_tilde"], enc["shared"]))
        task = task_loss(score, target)
        contrast = contrastive_loss(enc["h_hat"], self.config.temperature)
        total = task + self.config.contrast_weight * contrast
        return total, {"loss": total.item(), "task": task.item(), "contrast": contrast.item()}


def contrastive_loss(h_hat: Tensor, temperature: float) -> Tensor:
    """Eq. 12 as InfoNCE over modalities of the same instance (docs/design.md §3.8).

    h_hat (B, M, D). For every ordered pair (m, n), m ≠ n: logits cos(ĥ_m^i, ĥ_n^k)/τ over
    the batch k, target k = i; the mean over pairs.
    """
    z = F.normalize(h_hat, dim=-1)  # (B, M, D)
    n_mod = z.shape[1]
    target = torch.arange(z.shape[0], device=z.device)
    losses = [
        F.cross_entropy(z[:, m] @ z[:, n].T / temperature, target)
        for m in range(n_mod) for n in range(n_mod) if m != n
    ]
    return torch.stack(losses).mean()
