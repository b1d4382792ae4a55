"""SB3 policies whose hidden layers come from the normalization factory.

Use them like any SB3 policy; the norm is a policy keyword::

    from stable_baselines3 import PPO
    from wnbench.rl.policies import NormActorCriticPolicy, NormCallback
    model = PPO(NormActorCriticPolicy, "CartPole-v1", policy_kwargs=dict(norm="weight_ddi"))
    model.learn(50_000, callback=NormCallback())   # runs WN data-dependent init on real observations

Policy keywords shared by every class here:

* ``norm``: a norm name (``"weight"``, ``"batch"``...), a mapping ``{"name": "weight", "ddi": True}``, or a
  :class:`~wnbench.norms.Norm`. Default ``"none"`` (``"batch_renorm"`` for CrossQ, as sb3-contrib ships it).
* ``norm_actor`` / ``norm_critic`` (default both ``True``): which networks get the norm. Only hidden layers
  are normalized; output layers (action means, log-stds, values, Q-values) stay plain ``nn.Linear``.
  DQN's Q-network counts as a critic. A features extractor that takes a ``norm`` keyword (e.g.
  :class:`MinAtarCNN`) receives the policy's norm when a network it feeds is normalized (either switch;
  the critic switch for DQN), unless given its own.
* ``bn_mode``: how batch-statistics layers (BatchNorm, batch renorm, the mean-only BN of WN+BN) are run; also
  an option of those norms (``{"name": "batch", "bn_mode": "running"}``, label ``batch[bn_mode=running]``), so
  a suite can make it an arm of its own.

How batch statistics meet SB3 (why ``bn_mode`` exists)
------------------------------------------------------
SB3 puts the policy in eval mode while it collects experience and in train mode inside ``train()``:

* **rollouts/evaluation** use the *running* averages (eval mode) — the only sensible choice when the batch
  is one observation (``n_envs=1``: BatchNorm1d refuses a batch of 1 in train mode, and with several envs
  an action would depend on what the *other* envs happen to see);
* **updates** normalize with the *minibatch* statistics and move the running averages.

So with BN the network that acted is not the network that is trained. In PPO the "old" log-probabilities
come from the running-stat network and the new ones from the batch-stat network: the importance ratio is
not 1 even before the first gradient step — exactly the noise the WN paper blames BN for. In SAC/TD3/DQN
the online critic (train mode, statistics of ``(s, a)``) is matched against a target critic in eval mode
whose copied running statistics describe a different distribution, ``(s', a')``.

Target networks and norm state: sb3 copies the parameters (polyak) and the buffers named ``running_*``
(hard copy, at each target update). :class:`NormCallback` widens that copy to *all* state a norm keeps
outside its parameters (:func:`wnbench.norms.norm_state_buffers`: batch renorm's ``ra_*``, mean-only BN's
running mean, spectral norm's power-iteration vectors ``_u``/``_v``) -- one mechanism for SAC, TD3 (actor and
critic targets) and DQN; hard copies (``load_state_dict``) carry them anyway. Spectral norm's
parametrization also iterates in eval mode when its weight changed (``wnbench/norms/spectral.py``), so a
target, always in eval mode, divides its own polyak-averaged weights by their own largest singular value.
CrossQ (sb3-contrib) is the careful design: no target network, and one *joint* forward of
``cat[(s, a), (s', π(s'))]`` in train mode so both halves are normalized with the same statistics; the
actor picks ``π(s')`` in eval mode and is updated in train mode. :class:`NormCrossQPolicy` keeps that
training loop and lets any norm take batch renorm's place; its default is sb3-contrib's own layout
(batch renorm with ``placement="pre"``: on the input and before every layer, the output layer included).

``bn_mode`` options (no effect on norms without batch statistics):

* ``"sb3"`` (default): the stock behaviour above — what a user of SB3 gets when inserting BN.
* ``"running"``: batch-statistics layers *always* normalize with running statistics (also during updates,
  so acting and learning use the same function and PPO's first ratio is exactly 1). The running statistics
  are refreshed once per rollout by :class:`NormCallback` with a no-grad train-mode pass over fresh data
  (the rollout buffer, or one replay batch for off-policy). On-policy, the refreshed statistics are installed
  when the *next* rollout starts, so the update on a rollout uses the statistics that collected it (measured:
  installing them at once left PPO's first ratio 2e-4 to 7e-4 off 1). BN then acts as a slowly adapting, data-driven
  affine input scaling without minibatch noise — the control that separates "BN's noise" from "BN's
  normalization".
* A ``"train"`` mode (rollouts with batch statistics) is deliberately not offered: for ``n_envs=1`` it is
  undefined and otherwise it makes each action depend on the other environments' states.

WN data-dependent init (``make_norm("weight", ddi=True)``) needs data: :class:`NormCallback` (or
:func:`initialize_policy` directly) runs one short random rollout at the start of training and initializes
every network (targets are then copied from their online networks). RecurrentPPO's networks get that rollout
as sequences, hidden state carried and reset at episode starts, as in training: the WN-LSTMs' input-to-hidden
terms are standardized first (their recurrent weights keep the standard init: the paper gives DDI for
networks without recursion), then the heads on the LSTM outputs. (Initializing the heads on one-step
zero-state LSTM outputs, as before 2026-12-03, measured g of 117-1023 in the first head layer on
CartPoleNoVel, against about 4 now.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from sb3_contrib.common.torch_layers import BatchRenorm
from sb3_contrib.crossq.policies import Actor as CrossQActor
from sb3_contrib.crossq.policies import CrossQCritic, CrossQPolicy
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy, ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from stable_baselines3.sac.policies import Actor as SACActor
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import Actor as TD3Actor
from stable_baselines3.td3.policies import TD3Policy
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _WeightNorm

from wnbench.norms import MeanOnlyBatchNorm, Norm, SequenceBatchNorm, make_norm, norm_state_buffers
from wnbench.norms.weightnorm import WeightNormMixin, initialize_lstm, lstm_ddi_scale

__all__ = [
    "BN_MODES",
    "NormSpec",
    "resolve_norm",
    "batch_stat_modules",
    "NormMlpExtractor",
    "NormActorCriticPolicy",
    "NormRecurrentActorCriticPolicy",
    "NormDQNPolicy",
    "NormSACPolicy",
    "NormTD3Policy",
    "NormCrossQPolicy",
    "MinAtarCNN",
    "NormCallback",
    "initialize_policy",
    "refresh_batch_stats",
    "policy_class_for",
]

BN_MODES = ("sb3", "running")
NormSpec = str | Mapping[str, Any] | Norm
#: Layers whose output depends on the batch in train mode and that keep running statistics.
BATCH_STAT_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    BatchRenorm,
    MeanOnlyBatchNorm,
    SequenceBatchNorm,
)


def resolve_norm(spec: NormSpec | None) -> Norm:
    """A :class:`Norm` from a name, a mapping ``{"name": ..., **options}`` or a Norm (None -> ``"none"``)."""
    if spec is None:
        return make_norm("none")
    if isinstance(spec, Norm):
        return spec
    if isinstance(spec, Mapping):
        options = dict(spec)
        name = options.pop("name", None) or options.pop("kind", None)
        if name is None:
            raise ValueError(f"norm mapping needs a 'name' key, got {dict(spec)!r}")
        return make_norm(name, **options)
    return make_norm(str(spec))


def batch_stat_modules(module: nn.Module) -> list[nn.Module]:
    """The batch-statistics layers (BN, batch renorm, mean-only BN) inside ``module``."""
    return [m for m in module.modules() if isinstance(m, BATCH_STAT_TYPES)]


def _orthogonal_init(module: nn.Module, gain: float = 1.0) -> None:
    """SB3's orthogonal init (PPO/A2C), extended to factory layers.

    Plain and spectral-normalized layers get an orthogonal weight (the spectral parametrization's
    original); WN layers without DDI get an orthogonal ``v`` and ``g = ||v||`` (so they start as the
    plain layer would); WN layers with DDI keep the paper's small random ``v`` (DDI sets ``g``, ``b``).
    """
    if isinstance(module, WeightNormMixin):
        if not module.ddi:
            with th.no_grad():
                nn.init.orthogonal_(module.v, gain=gain)
                module.g.copy_(module._v_norm(module.v))
                if module.bias is not None:
                    module.bias.zero_()
    elif isinstance(module, nn.Linear | nn.Conv2d):
        with th.no_grad():
            if parametrize.is_parametrized(module, "weight"):
                original = module.parametrizations.weight.original
                nn.init.orthogonal_(original, gain=gain)
                for p in module.parametrizations.weight:  # refit spectral norm's u/v to the new weight
                    if hasattr(p, "_power_method") and original.ndim > 1:
                        p._power_method(p._reshape_weight_to_matrix(original), 15)
            else:
                nn.init.orthogonal_(module.weight, gain=gain)
            if module.bias is not None:
                module.bias.zero_()


class _NormPolicyMixin:
    """Holds the norm settings and applies ``bn_mode`` on every ``set_training_mode`` call."""

    default_norm: ClassVar[NormSpec] = "none"

    def _setup_norm(
        self, norm: NormSpec | None, norm_actor: bool, norm_critic: bool, bn_mode: str | None
    ) -> None:
        self.norm = resolve_norm(self.default_norm if norm is None else norm)
        # bn_mode may come with the norm ({name: batch, bn_mode: running}: its own arm) or as a policy keyword.
        from_norm = self.norm.options().get("bn_mode", "sb3")
        if bn_mode is not None and from_norm != "sb3" and bn_mode != from_norm:
            raise ValueError(f"bn_mode={bn_mode!r} contradicts the norm's own bn_mode={from_norm!r}")
        bn_mode = bn_mode if bn_mode is not None else from_norm
        if bn_mode not in BN_MODES:
            raise ValueError(f"bn_mode must be one of {', '.join(BN_MODES)}; got {bn_mode!r}")
        self.norm_actor, self.norm_critic, self.bn_mode = bool(norm_actor), bool(norm_critic), bn_mode
        plain = make_norm("none")
        self.actor_norm = self.norm if self.norm_actor else plain
        self.critic_norm = self.norm if self.norm_critic else plain

    def _take_norm_kwargs(self, kwargs: dict[str, Any]) -> None:
        """Pop the norm keywords from SB3's policy kwargs and hand the norm to a norm-taking extractor."""
        self._setup_norm(*_norm_kwargs(kwargs))
        fe_class = kwargs.get("features_extractor_class")
        if fe_class is not None:
            kwargs["features_extractor_kwargs"] = self._norm_features_kwargs(
                fe_class, kwargs.get("features_extractor_kwargs")
            )

    def _norm_features_kwargs(
        self, features_extractor_class: type, kwargs: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """Give the policy's norm to extractors that take one (unless the caller chose)."""
        if getattr(features_extractor_class, "accepts_norm", False):
            kwargs = dict(kwargs or {})
            if "norm" not in kwargs:
                kwargs["norm"] = self.norm if self._extractor_normalized() else "none"
        return kwargs

    def _extractor_normalized(self) -> bool:
        """Whether the features extractor gets the norm: when a network it feeds is normalized."""
        return self.norm_actor or self.norm_critic

    def _norm_constructor_parameters(self) -> dict[str, Any]:
        return dict(
            norm=self.norm, norm_actor=self.norm_actor, norm_critic=self.norm_critic, bn_mode=self.bn_mode
        )

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)  # type: ignore[misc]
        if self.bn_mode == "running":
            for module in batch_stat_modules(self):  # type: ignore[arg-type]
                module.train(False)


def _norm_kwargs(kwargs: dict[str, Any]) -> tuple[Any, bool, bool, str | None]:
    return (
        kwargs.pop("norm", None),
        kwargs.pop("norm_actor", True),
        kwargs.pop("norm_critic", True),
        kwargs.pop("bn_mode", None),
    )


# -- on-policy ---------------------------------------------------------------------------------------
class NormMlpExtractor(nn.Module):
    """SB3's ``MlpExtractor`` (same attributes and forward methods) with factory-built hidden layers."""

    def __init__(
        self,
        feature_dim: int,
        net_arch: list[int] | dict[str, list[int]],
        activation_fn: type[nn.Module],
        actor_norm: Norm,
        critic_norm: Norm,
    ) -> None:
        super().__init__()
        if isinstance(net_arch, dict):
            pi_dims, vf_dims = list(net_arch.get("pi", [])), list(net_arch.get("vf", []))
        else:
            pi_dims = vf_dims = list(net_arch)
        self.policy_net = actor_norm.mlp(feature_dim, pi_dims, activation=activation_fn)
        self.value_net = critic_norm.mlp(feature_dim, vf_dims, activation=activation_fn)
        self.latent_dim_pi = pi_dims[-1] if pi_dims else feature_dim
        self.latent_dim_vf = vf_dims[-1] if vf_dims else feature_dim

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        return self.policy_net(features)

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        return self.value_net(features)


class NormActorCriticPolicy(_NormPolicyMixin, ActorCriticPolicy):
    """PPO/A2C actor-critic MLP policy with factory-built hidden layers (see module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._take_norm_kwargs(kwargs)
        super().__init__(*args, **kwargs)

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = NormMlpExtractor(
            self.features_dim, self.net_arch, self.activation_fn, self.actor_norm, self.critic_norm
        ).to(self.device)

    init_weights = staticmethod(_orthogonal_init)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), **self._norm_constructor_parameters()}


class NormRecurrentActorCriticPolicy(_NormPolicyMixin, RecurrentActorCriticPolicy):
    """sb3-contrib RecurrentPPO policy: the norm goes into the LSTMs (``norm.wrap_lstm``) and the MLP heads.

    ``batch`` becomes recurrent BN (Cooijmans et al. 2017: BN on the input-to-hidden and hidden-to-hidden
    terms and on the cell). Its statistics are shared over time steps here (``t_max = 1``): sb3-contrib
    feeds the LSTM one step per call in rollouts and in every minibatch that holds an episode start, so
    no call knows which step of an episode it is; one set of statistics keeps rollouts and updates
    consistent. Kinds without a recurrent form (batch renorm, mean-only BN, group) raise
    :class:`~wnbench.norms.NormError`. A shared LSTM is normalized when either switch is on.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Callable,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self._setup_norm(*_norm_kwargs(kwargs))
        if self.norm_actor or self.norm_critic:
            self.norm.wrap_lstm(nn.LSTM(1, 1))  # raises NormError with the norm's own explanation
        fe_class = kwargs.get("features_extractor_class")
        if fe_class is not None:
            kwargs["features_extractor_kwargs"] = self._norm_features_kwargs(
                fe_class, kwargs.get("features_extractor_kwargs")
            )
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)
        actor_lstm_norm = (
            self.norm if (self.norm_actor or (self.shared_lstm and self.norm_critic)) else self.actor_norm
        )
        self.lstm_actor = actor_lstm_norm.wrap_lstm(self.lstm_actor)
        if self.lstm_critic is not None:
            self.lstm_critic = self.critic_norm.wrap_lstm(self.lstm_critic)
        for module in self.modules():
            if isinstance(module, SequenceBatchNorm):
                module.share_over_time()
        # The LSTMs' parameters changed: rebuild the optimizer exactly as the parent does.
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    @staticmethod
    def _process_sequence(
        features: th.Tensor,
        lstm_states: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor,
        lstm: nn.Module,
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        """sb3-contrib's sequence pass, with a WN-LSTM's weights formed once per call instead of once per step.

        torch's weight-norm parametrization recomputes ``g * v / ||v||`` at every access, and sb3-contrib calls
        the LSTM once per time step whenever a sequence holds an episode start (every update on PendulumNoVel).
        ``parametrize.cached()`` reuses one computation for the call: the same weights, so the same outputs
        (measured: a 256-unit WN-LSTM, 128 steps x 8 sequences, forward + backward, 1.6-2.8x faster; a whole
        RecurrentPPO PendulumNoVel run of 8,192 steps, 1.77x and 1.90x, the same final return). Only
        pure weight-norm LSTMs are cached: spectral norm's power iteration runs on each access and stays so.
        """
        if _weight_norm_only(lstm):
            with parametrize.cached():
                return RecurrentActorCriticPolicy._process_sequence(
                    features, lstm_states, episode_starts, lstm
                )
        return RecurrentActorCriticPolicy._process_sequence(features, lstm_states, episode_starts, lstm)

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = NormMlpExtractor(
            self.lstm_output_dim, self.net_arch, self.activation_fn, self.actor_norm, self.critic_norm
        ).to(self.device)

    init_weights = staticmethod(_orthogonal_init)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), **self._norm_constructor_parameters()}


def _weight_norm_only(module: nn.Module) -> bool:
    """Whether ``module`` is parametrized and every parametrization on it is torch's weight norm."""
    if not parametrize.is_parametrized(module):
        return False
    return all(isinstance(p, _WeightNorm) for plist in module.parametrizations.values() for p in plist)


# -- DQN ---------------------------------------------------------------------------------------------
class NormDQNPolicy(_NormPolicyMixin, DQNPolicy):
    """DQN policy: the Q-network (and its target) built by the factory; ``norm_critic`` switches it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._take_norm_kwargs(kwargs)
        super().__init__(*args, **kwargs)

    def _extractor_normalized(self) -> bool:
        return self.norm_critic

    def make_q_net(self) -> QNetwork:
        q_net = super().make_q_net()
        q_net.q_net = self.critic_norm.mlp(
            q_net.features_dim, q_net.net_arch, int(self.action_space.n), activation=q_net.activation_fn
        ).to(self.device)
        return q_net

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), **self._norm_constructor_parameters()}


# -- SAC / TD3 ---------------------------------------------------------------------------------------
def _replace_q_networks(
    critic: ContinuousCritic,
    norm: Norm,
    net_arch: list[int],
    activation_fn: type[nn.Module],
    device: th.device,
) -> None:
    """Rebuild each Q-network of ``critic`` (``(features, action) -> Q``) with ``norm`` in its hidden layers."""
    in_dim = critic.features_extractor.features_dim + get_action_dim(critic.action_space)
    for idx in range(critic.n_critics):
        q_net = norm.mlp(in_dim, net_arch, 1, activation=activation_fn).to(device)
        setattr(critic, f"qf{idx}", q_net)
        critic.q_networks[idx] = q_net


class _ContinuousCriticMixin:
    def _critic_with_norm(self, critic: ContinuousCritic) -> ContinuousCritic:
        _replace_q_networks(
            critic,
            self.critic_norm,
            self.critic_kwargs["net_arch"],
            self.critic_kwargs["activation_fn"],
            self.device,
        )  # type: ignore[attr-defined]
        return critic


class NormSACPolicy(_NormPolicyMixin, _ContinuousCriticMixin, SACPolicy):
    """SAC policy: actor trunk and both critics (and the target critics) built by the factory."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._take_norm_kwargs(kwargs)
        super().__init__(*args, **kwargs)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> SACActor:
        actor = super().make_actor(features_extractor)
        actor.latent_pi = self.actor_norm.mlp(
            actor.features_dim, actor.net_arch, activation=actor.activation_fn
        ).to(self.device)
        return actor

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        return self._critic_with_norm(super().make_critic(features_extractor))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), **self._norm_constructor_parameters()}


class NormTD3Policy(_NormPolicyMixin, _ContinuousCriticMixin, TD3Policy):
    """TD3 policy: deterministic actor and both critics (and their targets) built by the factory."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._take_norm_kwargs(kwargs)
        super().__init__(*args, **kwargs)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> TD3Actor:
        actor = super().make_actor(features_extractor)
        action_dim = get_action_dim(self.action_space)
        net = self.actor_norm.mlp(
            actor.features_dim, actor.net_arch, action_dim, activation=actor.activation_fn
        )
        actor.mu = nn.Sequential(*net, nn.Tanh()).to(self.device)
        return actor

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        return self._critic_with_norm(super().make_critic(features_extractor))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), **self._norm_constructor_parameters()}


# -- CrossQ ------------------------------------------------------------------------------------------
def _set_batch_stat_training(module: nn.Module, mode: bool, bn_mode: str) -> None:
    for m in batch_stat_modules(module):
        m.train(mode and bn_mode != "running")


class _NormCrossQActor(CrossQActor):
    """CrossQ's actor; its BN switch drives every batch-statistics layer, not only BatchRenorm1d."""

    bn_mode = "sb3"

    def set_bn_training_mode(self, mode: bool) -> None:
        _set_batch_stat_training(self, mode, self.bn_mode)


class _NormCrossQCritic(CrossQCritic):
    bn_mode = "sb3"

    def set_bn_training_mode(self, mode: bool) -> None:
        _set_batch_stat_training(self, mode, self.bn_mode)


class NormCrossQPolicy(_NormPolicyMixin, CrossQPolicy):
    """sb3-contrib CrossQ with its BatchRenorm replaced by any norm (default: batch renorm as shipped).

    CrossQ's training loop is kept: no target network, a joint train-mode critic forward of
    ``(s, a)`` and ``(s', π(s'))``, the actor in eval mode for ``π(s')``. The default norm is sb3-contrib's
    own network, module for module: ``{"name": "batch_renorm", "placement": "pre"}`` puts BatchRenorm on
    the input and before every linear layer, the output layer included. CrossQ + WN (Palenicek et al.
    2025) is ``{"name": "weight+batch_renorm", "placement": "pre"}``. A ``post`` norm follows each hidden
    layer instead (``Linear -> norm -> activation``), inputs and outputs plain.
    """

    default_norm = {"name": "batch_renorm", "placement": "pre"}  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._setup_norm(*_norm_kwargs(kwargs))
        for stock_option in ("batch_norm", "batch_norm_momentum", "batch_norm_eps", "renorm_warmup_steps"):
            if stock_option in kwargs:
                raise ValueError(f"NormCrossQPolicy: set the norm with norm=..., not {stock_option}=...")
        kwargs["batch_norm"] = False
        fe_class = kwargs.get("features_extractor_class")
        if fe_class is not None:
            kwargs["features_extractor_kwargs"] = self._norm_features_kwargs(
                fe_class, kwargs.get("features_extractor_kwargs")
            )
        super().__init__(*args, **kwargs)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> CrossQActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        actor = _NormCrossQActor(**actor_kwargs)
        actor.bn_mode = self.bn_mode
        actor.latent_pi = self.actor_norm.mlp(
            actor.features_dim, actor.net_arch, activation=actor.activation_fn
        )
        return actor.to(self.device)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> CrossQCritic:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        critic = _NormCrossQCritic(**critic_kwargs)
        critic.bn_mode = self.bn_mode
        _replace_q_networks(
            critic, self.critic_norm, critic_kwargs["net_arch"], critic_kwargs["activation_fn"], self.device
        )
        return critic.to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for stock_option in ("batch_norm", "batch_norm_momentum", "batch_norm_eps", "renorm_warmup_steps"):
            data.pop(stock_option, None)
        return {**data, **self._norm_constructor_parameters()}


# -- MinAtar CNN -------------------------------------------------------------------------------------
class MinAtarCNN(BaseFeaturesExtractor):
    """The MinAtar network's trunk (Young & Tian 2019): one 3x3 conv with 16 channels, then a dense layer.

    Takes channels-last ``(10, 10, C)`` grids as MinAtar's gymnasium envs emit them (boolean; SB3 casts to
    float), builds both layers with the given norm.
    """

    accepts_norm: ClassVar[bool] = True

    def __init__(
        self,
        observation_space: spaces.Box,
        features_dim: int = 128,
        norm: NormSpec = "none",
        conv_channels: int = 16,
    ) -> None:
        super().__init__(observation_space, features_dim)
        height, width, channels = observation_space.shape
        norm = resolve_norm(norm)
        self.cnn = nn.Sequential(norm.conv2d(channels, conv_channels, 3, 1), nn.ReLU(), nn.Flatten())
        self.linear = nn.Sequential(
            norm.linear(conv_channels * (height - 2) * (width - 2), features_dim), nn.ReLU()
        )

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(self.cnn(observations.float().permute(0, 3, 1, 2)))


# -- data-dependent init and batch-statistics upkeep -------------------------------------------------
def _forward_everything(
    policy: BasePolicy,
    obs: th.Tensor,
    actions: th.Tensor,
    episode_starts: th.Tensor | None = None,
    lstm_states: Any = None,
) -> None:
    """One pass through every online network of ``policy`` (actions already in the policy's scale).

    Recurrent policies: ``obs``/``actions`` hold ``N`` sequences of ``T`` steps in step order (row
    ``t * N + n``), ``episode_starts`` is ``(T, N)`` (None: one-step sequences from a zero state), and
    ``lstm_states`` the sequences' first hidden states (sb3-contrib ``RNNStates``; None: zeros).
    """
    if isinstance(policy, RecurrentActorCriticPolicy):
        if episode_starts is None:
            episode_starts = th.ones((1, obs.shape[0]), device=obs.device)
        steps, n_seq = episode_starts.shape
        # sb3-contrib's _process_sequence wants the rows sequence by sequence (row n * T + t).
        obs = obs.reshape(steps, n_seq, *obs.shape[1:]).transpose(0, 1).reshape(obs.shape)
        actions = actions.reshape(steps, n_seq, *actions.shape[1:]).transpose(0, 1).reshape(actions.shape)
        starts = episode_starts.transpose(0, 1).reshape(-1).float()
        if lstm_states is None:
            zeros = th.zeros(
                (policy.lstm_actor.num_layers, n_seq, policy.lstm_actor.hidden_size), device=obs.device
            )
            lstm_states = RNNStates((zeros, zeros), (zeros, zeros))
        policy.evaluate_actions(obs, actions, lstm_states, starts)
    elif isinstance(policy, ActorCriticPolicy):
        policy.evaluate_actions(obs, actions)
    elif isinstance(policy, DQNPolicy):
        policy.q_net(obs)
    else:  # SAC, TD3, CrossQ
        policy.actor(obs)
        policy.critic(obs, actions)


def _initialize_lstms(policy: RecurrentActorCriticPolicy, obs: th.Tensor, episode_starts: th.Tensor) -> int:
    """DDI of the policy's WN-DDI LSTMs (input-to-hidden terms) on the rollout's feature sequences."""
    lstms = [policy.lstm_actor] + ([policy.lstm_critic] if policy.lstm_critic is not None else [])
    if not any(lstm_ddi_scale(lstm) is not None for lstm in lstms):
        return 0
    steps, n_seq = episode_starts.shape
    features = policy.extract_features(obs)  # disarms DDI layers of a features extractor on the way
    pi_features, vf_features = features if isinstance(features, tuple) else (features, features)

    def sequences(f: th.Tensor) -> th.Tensor:
        return f.reshape(steps, n_seq, -1)

    done = initialize_lstm(policy.lstm_actor, sequences(pi_features), episode_starts)
    if policy.lstm_critic is not None:
        done += initialize_lstm(policy.lstm_critic, sequences(vf_features), episode_starts)
    return done


def _policy_actions(policy: BasePolicy, actions: np.ndarray) -> np.ndarray:
    """Env actions -> what the networks see (off-policy critics take actions scaled to [-1, 1])."""
    if isinstance(policy.action_space, spaces.Box) and not isinstance(policy, ActorCriticPolicy):
        return policy.scale_action(actions)
    return actions


def _sync_targets(policy: BasePolicy) -> None:
    for online, target in (("critic", "critic_target"), ("actor", "actor_target"), ("q_net", "q_net_target")):
        if getattr(policy, target, None) is not None and getattr(policy, online, None) is not None:
            getattr(policy, target).load_state_dict(getattr(policy, online).state_dict())


def initialize_policy(
    policy: BasePolicy,
    observations: np.ndarray | th.Tensor,
    actions: np.ndarray,
    episode_starts: np.ndarray | None = None,
) -> int:
    """WN data-dependent init of every network in ``policy`` on real ``observations`` (and env ``actions``).

    Online networks are initialized with one forward pass (train mode, no grad); target networks are then
    copied from them. Returns the number of layers initialized (0 when the norm needs no data).

    Recurrent policies get the rollout as sequences, as in training: ``observations`` in VecEnv step order
    (``T`` steps of ``N`` envs, row ``t * N + n``) and ``episode_starts`` ``(T, N)`` (None: one sequence).
    Their WN-DDI LSTMs are initialized first (:func:`~wnbench.norms.weightnorm.initialize_lstm`: the
    input-to-hidden terms; the recurrent weights keep their standard init, as the paper prescribes for
    recursions), then the heads on the LSTM outputs of those sequences, hidden state carried.
    """
    if not _needs_data_init(policy):
        return 0
    online = [
        name for name in ("actor", "critic", "q_net") if isinstance(getattr(policy, name, None), nn.Module)
    ]
    recurrent = isinstance(policy, RecurrentActorCriticPolicy)
    obs = th.as_tensor(observations, device=policy.device)
    act = th.as_tensor(_policy_actions(policy, np.asarray(actions)), device=policy.device)
    if isinstance(policy, ActorCriticPolicy):
        act = (
            act.reshape(len(obs), *policy.action_space.shape)
            if isinstance(policy.action_space, spaces.Box)
            else act.reshape(len(obs))
        )
    else:
        act = act.reshape(len(obs), -1).float()
    starts = None
    if recurrent:
        starts = th.tensor(  # a copy: the first row is set below, the caller's array stays as it was
            np.zeros((len(obs), 1)) if episode_starts is None else episode_starts,
            dtype=th.float32, device=policy.device,
        )  # fmt: skip
        starts = starts.reshape(starts.shape[0], -1)
        if starts.numel() != len(obs):
            raise ValueError(
                f"episode_starts {tuple(starts.shape)} does not match {len(obs)} observations (T * N rows)"
            )
        starts[0] = 1.0  # every sequence starts from a zero state
    was_training = policy.training
    armed = [m for m in _wn_layers(policy, online) if m.ddi]
    policy.set_training_mode(True)
    lstm_layers = 0
    try:
        for m in armed:
            m._ddi_armed = True
        with th.no_grad():
            if recurrent:
                lstm_layers = _initialize_lstms(policy, obs, starts)
            _forward_everything(policy, obs, act, starts)
    finally:
        missed = [m for m in armed if m._ddi_armed]
        for m in missed:
            m._ddi_armed = False
        policy.set_training_mode(was_training)
    if missed:
        raise RuntimeError(f"data-dependent init: {len(missed)} of {len(armed)} WN layers saw no data")
    _sync_targets(policy)
    return len(armed) + lstm_layers


def _needs_data_init(policy: nn.Module) -> bool:
    """Whether any layer of ``policy`` was built for WN data-dependent init (WN layers, WN-LSTMs)."""
    return any(
        (isinstance(m, WeightNormMixin) and m.ddi) or lstm_ddi_scale(m) is not None for m in policy.modules()
    )


def _wn_layers(policy: BasePolicy, online: list[str]) -> list[WeightNormMixin]:
    """WN layers of the online networks (all of the policy for actor-critic policies)."""
    if isinstance(policy, ActorCriticPolicy) or not online:
        return [m for m in policy.modules() if isinstance(m, WeightNormMixin)]
    seen: dict[int, WeightNormMixin] = {}
    for name in online:
        for m in getattr(policy, name).modules():
            if isinstance(m, WeightNormMixin):
                seen[id(m)] = m
    return list(seen.values())


def refresh_batch_stats(model: Any) -> bool:
    """``bn_mode="running"``: move the running statistics with a no-grad train-mode pass over fresh data.

    On-policy: the whole rollout buffer (recurrent policies: as one sequence per environment, hidden state
    carried from the rollout's first state and reset at episode starts, as the rollout ran); off-policy: one
    replay batch. Returns whether a pass ran.
    """
    policy = model.policy
    layers = batch_stat_modules(policy)
    if not layers:
        return False
    starts = lstm_states = None
    if isinstance(model, OnPolicyAlgorithm):
        buffer = model.rollout_buffer
        obs = th.as_tensor(
            buffer.observations.reshape(-1, *policy.observation_space.shape), device=policy.device
        )
        act = th.as_tensor(buffer.actions.reshape(len(obs), -1), device=policy.device)
        if not isinstance(policy.action_space, spaces.Box):
            act = act.reshape(len(obs))
        if isinstance(policy, RecurrentActorCriticPolicy):

            def first(states: np.ndarray) -> th.Tensor:  # (T, layers, N, hidden) -> the rollout's first state
                return th.as_tensor(states[0], device=policy.device)

            starts = th.as_tensor(buffer.episode_starts, device=policy.device).float()
            lstm_states = RNNStates(
                (first(buffer.hidden_states_pi), first(buffer.cell_states_pi)),
                (first(buffer.hidden_states_vf), first(buffer.cell_states_vf)),
            )
    else:
        buffer = model.replay_buffer
        if buffer is None or buffer.size() < 2:
            return False
        data = buffer.sample(
            min(model.batch_size, buffer.size())
        )  # actions are stored as the networks see them
        obs, act = data.observations, data.actions.float()
    modes = [m.training for m in layers]
    for m in layers:
        m.train(True)
    try:
        with th.no_grad():
            _forward_everything(policy, obs, act, starts, lstm_states)
    finally:
        for m, mode in zip(layers, modes, strict=True):
            m.train(mode)
    return True


class NormCallback(BaseCallback):
    """Start-of-training set-up for the norm policies; pass it to ``model.learn(..., callback=...)``.

    * WN data-dependent init on ``ddi_steps`` observations from a random-action rollout in the training
      env (the env is reset afterwards, so training starts from a fresh episode);
    * target networks receive all norm state (:func:`~wnbench.norms.norm_state_buffers`; sb3 copies only
      ``running_*``): batch renorm's statistics, spectral norm's power-iteration vectors;
    * with ``bn_mode="running"``, running statistics refreshed after every rollout.
    """

    def __init__(self, ddi_steps: int = 256, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.ddi_steps = ddi_steps
        self.ddi_layers = 0

    def _on_training_start(self) -> None:
        model = self.model
        self._extend_target_state_copies(model)
        policy = model.policy
        if _needs_data_init(policy):
            obs, actions, starts = random_rollout(model.env, self.ddi_steps)
            self.ddi_layers = initialize_policy(policy, obs, actions, starts)
            model._last_obs = model.env.reset()
            model._last_episode_starts = np.ones((model.env.num_envs,), dtype=bool)
            if getattr(model, "_vec_normalize_env", None) is not None:
                model._last_original_obs = model._vec_normalize_env.get_original_obs()
            self.logger.record("norm/ddi_layers", self.ddi_layers)

    @staticmethod
    def _extend_target_state_copies(model: Any) -> None:
        pairs = {
            "batch_norm_stats": ("critic", "critic_target"),  # SAC
            "critic_batch_norm_stats": ("critic", "critic_target"),  # TD3
            "actor_batch_norm_stats": ("actor", "actor_target"),  # TD3
        }
        for attr, (online, target) in pairs.items():
            if hasattr(model, attr) and hasattr(model, target):
                setattr(model, attr, norm_state_buffers(getattr(model, online)))
                setattr(model, f"{attr}_target", norm_state_buffers(getattr(model, target)))
        if hasattr(model, "q_net_target") and hasattr(model, "batch_norm_stats"):  # DQN
            model.batch_norm_stats = norm_state_buffers(model.q_net)
            model.batch_norm_stats_target = norm_state_buffers(model.q_net_target)

    def _on_rollout_end(self) -> None:
        if getattr(self.model.policy, "bn_mode", "sb3") != "running":
            return
        if not isinstance(self.model, OnPolicyAlgorithm):
            refresh_batch_stats(self.model)
            return
        state = [b for m in batch_stat_modules(self.model.policy) for b in m.buffers(recurse=False)]
        acting = [b.clone() for b in state]
        if refresh_batch_stats(self.model):
            self._next_stats = [b.clone() for b in state]
            with th.no_grad():
                for b, saved in zip(state, acting, strict=True):
                    b.copy_(saved)

    def _on_rollout_start(self) -> None:
        pending = getattr(self, "_next_stats", None)
        if pending is not None:
            state = [b for m in batch_stat_modules(self.model.policy) for b in m.buffers(recurse=False)]
            with th.no_grad():
                for b, new in zip(state, pending, strict=True):
                    b.copy_(new)
            self._next_stats = None

    def _on_step(self) -> bool:
        return True


def random_rollout(env: Any, n_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_steps`` (at least) of random actions in a VecEnv: observations and actions in step order (row
    ``t * num_envs + n``), and episode starts ``(T, num_envs)`` (1 on the first step of each episode)."""
    observations, actions, starts = [], [], []
    obs = env.reset()
    first = np.ones(env.num_envs, dtype=np.float32)
    collected = 0
    while collected < n_steps:
        action = np.stack([env.action_space.sample() for _ in range(env.num_envs)])
        observations.append(obs)
        actions.append(action)
        starts.append(first)
        obs, _, dones, _ = env.step(action)
        first = np.asarray(dones, dtype=np.float32)
        collected += env.num_envs
    return np.concatenate(observations), np.concatenate(actions), np.stack(starts)


_POLICY_FOR_ALGO: dict[str, type[BasePolicy]] = {
    "ppo": NormActorCriticPolicy,
    "a2c": NormActorCriticPolicy,
    "dqn": NormDQNPolicy,
    "sac": NormSACPolicy,
    "td3": NormTD3Policy,
    "crossq": NormCrossQPolicy,
    "recurrentppo": NormRecurrentActorCriticPolicy,
}


def policy_class_for(algo: str) -> type[BasePolicy]:
    """The norm policy class for an algorithm name (``ppo``, ``a2c``, ``dqn``, ``sac``, ``td3``, ``crossq``, ``recurrentppo``)."""
    return _POLICY_FOR_ALGO[algo.lower()]
