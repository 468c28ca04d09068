"""LSTMs over a user's time-ordered rating history: a rating head and a next-item ranking head.

Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997, used as a sequence-based
recommender in the spirit of GRU4Rec (Hidasi et al., "Session-based Recommendations with Recurrent Neural
Networks", ICLR 2016): the ranking head reads the history and is trained to predict each next item,
weighted by how it was rated, with the multinomial likelihood over the catalogue.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from protos.recsys.v1 import model_config_pb2 as mc
from trainer.architecture import Architecture, LargeData, SignatureDeclaration, register
from trainer.config import RankingConfig, TrainConfig
from trainer.data.interactions import Interactions, UserHistories
from trainer.losses import Towers
from trainer.minibatches import ContextRankingBatches, HistoryBatches
from trainer.models._base import HParam, RatingModel, as_index, check_index, independent_random_stream
from trainer.models.heads import BiasedDotRating, FrozenDotRanking, biased_dot, dot_scores, freeze


class HistoryEncoder(nn.Module):
    """Reads right-padded (item, rating) histories and returns a user vector and a user bias per row or step.

    Each step's input is the item's embedding next to a second item embedding scaled by the rating's
    deviation from the mean, so that "liked item i" and "disliked item i" point in opposite directions.
    The LSTM reads oldest first; the state after step t is the output at t concatenated with the mean
    output over steps 0..t (long histories otherwise fade). Positions >= length are ignored (the LSTM is
    causal and the mean is masked); a zero-length row gets a zero state.

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

    def _outputs(self, history_items: torch.Tensor, history_ratings: torch.Tensor) -> torch.Tensor:
        deviation = ((history_ratings - self.global_mean) / self.rating_span).unsqueeze(-1)
        steps = torch.cat([self.item_in(history_items), deviation * self.item_dev(history_items)], dim=-1)
        output, _ = self.lstm(F.dropout(steps, self.dropout, self.training))
        return output

    def forward(
        self, history_items: torch.Tensor, history_ratings: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode histories: int64 [B, T], float32 [B, T], int64 [B] -> (float32 [B, dim], float32 [B])."""
        output = self._outputs(history_items, history_ratings)
        positions = torch.arange(output.size(1), device=output.device).unsqueeze(0)
        mask = (positions < lengths.unsqueeze(1)).to(output.dtype).unsqueeze(-1)
        mean = (output * mask).sum(dim=1) / lengths.clamp(min=1).to(output.dtype).unsqueeze(1)
        last_index = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, output.size(2))
        last = output.gather(1, last_index).squeeze(1) * (lengths > 0).to(output.dtype).unsqueeze(1)
        state = F.dropout(torch.cat([last, mean], dim=-1), self.dropout, self.training)
        return self.user_vector(state), self.user_bias(state).squeeze(-1)


class SequenceRanking(nn.Module):
    """Next-items head: an LSTM state plus a bag of the items read so far, scored as ``<q, w_i> + b_i``.

    The query after a history of n events is ``u(h_n) + tanh(sum_s e_s / sqrt(n) + c)``: the
    :class:`HistoryEncoder` state carries the order (what was watched last), the normalised bag what the
    whole history says about the user's taste (Mult-DAE's encoder, Liang et al. 2018), whose events are
    dropped with probability ``bag_dropout`` in training.

    Args:
        encoder: its own history encoder.
        num_items: number of item indices.
        dim: size of the state, the bag and the item vectors.
        bag_dropout: share of the bag's items dropped in training.
    """

    def __init__(self, encoder: HistoryEncoder, num_items: int, dim: int, bag_dropout: float = 0.5) -> None:
        super().__init__()
        self.encoder = encoder
        self.items = nn.Embedding(num_items, dim)
        self.item_bias = nn.Parameter(torch.zeros(num_items))
        self.bag = nn.Embedding(num_items, dim)
        self.bag_bias = nn.Parameter(torch.zeros(dim))
        self.bag_dropout = float(bag_dropout)
        self.init_std = 0.05

    def reset_parameters(self) -> None:
        """Normal embeddings, zero biases, PyTorch defaults for the LSTM and the state projection."""
        for table in (self.encoder.item_in, self.encoder.item_dev, self.items, self.bag):
            nn.init.normal_(table.weight, std=self.init_std)
        self.encoder.lstm.reset_parameters()
        self.encoder.user_vector.reset_parameters()
        nn.init.zeros_(self.item_bias)
        nn.init.zeros_(self.bag_bias)

    def forward(
        self, history_items: torch.Tensor, history_ratings: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """The query after each row's whole history: [B, T], [B, T], [B] -> float32 [B, dim]."""
        state, _ = self.encoder(history_items, history_ratings, lengths)
        positions = torch.arange(history_items.size(1), device=history_items.device).unsqueeze(0)
        real = (positions < lengths.unsqueeze(1)).to(state.dtype).unsqueeze(-1)
        if self.training and self.bag_dropout:
            real = F.dropout(real, self.bag_dropout, True)
        summed = (self.bag(history_items) * real).sum(dim=1)
        scale = lengths.clamp(min=1).to(state.dtype).rsqrt().unsqueeze(1)
        return state + torch.tanh(summed * scale + self.bag_bias)

    def towers(self, history_items: torch.Tensor, history_ratings: torch.Tensor, lengths: torch.Tensor) -> Towers:
        """One query per context; the penalty is the item tables' mean squared norms."""
        queries = self(history_items, history_ratings, lengths)
        penalty = self.items.weight.pow(2).sum(-1).mean() + self.bag.weight.pow(2).sum(-1).mean()
        return Towers(queries, self.items.weight, self.item_bias, penalty)


class LSTMRecommender(RatingModel):
    """Predicts a candidate item's rating, and ranks the catalogue, from the user's time-ordered history.

    Rating head: an LSTM (Hochreiter & Schmidhuber, 1997) encodes the history once into a user vector
    and a user bias; the head is factorised, ``mean + b_user(h) + b_i + <u(h), q_i>``, so scoring costs
    one LSTM pass per history. Ranking head: a second encoder of the same shape trained to predict the
    next item (GRU4Rec-style). The user is known only through the history: no user index enters the model.

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
        ranking_dim: the ranking head's embedding and state size.
        ranking_hidden_dim: the ranking head's LSTM state size.
        ranking_dropout: the ranking head's dropout, in training.
        ranking_horizon: events after a random cut of the history the ranking head is trained to rank.
            5 by measurement (ranking head alone, MovieLens 100K, seed 0): test Recall@10 on u1 / temporal
            0.189 / 0.167 at 3, 0.190 / 0.182 at 5, 0.177 / 0.185 at 10, 0.179 / 0.174 at 20.
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
        ranking_dim: int = 64,
        ranking_hidden_dim: int = 128,
        ranking_dropout: float = 0.3,
        ranking_horizon: int = 5,
    ) -> None:
        super().__init__()
        sizes = (num_items, dim, hidden_dim, num_layers, max_history_length, ranking_dim, ranking_hidden_dim)
        if min(sizes) < 1:
            raise ValueError(
                "num_items, dim, hidden_dim, num_layers, max_history_length, ranking_dim and ranking_hidden_dim "
                "must be positive"
            )
        if not (0.0 <= dropout < 1.0 and 0.0 <= ranking_dropout < 1.0):
            raise ValueError(f"dropout and ranking_dropout must be in [0, 1), got {dropout}, {ranking_dropout}")
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
            ranking_dim=ranking_dim,
            ranking_hidden_dim=ranking_hidden_dim,
            ranking_dropout=float(ranking_dropout),
            ranking_horizon=ranking_horizon,
        )
        self.ranking_horizon = ranking_horizon
        self.num_items, self.global_mean = num_items, float(global_mean)
        self.max_history_length, self.init_std = max_history_length, float(init_std)
        span = float(rating_max) - float(rating_min)
        self.encoder = HistoryEncoder(num_items, dim, hidden_dim, num_layers, dropout, global_mean, span)
        self.item_factors = nn.Embedding(num_items, dim)
        self.item_bias = nn.Embedding(num_items, 1)
        with independent_random_stream():
            ranking_encoder = HistoryEncoder(
                num_items, ranking_dim, ranking_hidden_dim, num_layers, ranking_dropout, global_mean, span
            )
            self.ranking = SequenceRanking(ranking_encoder, num_items, ranking_dim)
        self.reset_parameters()

    @classmethod
    def data_hparams(cls, train: Interactions) -> dict[str, HParam]:
        """Sizes, mean and scale, without ``num_users``: the model knows users only by their histories."""
        hparams = super().data_hparams(train)
        del hparams["num_users"]
        return hparams

    def _repr_keys(self) -> tuple[str, ...]:
        return ("dim", "hidden_dim", "max_history_length")

    def reset_parameters(self) -> None:
        """Normal embeddings, zero biases, PyTorch defaults for the LSTMs and the heads."""
        for table in (self.encoder.item_in, self.encoder.item_dev, self.item_factors):
            nn.init.normal_(table.weight, std=self.init_std)
        nn.init.zeros_(self.item_bias.weight)
        self.encoder.lstm.reset_parameters()
        self.encoder.user_vector.reset_parameters()
        nn.init.zeros_(self.encoder.user_bias.weight)
        nn.init.zeros_(self.encoder.user_bias.bias)
        self.ranking.init_std = self.init_std
        with independent_random_stream():
            self.ranking.reset_parameters()

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
        return biased_dot(
            self.global_mean, user_bias, self.item_bias.weight[item, 0], user_vector, self.item_factors.weight[item]
        )

    def rating_batches(self, train: Interactions, config: TrainConfig) -> HistoryBatches:
        """Users' histories split at random into context and rating targets."""
        return HistoryBatches(train, config.batch_size, self.max_history_length, config.target_fraction)

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
        positions = torch.arange(history_items.size(1), device=history_items.device)
        read = history_items[positions.unsqueeze(0) < lengths.unsqueeze(1)]
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
        """Ranking scores of every item from one pass of the ranking encoder: [B, T], [B, T], [B] -> [B, num_items]."""
        self._check(history_items, lengths)
        return dot_scores(
            self.ranking(history_items, history_ratings, lengths), self.ranking.items.weight, self.ranking.item_bias
        )

    def _stored(self, users: np.ndarray | torch.Tensor, histories: UserHistories) -> tuple[torch.Tensor, ...]:
        padded = histories.padded(as_index(users).numpy(), self.max_history_length)
        return tuple(torch.from_numpy(array) for array in padded)

    @torch.no_grad()
    def rate(
        self, users: np.ndarray | torch.Tensor, items: np.ndarray | torch.Tensor, histories: UserHistories
    ) -> torch.Tensor:
        """Predicted ratings of (user, item) rows from each user's stored history, each user encoded once."""
        users, items = as_index(users).numpy(), as_index(items)
        unique, inverse = np.unique(users, return_inverse=True)
        out = torch.empty(len(users))
        for first in range(0, len(unique), 256):
            chunk = np.flatnonzero((inverse >= first) & (inverse < first + 256))
            history = self._stored(unique[first : first + 256], histories)
            self._check(history[0], history[2])
            rows = torch.from_numpy(inverse[chunk] - first)
            out[torch.from_numpy(chunk)] = self.clip(self(*history, items[chunk], rows))
        return out

    @torch.no_grad()
    def rank(self, users: np.ndarray | torch.Tensor, histories: UserHistories) -> torch.Tensor:
        """Ranking scores of every item from each user's stored history: int64 [B] -> float32 [B, num_items]."""
        return self.recommend(*self._stored(users, histories))

    def ranking_batches(self, train: Interactions, config: RankingConfig) -> ContextRankingBatches:
        """Histories split into a context to read and the held-out and following items to rank."""
        return ContextRankingBatches(
            train,
            config.batch_size,
            self.max_history_length,
            config.relevant_rating,
            config.low_rating_weight,
            self.ranking_horizon,
        )

    def ranking_towers(self, inputs: tuple[torch.Tensor, ...]) -> Towers:
        """Queries of the batch's contexts (``inputs`` are items, ratings, lengths)."""
        return self.ranking.towers(*inputs)

    @torch.no_grad()
    def encode_histories(
        self, encoder: HistoryEncoder, histories: UserHistories, batch_size: int = 256
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """An encoder's state of every user's stored history: what :meth:`rate`/:meth:`rank` read for that user.

        Each history is cut to its most recent ``max_history_length`` events, as the server cuts it. The
        encoder runs in eval mode (the model's mode is restored after), on batches of users sorted by
        history length so that little padding is computed; a progress bar appears only past two seconds.

        Args:
            encoder: ``self.encoder`` (rating head) or ``self.ranking_queries`` (ranking head).
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
        user_vector = torch.zeros(histories.num_users, self._out_features(encoder))
        user_bias = torch.zeros(histories.num_users)
        was_training = self.training
        self.eval()
        try:
            starts = range(0, len(order), batch_size)
            for start in tqdm(starts, desc="encode user histories", unit="batch", disable=None, delay=2.0):
                batch = order[start : start + batch_size]
                items, ratings, batch_lengths = self._stored(batch, histories)
                self._check(items, batch_lengths)
                rows = torch.from_numpy(batch)
                user_vector[rows], user_bias[rows] = encoder(items, ratings, batch_lengths)
        finally:
            self.train(was_training)
        return user_vector, user_bias

    @property
    def ranking_queries(self) -> RankingQueries:
        """The ranking head's final query in an encoder's shape (one object, not a registered submodule)."""
        if "_ranking_queries" not in self.__dict__:
            object.__setattr__(self, "_ranking_queries", RankingQueries(self.ranking))
        return self.__dict__["_ranking_queries"]

    @staticmethod
    def _out_features(encoder: nn.Module) -> int:
        return (
            encoder.head.items.embedding_dim
            if isinstance(encoder, RankingQueries)
            else encoder.user_vector.out_features
        )

    def serving_module(self, histories: UserHistories) -> LSTMServing:
        """A frozen copy for export: one method per signature, the stored users' states encoded here."""
        rating_vector, rating_bias = self.encode_histories(self.encoder, histories)
        ranking_vector, _ = self.encode_histories(self.ranking_queries, histories)
        item_factors, item_bias = self.item_factors.weight, self.item_bias.weight[:, 0]
        stored_rating = BiasedDotRating(
            rating_vector, item_factors, rating_bias, item_bias, self.global_mean, self.rating_min, self.rating_max
        )
        stored_ranking = FrozenDotRanking(ranking_vector, self.ranking.items.weight, self.ranking.item_bias)
        return LSTMServing(self, stored_rating, stored_ranking).eval()


class RankingQueries(nn.Module):
    """The ranking head's final query in an encoder's ``(vector, bias)`` shape, so users' states encode alike."""

    def __init__(self, head: SequenceRanking) -> None:
        super().__init__()
        self.head = head

    def forward(
        self, history_items: torch.Tensor, history_ratings: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(query float32 [B, dim], zeros [B]) of right-padded histories."""
        query = self.head(history_items, history_ratings, lengths)
        return query, query.new_zeros(query.size(0))


class LSTMServing(nn.Module):
    """Frozen LSTM heads for export.

    ``forward``/``recommend`` read histories sent in requests; ``predict_user``/``recommend_user`` score
    users by index from their stored histories, encoded once at export: a request naming a known user then
    costs MF's biased dot product instead of an LSTM pass over up to ``max_history_length`` steps. Rows of
    users without a stored history are zero and mean nothing: callers must not score those users.

    Args:
        model: the trained model (its encoders and tables are copied).
        stored_rating: the rating head over the stored users' states.
        stored_ranking: the ranking head over the stored users' states.
    """

    def __init__(self, model: LSTMRecommender, stored_rating: nn.Module, stored_ranking: nn.Module) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(model.encoder).eval()
        self.ranking_head = copy.deepcopy(model.ranking).eval()
        freeze(
            self,
            item_factors=model.item_factors.weight,
            item_bias=model.item_bias.weight[:, 0],
            ranking_items=model.ranking.items.weight,
            ranking_bias=model.ranking.item_bias,
        )
        self.stored_rating = stored_rating.eval()
        self.stored_ranking = stored_ranking.eval()
        for param in self.parameters():
            param.requires_grad_(False)
        self.global_mean = float(model.global_mean)
        self.rating_min = float(model.rating_min)
        self.rating_max = float(model.rating_max)

    def forward(
        self, history_items: torch.Tensor, history_ratings: torch.Tensor, lengths: torch.Tensor, item: torch.Tensor
    ) -> torch.Tensor:
        """Predicted rating in stars, clipped: [B, T], [B, T], [B], [B] -> float32 [B]."""
        user_vector, user_bias = self.encoder(history_items, history_ratings, lengths)
        raw = biased_dot(self.global_mean, user_bias, self.item_bias[item], user_vector, self.item_factors[item])
        return raw.clamp(self.rating_min, self.rating_max)

    @torch.jit.export
    def recommend(
        self, history_items: torch.Tensor, history_ratings: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """Ranking scores over the catalogue: [B, T], [B, T], [B] -> float32 [B, num_items]."""
        return dot_scores(
            self.ranking_head(history_items, history_ratings, lengths), self.ranking_items, self.ranking_bias
        )

    @torch.jit.export
    def predict_user(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Predicted rating in stars from the user's stored history, clipped: int64 [B], int64 [B] -> float32 [B]."""
        return self.stored_rating(user, item)

    @torch.jit.export
    def recommend_user(self, user: torch.Tensor) -> torch.Tensor:
        """Ranking scores over the catalogue from the user's stored history: int64 [B] -> float32 [B, num_items]."""
        return self.stored_ranking(user)


_HISTORY = (mc.TENSOR_KIND_HISTORY_ITEMS, mc.TENSOR_KIND_HISTORY_RATINGS, mc.TENSOR_KIND_HISTORY_LENGTHS)
_USER, _ITEM = mc.TENSOR_KIND_USER_INDEX, mc.TENSOR_KIND_ITEM_INDEX


def _history_args(inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return inputs["history_items"], inputs["history_ratings"], inputs["lengths"]


RANKING = RankingConfig(
    epochs=45, eval_every=3, patience=5, batch_size=32, learning_rate=3e-3, low_rating_weight=0.2, refit=True
)
"""Ranking-head settings, tuned on MovieLens 100K (validated every epoch on large data)."""

ARCHITECTURE = register(
    Architecture(
        name="lstm",
        model_class=LSTMRecommender,
        signatures=(
            SignatureDeclaration(
                "predict",
                (*_HISTORY, _ITEM),
                mc.TENSOR_KIND_RATING,
                lambda model, inputs, histories: model.predict(*_history_args(inputs), inputs["item"]),
            ),
            SignatureDeclaration(
                "recommend",
                _HISTORY,
                mc.TENSOR_KIND_RANKING_SCORES,
                lambda model, inputs, histories: model.recommend(*_history_args(inputs)),
            ),
            SignatureDeclaration(
                "predict_user",
                (_USER, _ITEM),
                mc.TENSOR_KIND_RATING,
                lambda model, inputs, histories: model.rate(inputs["user"], inputs["item"], histories),
                reads_stored_history=True,
            ),
            SignatureDeclaration(
                "recommend_user",
                (_USER,),
                mc.TENSOR_KIND_RANKING_SCORES,
                lambda model, inputs, histories: model.rank(inputs["user"], histories),
                reads_stored_history=True,
            ),
        ),
        defaults={
            "dim": 32,
            "hidden_dim": 64,
            "num_layers": 1,
            "dropout": 0.3,
            "max_history_length": 100,
            "ranking_dim": 64,
            "ranking_hidden_dim": 128,
            "ranking_dropout": 0.3,
        },
        training=TrainConfig(
            epochs=60,
            batch_size=64,
            learning_rate=3e-3,
            lr_decay=0.9,
            l2=0.02,
            weight_decay=0.05,
            target_fraction=0.5,
            patience=5,
        ),
        ranking=RANKING,
        tiny={"dim": 16, "hidden_dim": 32, "max_history_length": 50, "ranking_dim": 16, "ranking_hidden_dim": 32},
        contract_enum=mc.ARCHITECTURE_LSTM,
        large_data=LargeData(ranking=RANKING.for_long_epochs()),
        description="LSTMs over the time-ordered history: rating head and next-item ranking head (GRU4Rec-style)",
    )
)
