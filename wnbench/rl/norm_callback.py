"""Start-of-training and per-rollout upkeep of the norm policies: :class:`NormCallback`.

Target networks and norm state: sb3 copies the parameters (polyak) and the buffers named ``running_*``
(hard copy, at each target update). :class:`NormCallback` widens that copy to *all* state a norm keeps
outside its parameters (:func:`wnbench.norms.norm_state_buffers`: batch renorm's ``ra_*``, mean-only BN's
running mean, spectral norm's power-iteration vectors ``_u``/``_v``) -- one mechanism for SAC, TD3 (actor and
critic targets) and DQN; hard copies (``load_state_dict``) carry them anyway. Spectral norm's
parametrization also iterates in eval mode when its weight changed (``wnbench/norms/spectral.py``), so a
target, always in eval mode, divides its own polyak-averaged weights by their own largest singular value.

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

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.dqn.policies import DQNPolicy
from torch import nn

from wnbench.norms import norm_state_buffers, project_
from wnbench.norms.weightnorm import WeightNormMixin, initialize_lstm, lstm_ddi_scale
from wnbench.rl.batch_stats import batch_stat_modules
from wnbench.rl.projection import attach_policy_projection

__all__ = ["NormCallback", "initialize_policy", "refresh_batch_stats", "random_rollout"]


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
    * with ``bn_mode="running"``, running statistics refreshed after every rollout;
    * projected kinds (forced WN, NaP, hyperspherical): the projection after every optimizer step is attached
      (again: an optimizer may have been replaced since the policy was built), and every projected layer, target
      copies included, is projected at the start (after DDI) and at the end of training, so the weights a
      saved model holds are on their norm sets (:mod:`wnbench.rl.projection`).
    """

    def __init__(self, ddi_steps: int = 256, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.ddi_steps = ddi_steps
        self.ddi_layers = 0
        self.projected_layers = 0

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
        self.projected_layers = attach_policy_projection(policy)
        if self.projected_layers:
            project_(policy)
            self.logger.record("norm/projected_layers", self.projected_layers)

    def _on_training_end(self) -> None:
        if self.projected_layers:
            project_(self.model.policy)  # SB3's last polyak update left the targets off their norm sets

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
