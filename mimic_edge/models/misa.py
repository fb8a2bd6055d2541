"""MISA baseline (Hazarika et al., 2020), faithful to the official declare-lab/MISA
`src/models.py` and `src/utils/functions.py` (docs/design.md §4).

Audio/vision (and GloVe text): two stacked BiLSTMs, hidden = input size, LayerNorm(2h)
between them; the utterance vector is [h1_fwd, h2_fwd, h1_bwd, h2_bwd] (4h), the order the
official `cat(final_h1, final_h2, dim=2).permute(1, 0, 2).view(B, -1)` gives. BERT-feature
text: masked mean of the features. Then Linear→ReLU→LayerNorm(128) per modality, private
(one per modality) and shared encoders (Linear+Sigmoid), reconstruction, a 1-layer
Transformer over the 6 vectors, and Linear(768,384)→Dropout→ReLU→Linear(384,out).
Loss: task + 0.3·Diff + 1.0·CMD(5) + 1.0·Recon.
Left out, as the official forward never uses them: sp_discriminator and, on the BERT path,
the text LayerNorm.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mimic_edge.config import MODALITIES, MisaConfig
from mimic_edge.models.common import bilstm, masked_mean, task_loss


class StackedBiLSTM(nn.Module):
    """Official `extract_features`: BiLSTM → LayerNorm(2h) → BiLSTM; returns the 4h utterance vector."""

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.rnn1 = nn.LSTM(in_dim, hidden, batch_first=True, bidirectional=True)
        self.norm = nn.LayerNorm(2 * hidden)
        self.rnn2 = nn.LSTM(2 * hidden, hidden, batch_first=True, bidirectional=True)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        out1, final1 = bilstm(self.rnn1, x, lengths)  # (B, L, 2h), (B, 2h)
        _, final2 = bilstm(self.rnn2, self.norm(out1), lengths)  # (B, 2h)
        h = self.rnn1.hidden_size
        return torch.cat([final1[:, :h], final2[:, :h], final1[:, h:], final2[:, h:]], dim=-1)  # (B, 4h)


def _project(in_dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.LayerNorm(hidden))


class MISA(nn.Module):
    # FLOP breakdown (mimic_edge.bench.flops): submodules per group; "fusion" is everything else
    FLOP_GROUPS = {"encoders": ("utterance", "project"), "head": ("fusion",)}

    def __init__(self, config: MisaConfig):
        super().__init__()
        self.config = config
        hid = config.hidden_size
        self.utterance = nn.ModuleDict()
        utt_dims = {}
        for m in MODALITIES:
            if m == "text" and config.bert_text:
                utt_dims[m] = config.text_dim  # masked mean of the BERT features
                continue
            lstm_hidden = config.text_lstm_hidden if m == "text" else config.dims[m]
            self.utterance[m] = StackedBiLSTM(config.dims[m], lstm_hidden)
            utt_dims[m] = 4 * lstm_hidden
        self.project = nn.ModuleDict({m: _project(utt_dims[m], hid) for m in MODALITIES})
        self.private = nn.ModuleDict({m: nn.Sequential(nn.Linear(hid, hid), nn.Sigmoid()) for m in MODALITIES})
        self.shared = nn.Sequential(nn.Linear(hid, hid), nn.Sigmoid())
        self.recon = nn.ModuleDict({m: nn.Linear(hid, hid) for m in MODALITIES})
        layer = nn.TransformerEncoderLayer(hid, config.n_heads, config.ff_dim, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.fusion = nn.Sequential(
            nn.Linear(6 * hid, 3 * hid), nn.Dropout(config.dropout), nn.ReLU(), nn.Linear(3 * hid, config.out_dim)
        )

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, text: Tensor, audio: Tensor, vision: Tensor, lengths: dict[str, Tensor] | None = None) -> Tensor:
        reps = self.encode(text, audio, vision, lengths)
        return self.fuse(reps["private"], reps["shared"])  # (B, out)

    def encode(self, text: Tensor, audio: Tensor, vision: Tensor,
               lengths: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Utterance vectors projected to 128 (orig), and their private and shared encodings."""
        inputs = {"text": text, "audio": audio, "vision": vision}
        lengths = lengths or {}
        orig = {}
        for m in MODALITIES:
            if m in self.utterance:
                utt = self.utterance[m](inputs[m], lengths.get(m))  # (B, 4h)
            else:
                utt = masked_mean(inputs[m], lengths.get(m))  # (B, 768), official BERT path
            orig[m] = self.project[m](utt)  # (B, 128)
        return {
            "orig": torch.stack([orig[m] for m in MODALITIES], dim=1),  # (B, 3, 128) in MODALITIES order
            "private": torch.stack([self.private[m](orig[m]) for m in MODALITIES], dim=1),
            "shared": torch.stack([self.shared(orig[m]) for m in MODALITIES], dim=1),
        }

    def fuse(self, private: Tensor, shared: Tensor) -> Tensor:
        """Official order: private t, v, a, then shared t, v, a → Transformer → MLP."""
        order = [MODALITIES.index(m) for m in ("text", "vision", "audio")]
        seq = torch.cat([private[:, order], shared[:, order]], dim=1)  # (B, 6, 128)
        return self.fusion(self.transformer(seq).flatten(1))  # (B, 768) → (B, out)

    def representations(self, text: Tensor, audio: Tensor, vision: Tensor,
                        lengths: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """encode()'s vectors, the reconstructions (for the Recon loss) and the score."""
        reps = self.encode(text, audio, vision, lengths)
        recon = torch.stack([self.recon[m](reps["private"][:, k] + reps["shared"][:, k])
                             for k, m in enumerate(MODALITIES)], dim=1)  # (B, 3, 128)
        return {**reps, "recon": recon, "score": self.fuse(reps["private"], reps["shared"])}

    def loss(self, text: Tensor, audio: Tensor, vision: Tensor, target: Tensor,
             lengths: dict[str, Tensor] | None = None) -> tuple[Tensor, dict[str, float]]:
        cfg = self.config
        reps = self.representations(text, audio, vision, lengths)
        task = task_loss(reps["score"], target)
        diff = diff_loss_total(reps["private"], reps["shared"])
        sim = cmd_loss_total(reps["shared"], cfg.cmd_moments)
        recon = recon_loss(reps)
        total = task + cfg.diff_weight * diff + cfg.sim_weight * sim + cfg.recon_weight * recon
        parts = {"loss": total, "task": task, "diff": diff, "cmd": sim, "recon": recon}
        return total, {k: v.item() for k, v in parts.items()}


def diff_loss(x1: Tensor, x2: Tensor) -> Tensor:
    """Official DiffLoss: squared Frobenius norm of the correlation of centred, L2-normalised rows."""
    x1 = x1 - x1.mean(dim=0, keepdim=True)
    x2 = x2 - x2.mean(dim=0, keepdim=True)
    x1 = x1 / (x1.norm(dim=1, keepdim=True).detach() + 1e-6)
    x2 = x2 / (x2.norm(dim=1, keepdim=True).detach() + 1e-6)
    return (x1.T @ x2).pow(2).mean()


def diff_loss_total(private: Tensor, shared: Tensor) -> Tensor:
    """Official get_diff_loss: private⊥shared per modality, and private⊥private pairwise."""
    t, a, v = (0, 1, 2)  # MODALITIES order
    return (diff_loss(private[:, t], shared[:, t]) + diff_loss(private[:, v], shared[:, v])
            + diff_loss(private[:, a], shared[:, a]) + diff_loss(private[:, a], private[:, t])
            + diff_loss(private[:, a], private[:, v]) + diff_loss(private[:, t], private[:, v]))


def cmd(x1: Tensor, x2: Tensor, n_moments: int) -> Tensor:
    """Official CMD: ‖mean diff‖ + Σ_k ‖k-th central moment diff‖, k = 2..n."""
    m1, m2 = x1.mean(dim=0), x2.mean(dim=0)
    c1, c2 = x1 - m1, x2 - m2
    total = (m1 - m2).pow(2).sum().sqrt()
    for k in range(2, n_moments + 1):
        total = total + (c1.pow(k).mean(dim=0) - c2.pow(k).mean(dim=0)).pow(2).sum().sqrt()
    return total


def cmd_loss_total(shared: Tensor, n_moments: int) -> Tensor:
    """Official get_cmd_loss: mean CMD over the three pairs of shared vectors."""
    t, a, v = (0, 1, 2)
    return (cmd(shared[:, t], shared[:, v], n_moments) + cmd(shared[:, t], shared[:, a], n_moments)
            + cmd(shared[:, a], shared[:, v], n_moments)) / 3


def recon_loss(reps: dict[str, Tensor]) -> Tensor:
    """Official get_recon_loss: mean over modalities of MSE(recon_m, orig_m)."""
    return ((reps["recon"] - reps["orig"]) ** 2).mean(dim=(0, 2)).mean()
