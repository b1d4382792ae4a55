"""Mechanism diagnostics: *why* a norm wins or loses, logged beside the returns.

:class:`DiagnosticsCallback` measures, without changing the run (every probe runs on copies of the norm state,
under a forked torch RNG and with its own NumPy generator, and leaves no gradients behind):

* ``ratio_dev`` (PPO, every update): mean ``|pi_new/pi_old - 1|`` on a minibatch of the fresh rollout, with the
  policy in train mode and before any gradient step. Exactly 0 for a norm whose train and eval functions are the
  same (none, WN, LN); BN's rollout/update statistics mismatch shows up here as a ratio that is off from the start.
* ``grad_noise`` (every evaluation point): the gradient noise scale ``tr(Sigma) / |mean g|^2`` (McCandlish et al.
  2018) of the loss the algorithm optimizes -- PPO's clipped objective, DQN's TD loss, SAC/TD3/CrossQ's critic
  loss -- over ``probe_batches`` minibatches drawn from the current rollout or replay buffer, and ``grad_var``
  (``tr(Sigma)``, raw). Minibatch statistics add variance here. Not measured where the update's gradient uses
  the whole rollout (A2C; PPO with one minibatch per epoch): it has no sampling noise (see ``full_batch_update``).
* ``weight_norm`` and ``eff_lr`` (every evaluation point): mean over the critic's (value net's, Q-net's) hidden
  layers of the norm of the weight the optimizer updates (``v`` for WN, the stored weight of a projected kind;
  :mod:`wnbench.norms.diagnostics`, shared with the generative models),
  and its relative change per gradient step since the last point (the effective learning rate; for a
  scale-invariant layer ~ lr / |w|^2, the CrossQ + WN argument: without WN the weights grow and the effective
  rate decays; NaP and SimbaV2 hold |w| fixed by projection to keep it steady). ``actor_weight_norm`` and
  ``actor_eff_lr``: the same for the actor's layers (PPO/A2C's policy net, SAC/TD3/CrossQ's actor, each with
  its features extractor's layers; DQN has no actor, and its Q-net's features extractor counts as critic).
* ``q_bias`` (off-policy, every evaluation point): mean ``Q(s_t, pi(s_t))`` minus the discounted Monte-Carlo return
  from ``s_t`` along one deterministic episode run one return horizon (``3 / (1 - gamma)`` steps) past the time
  limit, over the states whose horizon fits (all of them when the episode terminates). SAC's soft Q also counts its
  entropy bonus, so read its level relative to other norms.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from wnbench.norms.diagnostics import effective_lr, mean_weight_norm, updated_weights
from wnbench.rl.scoring import ACTOR_DIAGNOSTIC_KEYS, DIAGNOSTIC_KEYS, full_batch_update

__all__ = ["DiagnosticsCallback", "DIAGNOSTIC_KEYS", "ACTOR_DIAGNOSTIC_KEYS"]


class _Probe:
    """A side-effect-free context: norm buffers copied back, torch RNG forked, grads cleared, modes restored."""

    def __init__(self, policy: nn.Module) -> None:
        self.policy = policy

    def __enter__(self) -> None:
        self.np_state = (
            np.random.get_state()
        )  # SB3's replay sampling draws env indices from NumPy's global RNG
        self.buffers = [(b, b.detach().clone()) for b in self.policy.buffers()]
        self.modes = [(m, m.training) for m in self.policy.modules()]
        self.rng = th.random.fork_rng(devices=[])
        self.rng.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.rng.__exit__(*exc)
        np.random.set_state(self.np_state)
        with th.no_grad():
            for buffer, saved in self.buffers:
                buffer.copy_(saved)
        for module, mode in self.modes:
            module.training = mode
        for p in self.policy.parameters():
            p.grad = None


def _critic_modules(model: Any) -> nn.Module:
    policy = model.policy
    if isinstance(model, OnPolicyAlgorithm):
        return policy.mlp_extractor.value_net
    if hasattr(policy, "q_net"):
        return policy.q_net
    return policy.critic


def _hidden_weights(model: Any) -> list[th.Tensor]:
    """Hidden-layer weights of the critic: the value net's layers (PPO/A2C: its head is separate), each
    Q-network's layers but its output layer (SAC, TD3, CrossQ), DQN's features extractor and Q-net but its
    output layer."""
    policy = model.policy
    if isinstance(model, OnPolicyAlgorithm):
        return updated_weights(policy.mlp_extractor.value_net)
    if hasattr(policy, "q_net"):
        return updated_weights(policy.q_net.features_extractor) + updated_weights(
            policy.q_net.q_net, skip_output=True
        )
    return [w for net in policy.critic.q_networks for w in updated_weights(net, skip_output=True)]


def _actor_weights(model: Any) -> list[th.Tensor]:
    """Hidden-layer weights of the actor with its features extractor: PPO/A2C's policy net, SAC/CrossQ's
    ``latent_pi``, TD3's ``mu`` but its output layer; none for DQN (its Q-net is the critic)."""
    policy = model.policy
    if isinstance(model, OnPolicyAlgorithm):
        return updated_weights(policy.pi_features_extractor) + updated_weights(
            policy.mlp_extractor.policy_net
        )
    actor = getattr(policy, "actor", None)
    if actor is None:
        return []
    trunk = updated_weights(actor.features_extractor)
    if hasattr(actor, "latent_pi"):
        return trunk + updated_weights(actor.latent_pi)
    return trunk + updated_weights(actor.mu, skip_output=True)


class DiagnosticsCallback(BaseCallback):
    """Collects the module docstring's diagnostics; ``record()`` returns them as arrays for the run record."""

    def __init__(
        self, evaluator: Any, env_id: str, seed: int, probe_batches: int = 8, log_fn: Any = None
    ) -> None:
        super().__init__()
        self.evaluator, self.env_id, self.seed = evaluator, env_id, seed
        self.probe_batches, self.log_fn = probe_batches, log_fn
        self.rng = np.random.default_rng(seed + 7_919)
        self.ratio_steps: list[int] = []
        self.ratio_dev: list[float] = []
        self.points: dict[str, list[float]] = {
            k: [] for k in ("step", *DIAGNOSTIC_KEYS[1:], *ACTOR_DIAGNOSTIC_KEYS)
        }
        self._last_weights: dict[str, list[th.Tensor]] = {}
        self._last_updates = 0
        self._seen_evals = 0
        self._pending = False  # on-policy: probe at the end of the rollout in which an evaluation ran

    # -- hooks ---------------------------------------------------------------------------------------
    def _on_training_start(self) -> None:
        self._snapshot_weights()
        self._seen_evals = len(self.evaluator.steps)

    @property
    def _supported(self) -> bool:
        return self.model.__class__.__name__ != "RecurrentPPO"  # its losses need LSTM states per sequence

    def _on_rollout_end(self) -> None:
        if not (isinstance(self.model, OnPolicyAlgorithm) and self._supported):
            return
        if self.model.__class__.__name__ == "PPO":
            value = self._ratio_deviation()
            self.ratio_steps.append(int(self.num_timesteps))
            self.ratio_dev.append(value)
            self._log({"diag/ratio_dev": value})
        if self._pending:
            self._pending = False
            self._probe_point()

    def _on_step(self) -> bool:
        if len(self.evaluator.steps) > self._seen_evals and self._supported:  # an evaluation just ran
            self._seen_evals = len(self.evaluator.steps)
            if isinstance(self.model, OnPolicyAlgorithm):
                self._pending = True  # the rollout buffer is complete (returns, advantages) only at its end
            else:
                self._probe_point()
        return True

    def _on_training_end(self) -> None:
        if (
            len(self.evaluator.steps) > self._seen_evals
            and self._supported
            and not isinstance(self.model, OnPolicyAlgorithm)
        ):
            self._seen_evals = len(self.evaluator.steps)
            self._probe_point()

    def record(self) -> dict[str, list[float]]:
        out = {f"diag_{k}": list(v) for k, v in self.points.items()}
        if self.ratio_dev:
            out["diag_ratio_steps"] = list(self.ratio_steps)
            out["diag_ratio_dev"] = list(self.ratio_dev)
        return out

    # -- measurements --------------------------------------------------------------------------------
    def _log(self, metrics: dict[str, float]) -> None:
        if self.log_fn is not None:
            self.log_fn(
                {k: v for k, v in metrics.items() if v is not None and math.isfinite(v)},
                int(self.num_timesteps),
            )

    def _probe_point(self) -> None:
        noise, var = self._gradient_noise()
        updates = int(getattr(self.model, "_n_updates", 0)) - self._last_updates
        norm, eff = self._weight_growth("critic", _hidden_weights(self.model), updates)
        actor_norm, actor_eff = self._weight_growth("actor", _actor_weights(self.model), updates)
        self._last_updates += updates
        bias = self._q_bias()
        values = {"step": float(self.num_timesteps), "grad_noise": noise, "grad_var": var,
                  "weight_norm": norm, "eff_lr": eff, "q_bias": bias,
                  "actor_weight_norm": actor_norm, "actor_eff_lr": actor_eff}  # fmt: skip
        for key, value in values.items():
            self.points[key].append(float("nan") if value is None else float(value))
        self._log({f"diag/{k}": v for k, v in values.items() if k != "step"})

    def _flat_rollout(self) -> dict[str, th.Tensor]:
        buf = self.model.rollout_buffer
        size = buf.buffer_size * buf.n_envs
        flat = {
            name: th.as_tensor(buf.swap_and_flatten(getattr(buf, name)), device=self.model.device)
            for name in ("observations", "actions", "log_probs", "advantages", "returns")
        }
        flat["n"] = th.tensor(size)
        return flat

    def _ppo_losses(self, data: dict[str, th.Tensor], idx: np.ndarray) -> tuple[th.Tensor, th.Tensor]:
        model, policy = self.model, self.model.policy
        obs = data["observations"][idx]
        actions = data["actions"][idx]
        if isinstance(model.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        values, log_prob, entropy = policy.evaluate_actions(obs, actions)
        ratio = th.exp(log_prob - data["log_probs"][idx].flatten())
        adv = data["advantages"][idx].flatten()
        if getattr(model, "normalize_advantage", True) and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        value_loss = F.mse_loss(data["returns"][idx].flatten(), values.flatten())
        entropy_loss = -th.mean(entropy) if entropy is not None else th.mean(log_prob)
        if model.__class__.__name__ == "PPO":
            clip = model.clip_range(model._current_progress_remaining)
            policy_loss = -th.min(adv * ratio, adv * th.clamp(ratio, 1 - clip, 1 + clip)).mean()
        else:  # A2C
            policy_loss = -(adv * log_prob).mean()
        loss = policy_loss + model.ent_coef * entropy_loss + model.vf_coef * value_loss
        return loss, ratio

    def _ratio_deviation(self) -> float:
        data = self._flat_rollout()
        n = int(data["n"])
        idx = self.rng.permutation(n)[: min(self.model.batch_size, n)]
        with _Probe(self.model.policy), th.no_grad():
            self.model.policy.set_training_mode(True)
            _, ratio = self._ppo_losses(data, idx)
        return float((ratio - 1).abs().mean())

    def _offpolicy_loss(self, batch: Any) -> th.Tensor:
        model, policy = self.model, self.model.policy
        name = model.__class__.__name__
        gamma = model.gamma
        r, d = batch.rewards, batch.dones
        if name == "DQN":
            with th.no_grad():
                target = (
                    r
                    + (1 - d)
                    * gamma
                    * policy.q_net_target(batch.next_observations).max(dim=1, keepdim=True)[0]
                )
            current = policy.q_net(batch.observations).gather(1, batch.actions.long())
            return F.smooth_l1_loss(current, target)
        ent = 0.0
        if name in ("SAC", "CrossQ"):
            ent = (
                th.exp(model.log_ent_coef.detach())
                if getattr(model, "log_ent_coef", None) is not None
                else model.ent_coef_tensor
            )
        if name == "CrossQ":
            with th.no_grad():
                policy.actor.set_bn_training_mode(False)
                next_actions, next_log_prob = policy.actor.action_log_prob(batch.next_observations)
            policy.critic.set_bn_training_mode(True)
            all_q = th.cat(policy.critic(th.cat([batch.observations, batch.next_observations]),
                                         th.cat([batch.actions, next_actions])), dim=1)  # fmt: skip
            policy.critic.set_bn_training_mode(False)
            current, next_q = th.split(all_q, len(r))
            next_q = th.min(next_q, dim=1, keepdim=True)[0].detach() - ent * next_log_prob.reshape(-1, 1)
            target = r + (1 - d) * gamma * next_q
            return 0.5 * sum(F.mse_loss(current[:, i : i + 1], target) for i in range(current.shape[1]))
        with th.no_grad():
            if name == "SAC":
                next_actions, next_log_prob = policy.actor.action_log_prob(batch.next_observations)
                next_q = th.cat(policy.critic_target(batch.next_observations, next_actions), dim=1)
                next_q = th.min(next_q, dim=1, keepdim=True)[0] - ent * next_log_prob.reshape(-1, 1)
            else:  # TD3
                noise = (
                    batch.actions.clone()
                    .normal_(0, model.target_policy_noise)
                    .clamp(-model.target_noise_clip, model.target_noise_clip)
                )
                next_actions = (policy.actor_target(batch.next_observations) + noise).clamp(-1, 1)
                next_q = th.cat(policy.critic_target(batch.next_observations, next_actions), dim=1)
                next_q = th.min(next_q, dim=1, keepdim=True)[0]
            target = r + (1 - d) * gamma * next_q
        current = policy.critic(batch.observations, batch.actions)
        return 0.5 * sum(F.mse_loss(q, target) for q in current)

    def _gradient_noise(self) -> tuple[float | None, float | None]:
        model = self.model
        params = [p for p in _critic_modules(model).parameters() if p.requires_grad]
        if isinstance(model, OnPolicyAlgorithm):
            params = [p for p in model.policy.parameters() if p.requires_grad]
            data = self._flat_rollout()
            n = int(data["n"])
            if full_batch_update(model.__class__.__name__, getattr(model, "batch_size", None), n):
                return None, None  # the update's gradient is a function of the rollout: no sampling noise
            size = model.batch_size
            batches = [self.rng.choice(n, size, replace=False) for _ in range(self.probe_batches)]
        else:
            buffer = model.replay_buffer
            if buffer is None or buffer.size() < 2 * model.batch_size:
                return None, None
            upper = buffer.buffer_size if buffer.full else buffer.pos
            batches = [self.rng.integers(0, upper, size=model.batch_size) for _ in range(self.probe_batches)]
        grads = []
        with _Probe(model.policy):
            model.policy.set_training_mode(True)
            for idx in batches:
                for p in params:
                    p.grad = None
                if isinstance(model, OnPolicyAlgorithm):
                    loss, _ = self._ppo_losses(data, idx)
                else:
                    loss = self._offpolicy_loss(
                        model.replay_buffer._get_samples(idx, env=model._vec_normalize_env)
                    )
                loss.backward()
                grads.append(
                    th.cat([(p.grad if p.grad is not None else th.zeros_like(p)).flatten() for p in params])
                )
        g = th.stack(grads)
        mean = g.mean(dim=0)
        trace = float(((g - mean) ** 2).sum(dim=1).mean() * len(g) / (len(g) - 1))
        signal = float((mean**2).sum())
        return (trace / signal if signal > 0 else None), trace

    def _snapshot_weights(self) -> None:
        for group, weights in (
            ("critic", _hidden_weights(self.model)),
            ("actor", _actor_weights(self.model)),
        ):
            self._last_weights[group] = [w.detach().clone() for w in weights]
        self._last_updates = int(getattr(self.model, "_n_updates", 0))

    def _weight_growth(
        self, group: str, weights: list[th.Tensor], updates: int
    ) -> tuple[float | None, float | None]:
        """Mean weight norm of ``group``'s layers and their mean relative change per update since the last point
        (:mod:`wnbench.norms.diagnostics`, the same math the generative models log)."""
        last = self._last_weights.get(group)
        eff = effective_lr(weights, last, updates) if last is not None else None
        self._last_weights[group] = [w.detach().clone() for w in weights]
        return mean_weight_norm(weights), eff

    def _q_bias(self) -> float | None:
        model = self.model
        if isinstance(model, OnPolicyAlgorithm) or isinstance(model.get_env(), VecNormalize):
            return None
        gamma = model.gamma
        horizon = min(int(math.ceil(3 / (1 - gamma))), 2_000)
        limit = gym.spec(self.env_id).max_episode_steps
        # Run past the time limit by one return horizon, so every kept state has (almost) its full discounted
        # return: SB3 bootstraps through time-outs, so Q estimates the return without the limit.
        env = gym.make(self.env_id, max_episode_steps=(limit + horizon) if limit else None)
        obs, _ = env.reset(seed=self.seed + 31_337 + len(self.points["step"]))
        observations, rewards = [], []
        done = terminated = False
        with _Probe(model.policy), th.no_grad():
            model.policy.set_training_mode(False)
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                observations.append(obs)
                obs, reward, terminated, truncated, _ = env.step(action)
                rewards.append(float(reward))
                done = terminated or truncated
            env.close()
            keep = len(rewards) if terminated else len(rewards) - horizon
            if keep <= 0:
                return None
            returns = np.zeros(len(rewards))
            running = 0.0
            for t in reversed(range(len(rewards))):
                running = rewards[t] + gamma * running
                returns[t] = running
            obs_t = th.as_tensor(np.asarray(observations[:keep]), dtype=th.float32, device=model.device)
            policy = model.policy
            if hasattr(policy, "q_net"):
                q = policy.q_net(obs_t).max(dim=1)[0]
            else:
                actions = (
                    policy.actor(obs_t, deterministic=True)
                    if model.__class__.__name__ != "TD3"
                    else policy.actor(obs_t)
                )
                q = th.cat(policy.critic(obs_t, actions), dim=1).mean(dim=1)
        return float(q.mean().item() - returns[:keep].mean())
