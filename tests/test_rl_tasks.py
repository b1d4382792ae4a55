"""RL tasks and hyperparameters: validation messages, the partially observed CartPole, zoo-style configs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import yaml
from torch import nn

from wnbench.errors import UserError
from wnbench.rl.hyperparams import CONFIG_DIR, load_hyperparams, parse_zoo_expression
from wnbench.rl.policies import MinAtarCNN
from wnbench.rl.tasks import register_envs, validate_rl


def test_unknown_env_id_names_the_closest_registered_ids():
    problems = validate_rl("ppo", "CartPol-v1", "none")
    assert len(problems) == 1
    assert "CartPol-v1" in problems[0] and "CartPole-v1" in problems[0]


def test_algorithm_that_cannot_act_in_the_action_space_is_named_with_the_env():
    problems = validate_rl("dqn", "Pendulum-v1", "none")
    assert len(problems) == 1
    assert "dqn" in problems[0] and "Pendulum-v1" in problems[0] and "Box" in problems[0]
    assert validate_rl("sac", "CartPole-v1", "none", build=False)[0].startswith("algo 'sac' cannot act")


@pytest.mark.parametrize("norm", ["batch_renorm", "weight_meanonly", "group"])
def test_recurrent_policy_with_a_norm_it_cannot_take(norm):
    problems = validate_rl("recurrentppo", "wnbench/CartPoleNoVel-v1", norm)
    assert any("recurrent" in p and norm in p for p in problems), problems


def test_norm_that_cannot_be_built_into_the_networks_is_reported():
    problems = validate_rl("td3", "Pendulum-v1", "group", {"net_arch": [400, 300]})
    assert problems and "group" in problems[0] and "300" in problems[0]
    assert validate_rl("td3", "Pendulum-v1", "group", {"net_arch": [64, 64]}) == []


def test_unknown_algorithm_norm_and_bn_mode_all_reported_at_once():
    problems = validate_rl("ppx", "CartPole-v1", "wieght", {"bn_mode": "train"})
    text = "\n".join(problems)
    assert "'ppx'" in text and "did you mean 'ppo'" in text
    assert "wieght" in text and "did you mean 'weight'" in text
    assert "bn_mode" in text


@pytest.mark.parametrize(
    "algo,env_id",
    [
        ("ppo", "CartPole-v1"),
        ("sac", "Pendulum-v1"),
        ("recurrentppo", "wnbench/CartPoleNoVel-v1"),
        ("dqn", "MinAtar/Breakout-v1"),
    ],
)
def test_valid_runs_have_no_problems(algo, env_id):
    assert validate_rl(algo, env_id, "weight_ddi") == []


def test_cartpole_novel_hides_exactly_the_velocities():
    register_envs()
    full, masked = gym.make("CartPole-v1"), gym.make("wnbench/CartPoleNoVel-v1")
    obs_full, _ = full.reset(seed=3)
    obs_masked, _ = masked.reset(seed=3)
    for _ in range(20):
        np.testing.assert_allclose(obs_masked[[0, 2]], obs_full[[0, 2]])
        assert obs_masked[1] == 0 and obs_masked[3] == 0
        obs_full, _, done, _, _ = full.step(1)
        obs_masked, _, _, _, _ = masked.step(1)
        if done:
            break
    assert obs_full[1] != 0  # the full observation does move its velocities
    assert masked.spec.max_episode_steps in (None, 500) and masked.spec.reward_threshold == 475.0


def test_minatar_envs_are_registered_with_channels_last_grids():
    register_envs()
    env = gym.make("MinAtar/Breakout-v1")
    assert env.observation_space.shape[:2] == (10, 10)


def test_minatar_ids_are_registered_without_importing_minatar_and_match_its_own_registration():
    """Registering costs no MinAtar import, and making a game costs no seaborn import (~2 s of every RL process
    together); the ids and arguments are the ones ``minatar.gym.register_envs`` gives (v0 the full action set, v1 the
    minimal one), and ``rgb_array`` frames still come out coloured, in a process that made a game before."""
    import subprocess
    import sys

    code = (
        "import sys; from wnbench.rl.tasks import register_envs; register_envs(); "
        "import gymnasium as gym; assert 'MinAtar/Seaquest-v1' in gym.registry; print('minatar' in sys.modules); "
        "env = gym.make('MinAtar/Breakout-v1'); env.reset(seed=0); print('seaborn' in sys.modules); "
        "rgb = gym.make('MinAtar/Breakout-v1', render_mode='rgb_array'); rgb.reset(seed=0); "
        "print(rgb.render().shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "(10,", "10,", "3)"]
    assert "Cannot import" not in out.stderr
    register_envs()
    ours = {k: v.kwargs for k, v in gym.registry.items() if k.startswith("MinAtar/")}
    import minatar.gym

    saved = {k: gym.registry.pop(k) for k in list(ours)}
    try:
        minatar.gym.register_envs()
        theirs = {k: v.kwargs for k, v in gym.registry.items() if k.startswith("MinAtar/")}
    finally:
        gym.registry.update(saved)
    assert ours == theirs and len(ours) == 10
    full, minimal = gym.make("MinAtar/SpaceInvaders-v0"), gym.make("MinAtar/SpaceInvaders-v1")
    assert full.action_space.n == 6 and minimal.action_space.n < 6


def test_a_minatar_episode_that_never_ends_by_itself_is_truncated():
    """Seaquest's submarine that never dives neither scores nor dies: without a time limit one evaluation episode
    never ends (it hung the full-profile cell test)."""
    from wnbench.rl.tasks import MINATAR_MAX_EPISODE_STEPS

    register_envs()
    env = gym.make(
        "MinAtar/Seaquest-v1", max_episode_steps=300
    )  # the registered limit, shortened for the test
    env.reset(seed=0)
    steps, truncated, terminated = 0, False, False
    while not (truncated or terminated):
        _, _, terminated, truncated, _ = env.step(0)  # no-op: stay at the surface
        steps += 1
    assert truncated and not terminated and steps == 300
    assert gym.spec("MinAtar/Seaquest-v1").max_episode_steps == MINATAR_MAX_EPISODE_STEPS


def test_zoo_values_are_resolved():
    hp = load_hyperparams("ppo", "CartPole-v1")
    assert hp.n_envs == 8 and hp.n_timesteps == 100_000 and hp.normalize is None
    lr = hp.algo_kwargs["learning_rate"]
    assert lr(1.0) == pytest.approx(1e-3) and lr(0.25) == pytest.approx(2.5e-4)
    assert hp.source.startswith("ppo.yaml:CartPole-v1")
    acrobot = load_hyperparams("ppo", "Acrobot-v1")
    assert acrobot.normalize == {}
    cheetah = load_hyperparams("ppo", "HalfCheetah-v5")
    assert cheetah.policy_kwargs["activation_fn"] is nn.ReLU
    assert cheetah.policy_kwargs["net_arch"] == {"pi": [256, 256], "vf": [256, 256]}
    td3 = load_hyperparams("td3", "Pendulum-v1")
    assert td3.algo_kwargs["train_freq"] == (1, "episode") and td3.noise_type == "normal"
    assert (
        load_hyperparams("dqn", "MinAtar/Breakout-v1").policy_kwargs["features_extractor_class"] is MinAtarCNN
    )


def test_overrides_and_unknown_env_fall_back_to_defaults():
    hp = load_hyperparams(
        "ppo", "CartPole-v1", overrides={"learning_rate": 3e-4, "policy_kwargs": "dict(net_arch=[8])"}
    )
    assert hp.algo_kwargs["learning_rate"] == 3e-4 and hp.policy_kwargs["net_arch"] == [8]
    assert "overrides" in hp.source
    default = load_hyperparams("ppo", "MountainCar-v0")
    assert default.algo_kwargs == {} and "SB3 defaults" in default.source


def test_bad_config_lists_every_problem(tmp_path):
    (tmp_path / "ppo.yaml").write_text(yaml.safe_dump({"CartPole-v1": {
        "learning_rat": 1e-3, "clip_range": "lin_x", "policy_kwargs": "__import__('os').system('true')",
        "env_wrapper": "x", "normalize": 3,
    }}))  # fmt: skip
    with pytest.raises(UserError) as info:
        load_hyperparams("ppo", "CartPole-v1", config_dir=tmp_path)
    problems = "\n".join(info.value.problems)
    for field in ("learning_rat", "clip_range", "policy_kwargs", "env_wrapper", "normalize"):
        assert f"CartPole-v1: {field}" in problems, field


def test_zoo_expressions_are_parsed_without_eval():
    assert parse_zoo_expression("dict(log_std_init=-2, ortho_init=False, net_arch=[dict(pi=[64], vf=[64])])") == {
        "log_std_init": -2, "ortho_init": False, "net_arch": [{"pi": [64], "vf": [64]}],
    }  # fmt: skip
    assert parse_zoo_expression("{'norm_obs': True, 'norm_reward': False}") == {
        "norm_obs": True,
        "norm_reward": False,
    }
    with pytest.raises(ValueError):
        parse_zoo_expression("nn.__class__")
    with pytest.raises(ValueError):
        parse_zoo_expression("open('x')")


@pytest.mark.parametrize("config", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_entry_loads_and_fits_its_env(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT (deprecation warnings) into the working dir
    for env_id in yaml.safe_load(config.read_text()):
        hp = load_hyperparams(config.stem, env_id)
        assert hp.n_timesteps and hp.n_timesteps > 0
        assert validate_rl(config.stem, env_id, "none", hp.policy_kwargs, build=False) == [], env_id


def test_env_that_needs_a_missing_extra_names_the_pip_install(monkeypatch):
    from gymnasium.error import DependencyNotInstalled

    import wnbench.rl.tasks as tasks

    def no_box2d(env_id):
        raise DependencyNotInstalled("Box2D is not installed")

    monkeypatch.setattr(tasks, "env_spaces", no_box2d)
    problems = tasks.validate_rl("dqn", "LunarLander-v3", "none")
    assert problems == [
        "env 'LunarLander-v3': needs the box2d extra, which is not installed: pip install \"gymnasium[box2d]\""
    ]


@pytest.mark.parametrize("algo", ["ppo", "recurrentppo"])
def test_recurrent_bn_option_outside_what_the_algorithm_can_use_is_refused(algo):
    task = "wnbench/CartPoleNoVel-v1" if algo == "recurrentppo" else "CartPole-v1"
    problems = validate_rl(algo, task, {"name": "batch", "t_max": 20}, build=False)
    assert len(problems) == 1 and "option 't_max' has no effect here" in problems[0]
    assert ("shares statistics over time" in problems[0]) == (algo == "recurrentppo")


def test_pre_placement_cannot_go_into_recurrentppos_lstm():
    problems = validate_rl("recurrentppo", "wnbench/CartPoleNoVel-v1", {"name": "layer", "placement": "pre"})
    assert any("cannot go into recurrentppo's LSTM" in p for p in problems), problems


def test_non_utf8_rl_config_is_a_user_error_naming_the_file(tmp_path):
    from wnbench.errors import UserError
    from wnbench.rl.hyperparams import load_hyperparams

    (tmp_path / "ppo.yaml").write_bytes("CartPole-v1:\n  n_steps: 32  # caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"ppo.yaml: not UTF-8 text \(byte 0xe9 at offset"):
        load_hyperparams("ppo", "CartPole-v1", config_dir=tmp_path)
