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
* ``critic_mode`` (SAC, TD3, CrossQ): how the critic's batch-statistics layers run in the critic pass inside the
  actor update: ``"sb3"`` as the algorithm ships, ``"eval"`` (MA-BN) or ``"train"``; also a norm option, like
  ``bn_mode``. Refused (:class:`~wnbench.norms.NormError`) where it would mean nothing.

Where the rest lives: feature and MLP extractors in :mod:`wnbench.rl.extractors`; which layers keep batch
statistics and how SB3 runs them (``bn_mode``, ``critic_mode``) in :mod:`wnbench.rl.batch_stats`; projected
kinds' projection after every optimizer step, targets included, in :mod:`wnbench.rl.projection` (attached when
a policy is built); data-dependent init, target state copies and the per-rollout upkeep in
:mod:`wnbench.rl.norm_callback` (all re-exported here).

CrossQ (sb3-contrib) is the careful design: no target network, and one *joint* forward of
``cat[(s, a), (s', π(s'))]`` in train mode so both halves are normalized with the same statistics; the
actor picks ``π(s')`` in eval mode and is updated in train mode. :class:`NormCrossQPolicy` keeps that
training loop and lets any norm take batch renorm's place; its default is sb3-contrib's own layout
(batch renorm with ``placement="pre"``: on the input and before every layer, the output layer included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.crossq.policies import Actor as CrossQActor
from sb3_contrib.crossq.policies import CrossQCritic, CrossQPolicy
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

from wnbench.norms import Norm, NormError, SequenceBatchNorm, make_norm
from wnbench.norms.init_gain import apply_init_gain
from wnbench.norms.weightnorm import WNLSTM, WeightNormMixin
from wnbench.rl.batch_stats import (
    BN_MODES,
    CRITIC_MODES,
    ActorPassModeMixin,
    actor_pass_training,
    batch_stat_modules,
)
from wnbench.rl.extractors import MinAtarCNN, NormMlpExtractor, NormSpec, resolve_norm
from wnbench.rl.norm_callback import NormCallback, initialize_policy, random_rollout, refresh_batch_stats
from wnbench.rl.projection import attach_policy_projection

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
    "random_rollout",
]


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
    """Holds the norm settings, applies ``bn_mode`` on every ``set_training_mode`` call and attaches the
    projections of projected kinds (:mod:`wnbench.rl.projection`) once the optimizers exist."""

    default_norm: ClassVar[NormSpec] = "none"
    #: The algorithms the policy class serves (for messages).
    algorithms: ClassVar[str] = ""
    #: Whether the algorithm differentiates a critic pass for its actor (SAC, TD3, CrossQ): ``critic_mode``.
    actor_update_has_critic_pass: ClassVar[bool] = False

    def _setup_norm(
        self,
        norm: NormSpec | None,
        norm_actor: bool,
        norm_critic: bool,
        bn_mode: str | None,
        critic_mode: str | None = None,
    ) -> None:
        self.norm = resolve_norm(self.default_norm if norm is None else norm)
        self.norm_actor, self.norm_critic = bool(norm_actor), bool(norm_critic)
        self.bn_mode = self._mode_option("bn_mode", bn_mode, BN_MODES)
        self.critic_mode = self._mode_option("critic_mode", critic_mode, CRITIC_MODES)
        self._check_critic_mode()
        plain = make_norm("none")
        self.actor_norm = self.norm if self.norm_actor else plain
        self.critic_norm = self.norm if self.norm_critic else plain

    def _mode_option(self, option: str, given: str | None, allowed: tuple[str, ...]) -> str:
        """A mode that may come with the norm (``{name: batch, bn_mode: running}``: its own arm) or as a policy
        keyword; ``"sb3"`` (stock) unless one of them says otherwise, and the two must not contradict."""
        from_norm = self.norm.options().get(option, "sb3")
        if given is not None and from_norm != "sb3" and given != from_norm:
            raise ValueError(f"{option}={given!r} contradicts the norm's own {option}={from_norm!r}")
        value = given if given is not None else from_norm
        if value not in allowed:
            raise ValueError(f"{option} must be one of {', '.join(allowed)}; got {value!r}")
        return value

    def _check_critic_mode(self) -> None:
        """``critic_mode`` needs a critic pass inside the actor update, batch statistics and a normalized critic."""
        if self.critic_mode == "sb3":
            return
        where = f"critic_mode={self.critic_mode!r} (norm '{self.norm.label}')"
        if not self.actor_update_has_critic_pass:
            raise NormError(
                f"{where} sets how the critic pass inside the actor update of SAC, TD3 and CrossQ runs; "
                f"{type(self).__name__} ({self.algorithms}) has no such pass"
            )
        if not self.norm.uses_batch_statistics:
            raise NormError(f"{where} needs a norm with batch statistics; '{self.norm.label}' has none")
        if not self.norm_critic:
            raise NormError(f"{where} needs a normalized critic; norm_critic is False")
        if self.bn_mode == "running" and self.critic_mode == "train":
            raise NormError(
                f"{where} contradicts bn_mode='running' (batch statistics never run in train mode)"
            )

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

    def _with_actor_pass_mode(self, critic: ActorPassModeMixin) -> Any:
        """Give a critic this policy's ``critic_mode`` for its pass inside the actor update."""
        critic.actor_pass_training = actor_pass_training(self.critic_mode)
        return critic

    def _norm_constructor_parameters(self) -> dict[str, Any]:
        return dict(
            norm=self.norm,
            norm_actor=self.norm_actor,
            norm_critic=self.norm_critic,
            bn_mode=self.bn_mode,
            critic_mode=self.critic_mode,
        )

    def _build(self, lr_schedule: Callable) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]
        # A careless init (norm option init_gain): after SB3's own init of every network (PPO/A2C's orthogonal
        # init runs inside _build; target networks are copies made there, so they are scaled alike), before WN's
        # data-dependent init, which NormCallback runs on the first rollout.
        apply_init_gain(self)  # type: ignore[arg-type]
        attach_policy_projection(self)  # type: ignore[arg-type]

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)  # type: ignore[misc]
        if self.bn_mode == "running":
            for module in batch_stat_modules(self):  # type: ignore[arg-type]
                module.train(False)


def _norm_kwargs(kwargs: dict[str, Any]) -> tuple[Any, bool, bool, str | None, str | None]:
    return (
        kwargs.pop("norm", None),
        kwargs.pop("norm_actor", True),
        kwargs.pop("norm_critic", True),
        kwargs.pop("bn_mode", None),
        kwargs.pop("critic_mode", None),
    )


# -- on-policy ---------------------------------------------------------------------------------------
class NormActorCriticPolicy(_NormPolicyMixin, ActorCriticPolicy):
    """PPO/A2C actor-critic MLP policy with factory-built hidden layers (see module docstring)."""

    algorithms = "PPO, A2C"

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

    algorithms = "RecurrentPPO"

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
        attach_policy_projection(self)  # the optimizer is new: attach its projection again

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
        ``parametrize.cached()`` reuses one computation for the call: the same weights, so the same outputs, at a
        fraction of the cost (figures: docs/measurements/docstring-figures-2026-12.md). Only
        pure weight-norm LSTMs are cached: spectral norm's power iteration runs on each access and stays so.
        """
        if isinstance(lstm, WNLSTM):  # wnbench's WN-LSTM: the same, through its own cache
            with lstm.cached_weights():
                return RecurrentActorCriticPolicy._process_sequence(
                    features, lstm_states, episode_starts, lstm
                )
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

    algorithms = "DQN"

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


class _NormContinuousCritic(ActorPassModeMixin, ContinuousCritic):
    """SB3's SAC/TD3 critic; its batch-statistics layers run in the policy's ``critic_mode`` in the actor's pass."""


class _ContinuousCriticMixin:
    actor_update_has_critic_pass: ClassVar[bool] = True

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        """SB3's ``make_critic`` (same arguments, same init order) with factory-built Q-networks."""
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)  # type: ignore[attr-defined]
        critic = _NormContinuousCritic(**critic_kwargs).to(self.device)  # type: ignore[attr-defined]
        _replace_q_networks(
            critic, self.critic_norm, critic_kwargs["net_arch"], critic_kwargs["activation_fn"], self.device
        )  # type: ignore[attr-defined]
        return self._with_actor_pass_mode(critic)  # type: ignore[attr-defined]


class NormSACPolicy(_ContinuousCriticMixin, _NormPolicyMixin, SACPolicy):
    """SAC policy: actor trunk and both critics (and the target critics) built by the factory."""

    algorithms = "SAC"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._take_norm_kwargs(kwargs)
        super().__init__(*args, **kwargs)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> SACActor:
        actor = super().make_actor(features_extractor)
        actor.latent_pi = self.actor_norm.mlp(
            actor.features_dim, actor.net_arch, activation=actor.activation_fn
        ).to(self.device)
        return actor

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), **self._norm_constructor_parameters()}


class NormTD3Policy(_ContinuousCriticMixin, _NormPolicyMixin, TD3Policy):
    """TD3 policy: deterministic actor and both critics (and their targets) built by the factory."""

    algorithms = "TD3"

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


class _NormCrossQCritic(ActorPassModeMixin, CrossQCritic):
    """CrossQ's critic; its BN switch drives every batch-statistics layer, and ``critic_mode`` the actor's pass."""

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

    algorithms = "CrossQ"
    default_norm = {"name": "batch_renorm", "placement": "pre"}  # type: ignore[assignment]
    actor_update_has_critic_pass = True

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
        return self._with_actor_pass_mode(critic.to(self.device))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for stock_option in ("batch_norm", "batch_norm_momentum", "batch_norm_eps", "renorm_warmup_steps"):
            data.pop(stock_option, None)
        return {**data, **self._norm_constructor_parameters()}


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
