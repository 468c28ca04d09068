"""LSTM over a user's time-ordered rating history.

Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997, used as a sequence-based
recommender in the spirit of GRU4Rec (Hidasi et al., "Session-based Recommendations with Recurrent Neural
Networks", ICLR 2016).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from trainer.data.interactions import Histories
from trainer.models._base import RatingModel, check_index
from trainer.models.serving import BiasedDotServing, freeze


class HistoryEncoder(nn.Module):
    """Reads right-padded (item, rating) histories and returns a user vector and a user bias per row.

    Each step's input is the item's embedding next to a second item embedding scaled by the rating's
    deviation from the mean, so that "liked item i" and "disliked item i" point in opposite directions.
    The LSTM reads oldest first; the user state is the output at the last real step concatenated with
    the mean output over the real steps (long histories otherwise fade). Positions >= length are ignored
    (the LSTM is causal and the mean is masked); a zero-length row gets a zero state.

    Args:
        num_items: number of item indices.
        dim: item embedding size and size of the user vector.
        hidden_dim: LSTM state size.
        num_layers: stacked LSTM layers.
        dropout: dropout on the inputs and on the user state, during training.
        global_mean: mean training rating in stars.
        rating_span: rating_max - rating_min, to scale deviations to about [-0.5, 0.5].
    """

    def __init__(
        self,
        num_items: int,
        dim: int,
        hidden_dim: int,
        num_layers: int,
        dropout: float,
        global_mean: float,
        rating_span: float,
    ) -> None:
        super().__init__()
        self.item_in = nn.Embedding(num_items, dim)
        self.item_dev = nn.Embedding(num_items, dim)
        self.lstm = nn.LSTM(2 * dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.user_vector = nn.Linear(2 * hidden_dim, dim)
        self.user_bias = nn.Linear(2 * hidden_dim, 1)
        self.dropout = float(dropout)
        self.global_mean = float(global_mean)
        self.rating_span = float(rating_span)

    def forward(
        self, history_items: torch.Tensor, history_ratings: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode histories: int64 [B, T], float32 [B, T], int64 [B] -> (float32 [B, dim], float32 [B])."""
        deviation = ((history_ratings - self.global_mean) / self.rating_span).unsqueeze(-1)
        steps = torch.cat([self.item_in(history_items), deviation * self.item_dev(history_items)], dim=-1)
        steps = F.dropout(steps, self.dropout, self.training)
        output, _ = self.lstm(steps)
        positions = torch.arange(output.size(1), device=output.device).unsqueeze(0)
        mask = (positions < lengths.unsqueeze(1)).to(output.dtype).unsqueeze(-1)
        mean = (output * mask).sum(dim=1) / lengths.clamp(min=1).to(output.dtype).unsqueeze(1)
        last_index = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, output.size(2))
        last = output.gather(1, last_index).squeeze(1) * (lengths > 0).to(output.dtype).unsqueeze(1)
        state = F.dropout(torch.cat([last, mean], dim=-1), self.dropout, self.training)
        return self.user_vector(state), self.user_bias(state).squeeze(-1)


class LSTMServing(nn.Module):
    """Frozen LSTM scorer for export: ``forward`` equals ``LSTMRecommender.predict``.

    Args:
        encoder: a trained :class:`HistoryEncoder` (copied).
        item_factors: float32 [num_items, dim].
        item_bias: float32 [num_items].
        global_mean: mean training rating in stars.
        rating_min: lowest rating in stars.
        rating_max: highest rating in stars.
    """

    def __init__(
        self,
        encoder: HistoryEncoder,
        item_factors: torch.Tensor,
        item_bias: torch.Tensor,
        global_mean: float,
        rating_min: float,
        rating_max: float,
    ) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(encoder).eval()
        for param in self.encoder.parameters():
            param.requires_grad_(False)
        freeze(self, item_factors=item_factors, item_bias=item_bias)
        self.global_mean = float(global_mean)
        self.rating_min = float(rating_min)
        self.rating_max = float(rating_max)

    def forward(
        self, history_items: torch.Tensor, history_ratings: torch.Tensor, lengths: torch.Tensor, item: torch.Tensor
    ) -> torch.Tensor:
        """Predicted rating in stars, clipped: [B, T], [B, T], [B], [B] -> float32 [B]."""
        user_vector, user_bias = self.encoder(history_items, history_ratings, lengths)
        dot = (user_vector * self.item_factors[item]).sum(dim=-1)
        raw = self.global_mean + user_bias + self.item_bias[item] + dot
        return raw.clamp(self.rating_min, self.rating_max)

    @torch.jit.export
    def recommend(
        self, history_items: torch.Tensor, history_ratings: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """Unclipped scores over the catalogue: [B, T], [B, T], [B] -> float32 [B, num_items]."""
        user_vector, user_bias = self.encoder(history_items, history_ratings, lengths)
        dot = user_vector @ self.item_factors.t()
        return self.global_mean + user_bias.unsqueeze(1) + self.item_bias.unsqueeze(0) + dot


class LSTMUserServing(LSTMServing):
    """:class:`LSTMServing` plus ``predict_user`` and ``recommend_user`` over user states encoded at export.

    A request that names a known user makes the server read that user's stored history, which is fixed
    for an exported version; so is the encoder's output for it. Encoded once at export, scoring that
    user is matrix factorisation's biased dot product (:class:`BiasedDotServing`) instead of an LSTM
    pass over up to ``max_history_length`` steps. ``forward`` and ``recommend`` still read histories,
    for histories sent in requests.

    Args:
        encoder, item_factors, item_bias, global_mean, rating_min, rating_max: as for :class:`LSTMServing`.
        user_vector: float32 [num_users, dim], the encoder's user vector of each stored history.
        user_bias: float32 [num_users], its user bias. Rows of users without a stored history are zero
            and mean nothing: callers must not score those users.
    """

    def __init__(
        self,
        encoder: HistoryEncoder,
        item_factors: torch.Tensor,
        item_bias: torch.Tensor,
        global_mean: float,
        rating_min: float,
        rating_max: float,
        user_vector: torch.Tensor,
        user_bias: torch.Tensor,
    ) -> None:
        super().__init__(encoder, item_factors, item_bias, global_mean, rating_min, rating_max)
        self.users = BiasedDotServing(
            user_vector, item_factors, user_bias, item_bias, global_mean, rating_min, rating_max
        ).eval()

    @torch.jit.export
    def predict_user(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Predicted rating in stars from the user's stored history, clipped: int64 [B], int64 [B] -> float32 [B]."""
        return self.users(user, item)

    @torch.jit.export
    def recommend_user(self, user: torch.Tensor) -> torch.Tensor:
        """Unclipped scores over the catalogue from the user's stored history: int64 [B] -> float32 [B, num_items]."""
        return self.users.recommend(user)


class LSTMRecommender(RatingModel):
    """Predicts a candidate item's rating from the user's time-ordered (item, rating) history.

    An LSTM (Hochreiter & Schmidhuber, 1997) encodes the history once into a user vector and a user
    bias; the head is factorised, ``mean + b_user(h) + b_i + <u(h), q_i>``, so scoring the whole
    catalogue costs one LSTM pass per history and one matrix product, not one pass per item. The user
    is known only through the history: no user index enters the model.

    Args:
        num_items: number of item indices.
        dim: item embedding size.
        hidden_dim: LSTM state size.
        num_layers: stacked LSTM layers.
        dropout: dropout on the step inputs and on the user state, during training.
        max_history_length: longest history read; callers keep the most recent events.
        global_mean: mean training rating in stars.
        rating_min: lowest rating in stars (``predict`` clips to it).
        rating_max: highest rating in stars.
        init_std: standard deviation of the embedding initialisation.
    """

    architecture = "lstm"

    def __init__(
        self,
        num_items: int,
        dim: int = 32,
        hidden_dim: int = 64,
        num_layers: int = 1,
        dropout: float = 0.3,
        max_history_length: int = 100,
        global_mean: float = 3.5,
        rating_min: float = 1.0,
        rating_max: float = 5.0,
        init_std: float = 0.05,
    ) -> None:
        super().__init__()
        if num_items < 1 or dim < 1 or hidden_dim < 1 or num_layers < 1 or max_history_length < 1:
            raise ValueError("num_items, dim, hidden_dim, num_layers and max_history_length must be positive")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self._remember(
            num_items=num_items,
            dim=dim,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            dropout=float(dropout),
            max_history_length=max_history_length,
            global_mean=float(global_mean),
            rating_min=float(rating_min),
            rating_max=float(rating_max),
            init_std=float(init_std),
        )
        self.num_items, self.global_mean = num_items, float(global_mean)
        self.max_history_length, self.init_std = max_history_length, float(init_std)
        self.encoder = HistoryEncoder(
            num_items, dim, hidden_dim, num_layers, dropout, global_mean, float(rating_max) - float(rating_min)
        )
        self.item_factors = nn.Embedding(num_items, dim)
        self.item_bias = nn.Embedding(num_items, 1)
        self.reset_parameters()

    def _repr_keys(self) -> tuple[str, ...]:
        return ("dim", "hidden_dim", "max_history_length")

    def reset_parameters(self) -> None:
        """Normal embeddings, zero item biases, PyTorch defaults for the LSTM and the head."""
        for table in (self.encoder.item_in, self.encoder.item_dev, self.item_factors):
            nn.init.normal_(table.weight, std=self.init_std)
        nn.init.zeros_(self.item_bias.weight)
        self.encoder.lstm.reset_parameters()
        self.encoder.user_vector.reset_parameters()
        nn.init.zeros_(self.encoder.user_bias.weight)
        nn.init.zeros_(self.encoder.user_bias.bias)

    def forward(
        self,
        history_items: torch.Tensor,
        history_ratings: torch.Tensor,
        lengths: torch.Tensor,
        item: torch.Tensor,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Raw predicted rating in stars (unclipped, for training).

        Args:
            history_items: int64 [H, T], right-padded, oldest first.
            history_ratings: float32 [H, T], in stars.
            lengths: int64 [H], real events per row.
            item: int64 [N], candidate items.
            rows: int64 [N], which history each candidate belongs to; ``None`` means row n for item n
                (then N == H). Lets training score many targets from one LSTM pass per history.

        Returns:
            float32 [N].
        """
        user_vector, user_bias = self.encoder(history_items, history_ratings, lengths)
        if rows is not None:
            user_vector, user_bias = user_vector[rows], user_bias[rows]
        dot = (user_vector * self.item_factors.weight[item]).sum(dim=-1)
        return self.global_mean + user_bias + self.item_bias.weight[item, 0] + dot

    def penalty(
        self,
        history_items: torch.Tensor,
        history_ratings: torch.Tensor,
        lengths: torch.Tensor,
        item: torch.Tensor,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean squared norm of the rows a batch touches: target items' factors and biases, read history embeddings.

        The LSTM and head weights are left to AdamW's weight decay.
        """
        del history_ratings, rows
        targets = (self.item_factors.weight[item].pow(2).sum(dim=-1) + self.item_bias.weight[item, 0].pow(2)).mean()
        read = history_items[torch.arange(history_items.size(1)).unsqueeze(0) < lengths.unsqueeze(1)]
        if not read.numel():
            return targets
        inputs = self.encoder.item_in.weight[read].pow(2).sum(-1) + self.encoder.item_dev.weight[read].pow(2).sum(-1)
        return targets + inputs.mean()

    def _check(self, history_items: torch.Tensor, lengths: torch.Tensor) -> None:
        check_index(history_items, self.num_items, "item")
        if history_items.dim() != 2 or lengths.shape != history_items.shape[:1]:
            raise ValueError(
                f"history_items must be [B, T] with lengths [B], got {tuple(history_items.shape)} and "
                f"{tuple(lengths.shape)}"
            )
        if history_items.size(1) > self.max_history_length:
            raise ValueError(
                f"history length T={history_items.size(1)} exceeds max_history_length={self.max_history_length}; "
                "keep the most recent events"
            )

    @torch.no_grad()
    def predict(
        self, history_items: torch.Tensor, history_ratings: torch.Tensor, lengths: torch.Tensor, item: torch.Tensor
    ) -> torch.Tensor:
        """Predicted rating clipped to the rating scale: [B, T], [B, T], [B], [B] -> float32 [B]."""
        self._check(history_items, lengths)
        check_index(item, self.num_items, "item")
        return self.clip(self(history_items, history_ratings, lengths, item))

    @torch.no_grad()
    def recommend(
        self, history_items: torch.Tensor, history_ratings: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """Unclipped scores of every item from one LSTM pass per history: [B, T], [B, T], [B] -> [B, num_items]."""
        self._check(history_items, lengths)
        user_vector, user_bias = self.encoder(history_items, history_ratings, lengths)
        dot = user_vector @ self.item_factors.weight.t()
        return self.global_mean + user_bias.unsqueeze(1) + self.item_bias.weight[:, 0].unsqueeze(0) + dot

    @torch.no_grad()
    def encode_histories(self, histories: Histories, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's state of every user's stored history: what :meth:`predict` reads for that user.

        Each history is cut to its most recent ``max_history_length`` events, as the server cuts it. The
        encoder runs in eval mode (the model's mode is restored after), on batches of users sorted by
        history length so that little padding is computed; 943 MovieLens 100K users take well under a
        second on one CPU core, and a progress bar appears only past two seconds.

        Args:
            histories: every user's training history (the exported side files).
            batch_size: users per encoder pass.

        Returns:
            ``(user_vector float32 [num_users, dim], user_bias float32 [num_users])``; rows of users with
            no stored history are zero.

        Raises:
            ValueError: ``batch_size`` below 1, or a history item outside the catalogue.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        lengths = np.minimum(histories.lengths(), self.max_history_length)
        users = np.flatnonzero(lengths > 0)
        order = users[np.argsort(lengths[users], kind="stable")]
        user_vector = torch.zeros(histories.num_users, self.item_factors.embedding_dim)
        user_bias = torch.zeros(histories.num_users)
        was_training = self.training
        self.eval()
        try:
            starts = range(0, len(order), batch_size)
            for start in tqdm(starts, desc="encode user histories", unit="batch", disable=None, delay=2.0):
                batch = order[start : start + batch_size]
                padded = histories.padded(batch, self.max_history_length)
                items, ratings, batch_lengths = (torch.from_numpy(array) for array in padded)
                self._check(items, batch_lengths)
                rows = torch.from_numpy(batch)
                user_vector[rows], user_bias[rows] = self.encoder(items, ratings, batch_lengths)
        finally:
            self.train(was_training)
        return user_vector, user_bias

    def serving_module(self, histories: Histories | None = None) -> LSTMServing:
        """A frozen copy for export: ``forward`` equals :meth:`predict`, ``recommend`` equals :meth:`recommend`.

        Args:
            histories: every user's stored history; when given, the copy is an :class:`LSTMUserServing`
                whose ``predict_user``/``recommend_user`` score users by index from these histories,
                encoded once here (:meth:`encode_histories`).
        """
        tables = (self.encoder, self.item_factors.weight, self.item_bias.weight[:, 0])
        scale = (self.global_mean, self.rating_min, self.rating_max)
        if histories is None:
            return LSTMServing(*tables, *scale).eval()
        return LSTMUserServing(*tables, *scale, *self.encode_histories(histories)).eval()
